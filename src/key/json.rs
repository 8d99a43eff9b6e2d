//! JSON-path keys (`.a`, `.a.b`, `."id.orig_h"`) found by a targeted scan.
//!
//! The scanner walks only the object members on the way to the path: it compares
//! member names, skips the values it does not need (strings 16 bytes a step, nested
//! containers by bracket counting) and never builds a document. The key is the
//! value's text: a string's unescaped content, a number's literal, `true`/`false`,
//! or a container's raw bytes; so `"42"` and `42` are the same ID. `null`, a
//! missing member and input that is not a JSON object give no key. After the
//! value, the rest of the record is followed by structure alone (strings and
//! brackets, 16 bytes a step) to its final `}`, with only whitespace after it: a
//! record cut short after its key stays unkeyed.
//!
//! A name given twice in one object: the last member counts, as in jq, Python,
//! JavaScript and serde_json. The scan stops at the first match; the check of the
//! rest looks out for the path's names, and only when one may come again (its quoted
//! text appears there, or an escape that could spell it) does a second walk read
//! every member of each object on the path.

use std::borrow::Cow;

use crate::error::ConfigError;

/// A parsed path: the member names from the outermost object inwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    segments: Vec<Vec<u8>>,
    /// Its own names, for the checks it makes alone.
    watch: Watch,
}

/// The names a check of the rest of a record looks out for: if one appears again
/// after the value found, a later member may override it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Watch {
    /// Each name with its closing quote, as it follows the opening quote of a
    /// member written without escapes.
    closed: Vec<Vec<u8>>,
    /// The distinct first bytes of `closed`.
    firsts: Vec<u8>,
    /// Whether some name holds a byte that an escape other than `\u` can spell
    /// (`"`, `\`, `/`, a control byte).
    plain_escapes: bool,
}

impl Watch {
    /// The names of a path.
    fn of(segments: &[Vec<u8>]) -> Watch {
        let mut w = Watch::default();
        for seg in segments {
            let closed = [seg, &b"\""[..]].concat();
            if !w.closed.contains(&closed) {
                w.firsts.push(closed[0]);
                w.closed.push(closed);
            }
            w.plain_escapes |= seg.iter().any(|&c| matches!(c, b'"' | b'\\' | b'/') || c < 0x20);
        }
        w.firsts.sort_unstable();
        w.firsts.dedup();
        w
    }

    /// Whether a watched name and its closing quote start at `i`.
    #[inline]
    fn name_at(&self, b: &[u8], i: usize) -> bool {
        let rest = b.get(i..).unwrap_or_default();
        self.closed.iter().any(|c| rest.starts_with(c))
    }

    /// Whether a watched name starts at one of the bits of `starts` in `block`
    /// (which lies at `at` of `b`).
    #[inline]
    fn names_in(&self, b: &[u8], at: usize, block: &[u8; 16], starts: u32) -> bool {
        self.firsts.iter().any(|&first| {
            let mut hit = starts & eq16(block, first);
            while hit != 0 {
                if self.name_at(b, at + hit.trailing_zeros() as usize) {
                    return true;
                }
                hit &= hit - 1;
            }
            false
        })
    }
}

/// Where a found value's text is: in the record, or unescaped into the scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// `record[start..end]`.
    Raw(usize, usize),
    /// The whole scratch buffer.
    Scratch,
}

impl Found {
    /// The text.
    fn text<'a>(self, record: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self {
            Found::Raw(start, end) => &record[start..end],
            Found::Scratch => scratch,
        }
    }
}

/// What the rest of a record holds after a found value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// Its structure closes at the final `}`, and no watched name comes again.
    Whole,
    /// A watched name may come again: read the record with
    /// [`JsonPath::find_last`] (which also checks the structure).
    Repeats,
}

impl JsonPath {
    /// Parses `.a.b`, `."name.with.dots"`, `.a."b c".d` (jq's syntax). `flag` names
    /// the flag in errors.
    pub fn parse(flag: &str, text: &str) -> Result<JsonPath, ConfigError> {
        let bad = |why: &str| ConfigError::new(flag, format!("invalid JSON path '{text}': {why}"));
        let b = text.as_bytes();
        let mut i = 0;
        let mut segments = Vec::new();
        while i < b.len() {
            if b[i] != b'.' {
                return Err(bad("expected '.' before each member name"));
            }
            i += 1;
            let mut seg = Vec::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err(bad("unterminated quoted name")),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            match b.get(i + 1) {
                                Some(&c @ (b'"' | b'\\')) => seg.push(c),
                                _ => {
                                    return Err(bad(
                                        "only \\\" and \\\\ escapes are allowed in names",
                                    ))
                                }
                            }
                            i += 2;
                        }
                        Some(&c) => {
                            seg.push(c);
                            i += 1;
                        }
                    }
                }
                if i < b.len() && b[i] != b'.' {
                    return Err(bad("expected '.' after a quoted name"));
                }
            } else {
                while i < b.len() && b[i] != b'.' {
                    if b[i] == b'"' || b[i] == b'[' {
                        return Err(bad("quote a name that holds special characters: .\"name\""));
                    }
                    seg.push(b[i]);
                    i += 1;
                }
                if seg.is_empty() {
                    return Err(bad("empty member name"));
                }
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            return Err(bad("no member name"));
        }
        let watch = Watch::of(&segments);
        Ok(JsonPath { segments, watch })
    }

    /// The member names.
    pub fn segments(&self) -> &[Vec<u8>] {
        &self.segments
    }

    /// Finds the value at this path in `record` and returns its key text,
    /// borrowed where no unescaping is needed, written into `scratch` otherwise.
    pub fn find<'a>(&self, record: &'a [u8], scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
        let (found, rest) = self.find_value(record, scratch)?;
        let found = match rest.check(record, &self.watch)? {
            Rest::Whole => found,
            Rest::Repeats => self.find_last(record, scratch)?,
        };
        Some(found.text(record, scratch))
    }

    /// [`JsonPath::find`] up to the first member with each name: the value there
    /// and the check of the rest of the record still to make.
    fn find_value(&self, record: &[u8], scratch: &mut Vec<u8>) -> Option<(Found, RestCheck)> {
        let mut s = Scanner { b: record, i: 0 };
        let last = self.segments.len() - 1;
        for (depth, seg) in self.segments.iter().enumerate() {
            s.ws();
            if s.peek()? != b'{' {
                if depth == 0 {
                    return None;
                }
                // The first member with the outer name is no object.
                s.skip_value()?;
                return self.find_later(record, s.i, depth, scratch);
            }
            s.i += 1;
            // Walk the members of this object until the name matches.
            loop {
                s.ws();
                match s.peek()? {
                    b'}' if depth == 0 => return None,
                    b'}' => return self.find_later(record, s.i, depth + 1, scratch),
                    b'"' => {}
                    _ => return None,
                }
                if s.member_named(seg)? {
                    if depth == last {
                        let value = s.i;
                        let Some(found) = s.value_found(scratch) else {
                            // `null` (or malformed): a later member may still count.
                            s.i = value;
                            s.skip_value()?;
                            return self.find_later(record, s.i, depth + 1, scratch);
                        };
                        // A record cut short after its key (a truncated write) is
                        // not JSON: it must stay unkeyed, or it would stand in for
                        // the complete record behind it. So the rest is followed
                        // to the final `}` (structure only: strings and brackets),
                        // looking out for the path's names on the way.
                        return Some((found, RestCheck { from: s.i, open: depth + 1 }));
                    }
                    break; // descend: the value must be an object
                }
                s.skip_value()?;
                s.ws();
                match s.peek()? {
                    b',' => s.i += 1,
                    b'}' if depth == 0 => return None,
                    b'}' => return self.find_later(record, s.i, depth + 1, scratch),
                    _ => return None,
                }
            }
        }
        None
    }

    /// After the first member with one of the names gave no value (absent below
    /// it, or `null`), from `at` inside `open` objects: a later member with that
    /// name may give one.
    fn find_later(
        &self,
        record: &[u8],
        at: usize,
        open: usize,
        scratch: &mut Vec<u8>,
    ) -> Option<(Found, RestCheck)> {
        match (RestCheck { from: at, open }).check(record, &self.watch)? {
            Rest::Whole => None,
            Rest::Repeats => Some((self.find_last(record, scratch)?, RestCheck::DONE)),
        }
    }

    /// [`JsonPath::find`] by reading every member of each object on the path and
    /// descending into the last one with the name: the value a full parser reads,
    /// in a record whose structure it checks to the end.
    fn find_last(&self, record: &[u8], scratch: &mut Vec<u8>) -> Option<Found> {
        let mut s = Scanner { b: record, i: 0 };
        let mut outer_close = 0;
        for (depth, seg) in self.segments.iter().enumerate() {
            s.ws();
            if s.peek()? != b'{' {
                return None;
            }
            s.i += 1;
            s.ws();
            let mut found = None;
            if s.peek()? == b'}' {
                s.i += 1;
            } else {
                loop {
                    s.ws();
                    if s.peek()? != b'"' {
                        return None;
                    }
                    if s.member_named(seg)? {
                        found = Some(s.i);
                    }
                    s.skip_value()?;
                    if !s.more_members()? {
                        break;
                    }
                }
            }
            if depth == 0 {
                outer_close = s.i;
            }
            s.i = found?;
        }
        let found = s.value_found(scratch)?;
        // The outermost object has been read to its `}`: what remains to check is
        // that only whitespace follows it.
        only_whitespace(&record[outer_close..]).then_some(found)
    }
}

/// What must hold of a record after a found value for the record to be JSON: from
/// `from` (outside any string, inside `open` objects) the structure closes at the
/// record's final `}`, with only whitespace after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RestCheck {
    from: usize,
    open: usize,
}

impl RestCheck {
    /// A check already made (by [`JsonPath::find_last`]).
    const DONE: RestCheck = RestCheck { from: 0, open: 0 };

    /// `None` if the record is not whole JSON; otherwise whether a name of `watch`
    /// comes again after `from`.
    fn check(&self, record: &[u8], watch: &Watch) -> Option<Rest> {
        if self.open == 0 {
            return Some(Rest::Whole);
        }
        close_structure(record, self.from, self.open, Some(watch))
    }
}

/// Several top-level member names (`.a`, `.b`, …: the parts of a composite key and
/// a time field) found in one walk of each record, rather than a walk and a check
/// of the rest per name: the members are read until every name has been met, the
/// rest is checked once, for structure and for any of the names coming again, and
/// only then (a name may come again) are the remaining members read too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopNames {
    /// Distinct.
    names: Vec<Vec<u8>>,
    watch: Watch,
}

impl TopNames {
    /// The names of `paths` if each is a single member name, else `None`.
    pub fn of<'p>(paths: impl IntoIterator<Item = &'p JsonPath>) -> Option<TopNames> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for p in paths {
            let [name] = p.segments() else { return None };
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let watch = Watch::of(&names);
        Some(TopNames { names, watch })
    }

    /// How many distinct names (the length of [`TopNames::locate`]'s `at`).
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The index of `path`'s name (a path given to [`TopNames::of`]).
    pub fn slot(&self, path: &JsonPath) -> Option<usize> {
        self.names.iter().position(|n| path.segments() == std::slice::from_ref(n))
    }

    /// Whether `record` is a whole JSON object; if so, `at[k]` is where the value
    /// of the last member named `names[k]` starts (read it with [`value_at`]), or
    /// `usize::MAX` where there is no such member. `at` holds [`TopNames::len`].
    pub fn locate(&self, record: &[u8], at: &mut [usize]) -> bool {
        at.fill(usize::MAX);
        self.walk(record, at).is_some()
    }

    fn walk(&self, b: &[u8], at: &mut [usize]) -> Option<()> {
        let mut s = Scanner { b, i: 0 };
        s.ws();
        if s.peek()? != b'{' {
            return None;
        }
        s.i += 1;
        s.ws();
        if s.peek()? == b'}' {
            s.i += 1;
        } else {
            let mut unmet = self.names.len();
            let mut check = true;
            loop {
                s.ws();
                if s.peek()? != b'"' {
                    return None;
                }
                let named = s.member(|name| self.names.iter().position(|n| n == name))?;
                if let Some(k) = named {
                    if at[k] == usize::MAX {
                        unmet -= 1;
                    }
                    at[k] = s.i;
                }
                s.skip_value()?;
                if named.is_some() && unmet == 0 && check {
                    // Every name met: the rest, checked 16 bytes a step, settles it
                    // unless one of the names may come again.
                    match close_structure(b, s.i, 1, Some(&self.watch))? {
                        Rest::Whole => return Some(()),
                        Rest::Repeats => check = false,
                    }
                }
                if !s.more_members()? {
                    break;
                }
            }
        }
        only_whitespace(&b[s.i..]).then_some(())
    }
}

/// The key text of the value that starts at `at` of `record` (as found by
/// [`TopNames::locate`]): borrowed where no unescaping is needed, written into
/// `scratch` otherwise; `None` for `null`.
pub fn value_at<'a>(record: &'a [u8], at: usize, scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    let found = Scanner { b: record, i: at }.value_found(scratch)?;
    Some(found.text(record, scratch))
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// At an opening quote: moves past the closing quote and returns the content
    /// span and whether it holds escapes.
    #[inline]
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        let start = self.i + 1;
        let mut j = start;
        let mut escaped = false;
        loop {
            j = quote_or_backslash(self.b, j)?;
            if self.b[j] == b'\\' {
                escaped = true;
                j += 2;
                if j > self.b.len() {
                    return None;
                }
            } else {
                self.i = j + 1;
                return Some((start, j, escaped));
            }
        }
    }

    /// At a member's opening quote: moves past its name and `:` to the value and
    /// returns whether the name (unescaped) is `seg`.
    #[inline]
    fn member_named(&mut self, seg: &[u8]) -> Option<bool> {
        Some(self.member(|name| (name == seg).then_some(()))?.is_some())
    }

    /// At a member's opening quote: moves past its name and `:` to the value and
    /// returns what `pick` makes of the name (unescaped; a malformed escape is no
    /// name `pick` is asked about).
    #[inline]
    fn member<T>(&mut self, pick: impl Fn(&[u8]) -> Option<T>) -> Option<Option<T>> {
        let (start, end, escaped) = self.string()?;
        self.ws();
        if self.peek()? != b':' {
            return None;
        }
        self.i += 1;
        self.ws();
        let name = &self.b[start..end];
        Some(if escaped { unescape(name).and_then(|n| pick(&n)) } else { pick(name) })
    }

    /// After a member's value: past a `,` (`true`: another member follows) or the
    /// object's closing `}` (`false`); `None` if neither comes.
    #[inline]
    fn more_members(&mut self) -> Option<bool> {
        self.ws();
        let more = match self.peek()? {
            b',' => true,
            b'}' => false,
            _ => return None,
        };
        self.i += 1;
        Some(more)
    }

    /// Skips one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some(())
    }

    /// Where the key text of the value here is (unescaped into `scratch` if it
    /// must be); `None` for `null` or a malformed value.
    fn value_found(&mut self, scratch: &mut Vec<u8>) -> Option<Found> {
        match self.peek()? {
            b'"' => {
                let (start, end, escaped) = self.string()?;
                if !escaped {
                    return Some(Found::Raw(start, end));
                }
                match unescape(&self.b[start..end])? {
                    Cow::Borrowed(_) => Some(Found::Raw(start, end)),
                    Cow::Owned(v) => {
                        *scratch = v;
                        Some(Found::Scratch)
                    }
                }
            }
            _ => {
                let start = self.i;
                self.skip_value()?;
                (&self.b[start..self.i] != b"null").then_some(Found::Raw(start, self.i))
            }
        }
    }
}

/// From `from` (just after a member's value, outside any string, inside `open`
/// objects), finds the `}` that closes the outermost one by structure alone
/// (strings and brackets), and requires only whitespace after it. Sixteen bytes a
/// step while no backslash is in sight; from a chunk with one, byte by byte. With
/// a `watch`, stops early at a string that starts with a watched name and its
/// closing quote, or at an escape that could spell one ([`Rest::Repeats`]).
fn close_structure(b: &[u8], from: usize, open: usize, watch: Option<&Watch>) -> Option<Rest> {
    let mut depth = open;
    // All ones while inside a string at the start of the next chunk.
    let mut in_string = 0u32;
    // 1 when a string opened at the last byte of the chunk before.
    let mut opened_before = 0u32;
    let mut at = from;
    let end = loop {
        if at >= b.len() {
            return None;
        }
        let n = (b.len() - at).min(16);
        let mut buf = [0u8; 16];
        let block: &[u8; 16] = match b[at..at + n].try_into() {
            Ok(full) => full,
            Err(_) => {
                buf[..n].copy_from_slice(&b[at..at + n]);
                &buf
            }
        };
        let (quote, slash, opens, closes) = classify16(block);
        if slash != 0 {
            if watch.is_some_and(|w| opened_before != 0 && w.name_at(b, at)) {
                return Some(Rest::Repeats);
            }
            match close_structure_bytes(b, at, in_string != 0, depth, watch)? {
                Walk::End(e) => break e,
                Walk::Repeats => return Some(Rest::Repeats),
            }
        }
        // Inside-string mask: a prefix XOR of the quotes (set from an opening quote
        // up to, not including, its closing quote), carried across chunks.
        let mut inside = quote;
        inside ^= inside << 1;
        inside ^= inside << 2;
        inside ^= inside << 4;
        inside ^= inside << 8;
        inside = (inside ^ in_string) & 0xFFFF;
        in_string = if inside & 0x8000 != 0 { u32::MAX } else { 0 };
        if let Some(w) = watch {
            // Opening quotes are the quotes inside the mask; a name starts after one.
            let opening = quote & inside;
            let starts = ((opening << 1) | opened_before) & 0xFFFF;
            opened_before = opening >> 15;
            if starts != 0 && w.names_in(b, at, block, starts) {
                return Some(Rest::Repeats);
            }
        }
        let mut brackets = (opens | closes) & !inside;
        let mut found = None;
        while brackets != 0 {
            let k = brackets.trailing_zeros();
            brackets &= brackets - 1;
            if opens & (1 << k) != 0 {
                depth += 1;
            } else {
                depth -= 1;
                if depth == 0 {
                    found = Some(at + k as usize + 1);
                    break;
                }
            }
        }
        if let Some(e) = found {
            break e;
        }
        at += n;
    };
    only_whitespace(&b[end..]).then_some(Rest::Whole)
}

/// Whether `b` is JSON white space only.
fn only_whitespace(b: &[u8]) -> bool {
    b.iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

/// How [`close_structure_bytes`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Just after the `}` that closed the outermost object.
    End(usize),
    /// At a watched name, or an escape that could spell one.
    Repeats,
}

/// [`close_structure`] byte by byte from `at` (escapes included).
fn close_structure_bytes(
    b: &[u8],
    at: usize,
    mut in_string: bool,
    mut depth: usize,
    watch: Option<&Watch>,
) -> Option<Walk> {
    let mut i = at;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => {
                    if watch.is_some_and(|w| w.plain_escapes || b.get(i + 1) == Some(&b'u')) {
                        return Some(Walk::Repeats);
                    }
                    i += 1;
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => {
                    if watch.is_some_and(|w| w.name_at(b, i + 1)) {
                        return Some(Walk::Repeats);
                    }
                    in_string = true;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(Walk::End(i + 1));
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Bit masks of `"`, `\\`, `{`/`[` and `}`/`]` in 16 bytes (bit i: byte i).
#[inline(always)]
fn classify16(bytes: &[u8; 16]) -> (u32, u32, u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes
        // of `bytes`.
        unsafe {
            let v = _mm_loadu_si128(bytes.as_ptr() as *const __m128i);
            let mask = |c: u8, v: __m128i| {
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))) as u32
            };
            // `[` and `]` are `{` and `}` without the 0x20 bit.
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            (mask(b'"', v), mask(b'\\', v), mask(b'{', folded), mask(b'}', folded))
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut m = (0u32, 0u32, 0u32, 0u32);
        for (i, &c) in bytes.iter().enumerate() {
            let bit = 1u32 << i;
            match c {
                b'"' => m.0 |= bit,
                b'\\' => m.1 |= bit,
                b'{' | b'[' => m.2 |= bit,
                b'}' | b']' => m.3 |= bit,
                _ => {}
            }
        }
        m
    }
}

/// Bit mask of the bytes equal to `c` in `block` (bit i: byte i).
#[inline(always)]
fn eq16(block: &[u8; 16], c: u8) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes
        // of `block`.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block.iter().enumerate().fold(0, |m, (i, &b)| m | u32::from(b == c) << i)
    }
}

/// The first `"` or `\\` at or after `from`. Strings in log records are short
/// (names, UUIDs, messages of a few dozen bytes), where a call into `memchr2`
/// costs more than the scan: this one is inlined and looks at 16 bytes a step.
#[inline(always)]
fn quote_or_backslash(b: &[u8], mut from: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16 bytes
        // inside `b` (`from + 16 <= b.len()`), unaligned loads are allowed.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let slash = _mm_set1_epi8(b'\\' as i8);
            while from + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(from) as *const __m128i);
                let hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash));
                let m = _mm_movemask_epi8(hit) as u32;
                if m != 0 {
                    return Some(from + m.trailing_zeros() as usize);
                }
                from += 16;
            }
        }
    }
    b.get(from..)?.iter().position(|&c| c == b'"' || c == b'\\').map(|p| from + p)
}

/// Unescapes a JSON string's content. Returns `None` for a malformed escape.
fn unescape(s: &[u8]) -> Option<Cow<'_, [u8]>> {
    if memchr::memchr(b'\\', s).is_none() {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *s.get(i + 1)?;
        i += 2;
        match e {
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let hi = hex4(s.get(i..i + 4)?)?;
                i += 4;
                let cp = if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate must be followed by `\uDC00`..`\uDFFF`.
                    if s.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(s.get(i + 2..i + 6)?)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return None;
                } else {
                    hi
                };
                let ch = char::from_u32(cp)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(Cow::Owned(out))
}

fn hex4(h: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in h {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(path: &str, rec: &str) -> Option<String> {
        let p = JsonPath::parse("--key", path).unwrap();
        let mut scratch = Vec::new();
        p.find(rec.as_bytes(), &mut scratch).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn paths_parse() {
        let p = JsonPath::parse("--key", ".a.\"b.c\".d").unwrap();
        assert_eq!(p.segments(), &[b"a".to_vec(), b"b.c".to_vec(), b"d".to_vec()]);
        for bad in ["", "a", ".", "..a", ".\"x", ".\"x\"y", ".a[0]"] {
            let err = JsonPath::parse("--key", bad).unwrap_err();
            assert_eq!(err.flag, "--key", "{bad}");
        }
    }

    #[test]
    fn finds_values() {
        let rec = r#"{"a":1,"s":"x\"y","n":{"request_id":"inner"},"request_id":"abc","num":42,"neg":-1.5e3,"t":true,"z":null,"arr":[1,{"q":"]"}],"id.orig_h":"10.0.0.1"}"#;
        assert_eq!(find(".request_id", rec).as_deref(), Some("abc"));
        assert_eq!(find(".n.request_id", rec).as_deref(), Some("inner"));
        assert_eq!(find(".num", rec).as_deref(), Some("42"));
        assert_eq!(find(".neg", rec).as_deref(), Some("-1.5e3"));
        assert_eq!(find(".t", rec).as_deref(), Some("true"));
        assert_eq!(find(".z", rec), None);
        assert_eq!(find(".s", rec).as_deref(), Some("x\"y"));
        assert_eq!(find(".arr", rec).as_deref(), Some(r#"[1,{"q":"]"}]"#));
        assert_eq!(find(".\"id.orig_h\"", rec).as_deref(), Some("10.0.0.1"));
        assert_eq!(find(".id.orig_h", rec), None);
        assert_eq!(find(".missing", rec), None);
        assert_eq!(find(".a.b", rec), None);
    }

    /// The plain byte walk's answer to what [`close_structure`] decides (from
    /// outside any string: a quote just before `from` closed one).
    fn by_bytes(rec: &[u8], from: usize, open: usize, watch: Option<&Watch>) -> Option<Rest> {
        match close_structure_bytes(rec, from, false, open, watch)? {
            Walk::Repeats => Some(Rest::Repeats),
            Walk::End(end) => {
                rec[end..].iter().all(|c| matches!(c, b' ' | b'\n')).then_some(Rest::Whole)
            }
        }
    }

    proptest::proptest! {
        /// The 16-bytes-a-step structure check agrees with the plain byte walk, on
        /// inputs made of the bytes that matter, wherever it starts and however
        /// deep.
        #[test]
        fn close_structure_agrees_with_the_byte_walk(
            rec in proptest::collection::vec(
                proptest::sample::select(b"\"\\{}[]a :,\n".to_vec()), 0..90),
            from in 0usize..90,
            open in 1usize..3,
        ) {
            let from = from.min(rec.len());
            proptest::prop_assert_eq!(
                close_structure(&rec, from, open, None),
                by_bytes(&rec, from, open, None)
            );
            // Looking out for names (`a`; `a/`, which any escape may spell): the two
            // agree on when the rest is whole with no name again. (Where it is not,
            // either answer leads to the full reading, which decides.)
            for w in [Watch::of(&[b"a".to_vec()]), Watch::of(&[b"a/".to_vec()])] {
                let whole = |r: Option<Rest>| r == Some(Rest::Whole);
                proptest::prop_assert_eq!(
                    whole(close_structure(&rec, from, open, Some(&w))),
                    whole(by_bytes(&rec, from, open, Some(&w)))
                );
            }
        }

        /// The same on records built of strings (with brackets inside), brackets,
        /// commas and letters, most closed by as many `}` as are open, so that
        /// most have an end to find; with and without escapes.
        #[test]
        fn close_structure_agrees_on_near_json(
            pieces in proptest::collection::vec((0u8..7, 0usize..24), 0..40),
            open in 1usize..5,
            closed in proptest::bool::weighted(0.8),
            escapes in proptest::bool::ANY,
            trail in 0usize..3,
        ) {
            let mut rec = Vec::new();
            for (kind, len) in pieces {
                match kind {
                    0 | 1 => {
                        rec.push(b'"');
                        for i in 0..len {
                            rec.push(match i % 7 {
                                2 => b'}',
                                4 => b'[',
                                5 if escapes => b'\\',
                                _ => b'a',
                            });
                            if i % 7 == 5 && escapes {
                                rec.push(b'"');
                            }
                        }
                        rec.push(b'"');
                    }
                    2 => rec.push(b'['),
                    3 => rec.push(b']'),
                    4 => rec.push(b'{'),
                    5 => rec.push(b','),
                    _ => rec.extend(std::iter::repeat_n(b'a', len)),
                }
            }
            if closed {
                rec.extend(std::iter::repeat_n(b'}', open));
            }
            rec.extend(std::iter::repeat_n(b' ', trail));
            proptest::prop_assert_eq!(
                close_structure(&rec, 0, open, None),
                by_bytes(&rec, 0, open, None)
            );
            let w = Watch::of(&[b"aa".to_vec()]);
            let whole = |r: Option<Rest>| r == Some(Rest::Whole);
            proptest::prop_assert_eq!(
                whole(close_structure(&rec, 0, open, Some(&w))),
                whole(by_bytes(&rec, 0, open, Some(&w)))
            );
        }
    }

    #[test]
    fn structure_after_the_key() {
        // Brackets and escaped quotes inside strings do not count.
        assert_eq!(find(".k", r#"{"k":1,"m":"}\"}]","z":[{"y":"{"}]}"#).as_deref(), Some("1"));
        assert_eq!(find(".k", r#"{"k":1,"m":"a\\"}"#).as_deref(), Some("1"));
        assert_eq!(find(".k", r#"{"k":1,"m":"a\"}"#), None);
        // Long records cross many 16-byte chunks, with and without escapes.
        let long = format!(r#"{{"k":"v","m":"{}","n":[{}]}}"#, "x".repeat(100), "[]".repeat(40));
        assert_eq!(find(".k", &long).as_deref(), Some("v"));
        assert_eq!(find(".k", &long[..long.len() - 1]), None);
        let escaped = long.replace("xxxx", "x\\\"");
        assert_eq!(find(".k", &escaped).as_deref(), Some("v"));
        assert_eq!(find(".k", &escaped[..escaped.len() - 2]), None);
    }

    #[test]
    fn a_name_given_twice_takes_the_last_member() {
        assert_eq!(find(".id", r#"{"id":1,"id":2}"#).as_deref(), Some("2"));
        assert_eq!(find(".id", r#"{"id":1,"x":"id","y":3}"#).as_deref(), Some("1"));
        assert_eq!(find(".id", r#"{"id":1,"id":null}"#), None);
        assert_eq!(find(".id", r#"{"id":null,"id":"z"}"#).as_deref(), Some("z"));
        // Spelled with an escape, the name is the same name.
        assert_eq!(find(".id", r#"{"id":1,"i\u0064":2}"#).as_deref(), Some("2"));
        assert_eq!(find(".id", r#"{"id":1,"m":"\u0041"}"#).as_deref(), Some("1"));
        assert_eq!(find(".a/b", r#"{"a/b":1,"a\/b":2}"#).as_deref(), Some("2"));
        // Inner names, and an outer name given twice.
        assert_eq!(find(".a.b", r#"{"a":{"b":1,"b":2}}"#).as_deref(), Some("2"));
        assert_eq!(find(".a.b", r#"{"a":{"b":1},"a":{"b":3}}"#).as_deref(), Some("3"));
        assert_eq!(find(".a.b", r#"{"a":{"b":1},"a":{"c":3}}"#), None);
        assert_eq!(find(".a.b", r#"{"a":{"c":1},"a":{"b":4}}"#).as_deref(), Some("4"));
        // The same name deeper down is another member.
        assert_eq!(find(".id", r#"{"id":1,"n":{"id":2}}"#).as_deref(), Some("1"));
        // The second walk keeps the first one's rules: malformed or cut short, no key.
        assert_eq!(find(".id", r#"{"id":1,"id":2"#), None);
        assert_eq!(find(".id", r#"{"id":1,"id":2,}"#), None);
        assert_eq!(find(".id", r#"{"id":1,"id":2} x"#), None);
        assert_eq!(find(".id", "{\"id\":1,\"id\":2}\r\n").as_deref(), Some("2"));
    }

    /// A JSON value, rendered by [`render`] with the spacing and escapes a noise
    /// stream chooses.
    #[derive(Debug, Clone)]
    enum Model {
        Str(String),
        Int(i64),
        Bool(bool),
        Null,
        Arr(Vec<Model>),
        Obj(Vec<(String, Model)>),
    }

    /// Names few enough to repeat, some with dots, escapable or non-ASCII bytes.
    const NAMES: [&str; 7] = ["a", "b", "id", "a.b", "é", "/", "x\"y"];

    /// Paths through those names.
    const PATHS: [&str; 13] = [
        ".a",
        ".b",
        ".id",
        ".\"a.b\"",
        ".é",
        ".\"/\"",
        ".\"x\\\"y\"",
        ".a.b",
        ".b.a",
        ".a.a",
        ".a.id",
        ".b.a.b",
        ".\"a.b\".a",
    ];

    /// A member name: mostly `a` or `b`, so that paths through them and names given
    /// twice are common.
    fn name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            3 => Just("a"),
            3 => Just("b"),
            2 => proptest::sample::select(NAMES.to_vec()),
        ]
        .prop_map(String::from)
    }

    fn model() -> impl proptest::strategy::Strategy<Value = Model> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            "[a-z\"\\\\}\\]{é/]{0,6}".prop_map(Model::Str),
            any::<i64>().prop_map(Model::Int),
            any::<bool>().prop_map(Model::Bool),
            Just(Model::Null),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                1 => proptest::collection::vec(inner.clone(), 0..4).prop_map(Model::Arr),
                3 => proptest::collection::vec((name(), inner), 0..5).prop_map(Model::Obj),
            ]
        })
    }

    /// A JSON object record of up to six members, rendered with the spacing and
    /// escapes a noise stream chooses.
    fn record() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        (
            proptest::collection::vec((name(), model()), 0..7),
            proptest::collection::vec(any::<u8>(), 1..64),
        )
            .prop_map(|(members, noise)| {
                let mut rec = Vec::new();
                render(&Model::Obj(members), &mut noise.iter().copied().cycle(), &mut rec);
                rec
            })
    }

    fn render(m: &Model, noise: &mut impl Iterator<Item = u8>, out: &mut Vec<u8>) {
        let ws = |noise: &mut dyn Iterator<Item = u8>, out: &mut Vec<u8>| {
            if noise.next().unwrap().is_multiple_of(4) {
                out.extend_from_slice(b" \t"[..1 + (noise.next().unwrap() % 2) as usize].as_ref());
            }
        };
        let string = |s: &str, noise: &mut dyn Iterator<Item = u8>, out: &mut Vec<u8>| {
            out.push(b'"');
            for ch in s.chars() {
                let n = noise.next().unwrap() % 4;
                match ch {
                    _ if n == 0 && (ch as u32) < 0x10000 => {
                        out.extend_from_slice(format!("\\u{:04x}", ch as u32).as_bytes())
                    }
                    '"' => out.extend_from_slice(b"\\\""),
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '/' if n == 1 => out.extend_from_slice(b"\\/"),
                    _ => out.extend_from_slice(ch.to_string().as_bytes()),
                }
            }
            out.push(b'"');
        };
        ws(noise, out);
        match m {
            Model::Str(s) => string(s, noise, out),
            Model::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Model::Bool(b) => out.extend_from_slice(b.to_string().as_bytes()),
            Model::Null => out.extend_from_slice(b"null"),
            Model::Arr(items) => {
                out.push(b'[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    render(item, noise, out);
                }
                ws(noise, out);
                out.push(b']');
            }
            Model::Obj(members) => {
                out.push(b'{');
                for (k, (name, value)) in members.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    ws(noise, out);
                    string(name, noise, out);
                    ws(noise, out);
                    out.push(b':');
                    render(value, noise, out);
                }
                ws(noise, out);
                out.push(b'}');
            }
        }
        ws(noise, out);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// On valid JSON objects with names given twice, escaped names, nested
        /// objects and arrays, the key is what serde_json reads at the path: a
        /// string's content, a number's or literal's text, a container that parses
        /// to the same value; `null` and a missing member give none.
        #[test]
        fn the_key_is_what_a_full_parser_reads(
            rec in record(),
            path in proptest::sample::select(PATHS.to_vec()),
        ) {
            let parsed: serde_json::Value = serde_json::from_slice(&rec).unwrap();
            let p = JsonPath::parse("--key", path).unwrap();
            let mut at = Some(&parsed);
            for seg in p.segments() {
                let name = std::str::from_utf8(seg).unwrap();
                at = at.and_then(|v| v.as_object()).and_then(|o| o.get(name));
            }
            let mut scratch = Vec::new();
            let got = p.find(&rec, &mut scratch);
            let show = String::from_utf8_lossy(&rec);
            match at {
                None | Some(serde_json::Value::Null) => proptest::prop_assert_eq!(got, None, "{}", show),
                Some(serde_json::Value::String(s)) => {
                    proptest::prop_assert_eq!(got, Some(s.as_bytes()), "{}", show)
                }
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    let text = v.to_string();
                    proptest::prop_assert_eq!(got, Some(text.as_bytes()), "{}", show)
                }
                Some(v) => {
                    let got = got.expect("a container is a key");
                    let back: serde_json::Value = serde_json::from_slice(got).unwrap();
                    proptest::prop_assert_eq!(&back, v, "{}", show);
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// A composite of two paths keys a record exactly when each path alone
        /// does, with the same texts, and a key (single or composite) read with a
        /// time field gives what each path alone gives: whether each part is found
        /// on its own or all in one walk ([`crate::key::Fields`], when all are
        /// top-level names), names given twice, records cut short and whole
        /// records with more after them included. (Not a cut record with more
        /// after it: `{"a":1,` + `}` closes by structure with a grammar error,
        /// which the check of the rest does not look for, and the walks read
        /// different stretches of such a record by member.)
        #[test]
        fn fields_read_what_each_path_reads(
            whole in record(),
            cut in proptest::option::of(0usize..300),
            junk in proptest::sample::select(vec!["", "", "", "x", "}", " {}", "\""]),
            first in proptest::sample::select(PATHS.to_vec()),
            second in proptest::sample::select(PATHS.to_vec()),
            time in proptest::sample::select(PATHS.to_vec()),
        ) {
            use crate::key::{Fields, KeySpec};
            let mut rec = whole.clone();
            match cut {
                Some(c) => rec.truncate(c),
                None => rec.extend_from_slice(junk.as_bytes()),
            }
            let rec = &rec[..];
            let show = String::from_utf8_lossy(rec);
            let alone = |path: &str| {
                let mut scratch = Vec::new();
                JsonPath::parse("--key", path).unwrap().find(rec, &mut scratch).map(<[u8]>::to_vec)
            };
            let expected = alone(first).zip(alone(second)).map(|(a, b)| {
                let mut k = Vec::new();
                for part in [a, b] {
                    // The encoding's length prefix: LEB128.
                    let mut n = part.len();
                    while n >= 0x80 {
                        k.push((n as u8) | 0x80);
                        n >>= 7;
                    }
                    k.push(n as u8);
                    k.extend_from_slice(&part);
                }
                k
            });
            let spec = |paths: &[&str]| {
                let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
                KeySpec::parse(&paths, None, crate::config::KeyType::Str).unwrap()
            };
            let composite = spec(&[first, second]);
            let mut scratch = composite.scratch();
            let got = composite.extract(rec, &mut scratch).map(|k| k.bytes().to_vec());
            proptest::prop_assert_eq!(&got, &expected, "extract: {}", show);

            let fields = Fields::new(composite, None);
            let mut scratch = fields.scratch();
            fields.read(rec, &mut scratch);
            let got = fields.key(rec, &mut scratch).map(|k| k.bytes().to_vec());
            proptest::prop_assert_eq!(&got, &expected, "one walk: {}", show);

            let fields = Fields::new(spec(&[first]), Some(spec(&[time])));
            let mut scratch = fields.scratch();
            fields.read(rec, &mut scratch);
            let got = fields.time(rec, &mut scratch).map(<[u8]>::to_vec);
            proptest::prop_assert_eq!(got, alone(time), "time: {}", show);
            let got = fields.key(rec, &mut scratch).map(|k| k.bytes().to_vec());
            proptest::prop_assert_eq!(got, alone(first), "key with a time: {}", show);

            let fields = Fields::new(spec(&[first, second]), Some(spec(&[time])));
            let mut scratch = fields.scratch();
            fields.read(rec, &mut scratch);
            let got = fields.time(rec, &mut scratch).map(<[u8]>::to_vec);
            proptest::prop_assert_eq!(got, alone(time), "time of a composite: {}", show);
            let got = fields.key(rec, &mut scratch).map(|k| k.bytes().to_vec());
            proptest::prop_assert_eq!(&got, &expected, "composite with a time: {}", show);
        }
    }

    #[test]
    fn string_and_number_are_the_same_text() {
        assert_eq!(find(".id", r#"{"id":"42"}"#), find(".id", r#"{"id":42}"#));
    }

    #[test]
    fn unescapes() {
        assert_eq!(find(".k", r#"{"k":"a\\b\u00e9\ud83d\ude00"}"#).as_deref(), Some("a\\bé😀"));
        assert_eq!(find(".k", r#"{"k":"\x"}"#), None);
        assert_eq!(find(".k", r#"{"k":"\ud83d"}"#), None);
        // Escaped member names are compared unescaped.
        assert_eq!(find(".ab", r#"{"a\u0062":7}"#).as_deref(), Some("7"));
    }

    #[test]
    fn not_json_is_no_key() {
        for rec in [
            "",
            "plain text",
            "[1,2]",
            "{",
            "{\"k\"",
            "{\"k\":",
            "{\"k\":\"x",
            "{\"a\":1 \"k\":2}",
            "{\"a\":\"\\",
        ] {
            assert_eq!(find(".k", rec), None, "{rec}");
        }
        assert_eq!(find(".k", "  {\"k\" : \"v\" }").as_deref(), Some("v"));
        // Cut short after the key: not JSON, so no key.
        for rec in [
            "{\"k\":1",
            "{\"k\":\"a\",\"msg\":\"cut sh",
            "{\"k\":1,",
            "{\"k\":1}}",
            "{\"k\":1} x",
            "{\"a\":{\"k\":1}",
        ] {
            assert_eq!(find(".k", rec), None, "{rec}");
            assert_eq!(find(".a.k", rec), None, "{rec}");
        }
        assert_eq!(find(".a.k", "{\"a\":{\"k\":1,\"z\":[1,{}]},\"b\":2} ").as_deref(), Some("1"));
    }
}
