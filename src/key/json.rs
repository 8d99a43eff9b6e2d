//! JSON-path keys (`.a`, `.a.b`, `."id.orig_h"`) found by a targeted scan.
//!
//! The scanner walks only the object members on the way to the path: it compares
//! member names, steps over the values it does not need and never builds a
//! document. The key is the value's text: a string's unescaped content, a
//! number's literal, `true`/`false`, or a container's raw bytes; so `"42"` and
//! `42` are the same ID. `null`, a missing member and input that is not a JSON
//! object give no key.
//!
//! A record with a key is valid JSON (RFC 8259): every value stepped over is
//! checked for its grammar (strings without raw control bytes, with valid escapes
//! and UTF-8; numbers; `true`, `false`, `null`; commas and colons where they
//! belong), and after the key the rest of the record is followed the same way to
//! its final `}`, with only white space after it. So a record cut short after its
//! key (a truncated write) or with a grammar error anywhere (a trailing comma, a
//! bad literal) stays unkeyed, as DESIGN asks of invalid JSON.
//!
//! A name given twice in one object: the last member counts, as in jq, Python,
//! JavaScript and serde_json. The scan stops at the first match; the walk of the
//! rest looks out for the path's names among the members of the objects on the
//! path, and only when one comes again does a second walk read every member of
//! each object on the path.

use std::borrow::Cow;

use crate::error::ConfigError;

/// A parsed path: the member names from the outermost object inwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    segments: Vec<Vec<u8>>,
    /// Its own names, for the checks it makes alone.
    watch: Watch,
}

/// The names the walk of the rest of a record looks out for: if a member with one
/// comes after the value found, it may override it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Watch {
    /// Distinct.
    names: Vec<Vec<u8>>,
}

impl Watch {
    /// The names of a path.
    fn of(segments: &[Vec<u8>]) -> Watch {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for seg in segments {
            if !names.contains(seg) {
                names.push(seg.clone());
            }
        }
        Watch { names }
    }

    /// Whether a member name, as written (`escaped`: with escapes), is watched.
    #[inline]
    fn holds(&self, written: &[u8], escaped: bool) -> bool {
        if escaped {
            unescape(written).is_some_and(|n| self.names.iter().any(|w| *w == *n))
        } else {
            self.names.iter().any(|w| w == written)
        }
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
    /// It is valid JSON to the final `}`, and no watched name comes again.
    Whole,
    /// A watched name comes again: read the record with [`JsonPath::find_last`]
    /// (which also checks the rest).
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
                    if b[i] == b'[' {
                        return Err(bad(
                            "array indexes are not supported (a path names object members only; \
                             quote a name that holds '[': .\"a[0]\")",
                        ));
                    }
                    if b[i] == b'"' {
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
                        // to the final `}`, looking out for the path's names.
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
        Scanner { b: record, i: self.from }.rest(self.open, watch)
    }
}

/// Several top-level member names (`.a`, `.b`, …: the parts of a composite key and
/// a time field) found in one walk of each record, rather than a walk and a check
/// of the rest per name: the members are read until every name has been met, the
/// rest is checked once, for its grammar and for any of the names coming again,
/// and only then (a name comes again) are the remaining members read too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopNames {
    /// The names (distinct), which the walk of the rest also looks out for.
    watch: Watch,
}

impl TopNames {
    /// The names of `paths` if each is a single member name, else `None`.
    pub fn of<'p>(paths: impl IntoIterator<Item = &'p JsonPath>) -> Option<TopNames> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for p in paths {
            let [name] = p.segments() else { return None };
            names.push(name.clone());
        }
        Some(TopNames { watch: Watch::of(&names) })
    }

    /// How many distinct names (the length of [`TopNames::locate`]'s `at`).
    pub(crate) fn len(&self) -> usize {
        self.watch.names.len()
    }

    /// The index of `path`'s name (a path given to [`TopNames::of`]).
    pub fn slot(&self, path: &JsonPath) -> Option<usize> {
        self.watch.names.iter().position(|n| path.segments() == std::slice::from_ref(n))
    }

    /// Whether `record` is a valid JSON object; if so, `at[k]` is where the value
    /// of the last member with the `k`-th name starts (read it with [`value_at`]), or
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
            let names = &self.watch.names;
            let mut unmet = names.len();
            let mut check = true;
            loop {
                s.ws();
                if s.peek()? != b'"' {
                    return None;
                }
                let named = s.member(|name| names.iter().position(|n| n == name))?;
                if let Some(k) = named {
                    if at[k] == usize::MAX {
                        unmet -= 1;
                    }
                    at[k] = s.i;
                }
                s.skip_value()?;
                if named.is_some() && unmet == 0 && check {
                    // Every name met: the rest settles it unless one of the names
                    // comes again.
                    match (Scanner { b, i: s.i }).rest(1, &self.watch)? {
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

/// Whether `record` is one valid JSON object (RFC 8259, the grammar the key
/// scanner checks), with only white space around it: what `--tag` may add a
/// member to.
pub fn is_object(record: &[u8]) -> bool {
    let mut s = Scanner { b: record, i: 0 };
    s.ws();
    s.peek() == Some(b'{') && s.container().is_some() && only_whitespace(&record[s.i..])
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

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// At an opening quote: checks the string (no raw control byte, escapes that
    /// JSON has, UTF-8), moves past its closing quote and returns the content span
    /// and whether it holds escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        let start = self.i + 1;
        if let Some(end) = plain_string_end(self.b, start) {
            self.i = end + 1;
            return Some((start, end, false));
        }
        self.long_string(start)
    }

    /// [`Scanner::string`] for the strings [`plain_string_end`] leaves: with
    /// escapes, control bytes or bytes of 0x80 and above (or in a record shorter
    /// than 16 bytes).
    #[inline(never)]
    fn long_string(&mut self, start: usize) -> Option<(usize, usize, bool)> {
        let b = self.b;
        let mut j = start;
        let mut escaped = false;
        let mut high = false;
        loop {
            let (at, h) = string_stop(b, j)?;
            high |= h;
            match b[at] {
                b'"' => {
                    if high && std::str::from_utf8(&b[start..at]).is_err() {
                        return None;
                    }
                    self.i = at + 1;
                    return Some((start, at, escaped));
                }
                b'\\' => {
                    escaped = true;
                    j = at
                        + match b.get(at + 1)? {
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                            b'u' if b.get(at + 2..at + 6)?.iter().all(u8::is_ascii_hexdigit) => 6,
                            _ => return None,
                        };
                }
                _ => return None, // a raw control byte
            }
        }
    }

    /// At a member's opening quote: past its name, the `:` and white space to the
    /// value; the name's span and whether it holds escapes.
    #[inline(always)]
    fn name(&mut self) -> Option<(usize, usize, bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        let name = self.string()?;
        self.ws();
        if self.peek()? != b':' {
            return None;
        }
        self.i += 1;
        self.ws();
        Some(name)
    }

    /// At a member's opening quote: moves past its name and `:` to the value and
    /// returns whether the name (unescaped) is `seg`.
    #[inline]
    fn member_named(&mut self, seg: &[u8]) -> Option<bool> {
        Some(self.member(|name| (name == seg).then_some(()))?.is_some())
    }

    /// At a member's opening quote: moves past its name and `:` to the value and
    /// returns what `pick` makes of the name (unescaped; a lone surrogate escape is
    /// no name `pick` is asked about).
    #[inline]
    fn member<T>(&mut self, pick: impl Fn(&[u8]) -> Option<T>) -> Option<Option<T>> {
        let (start, end, escaped) = self.name()?;
        let name = &self.b[start..end];
        Some(if escaped { unescape(name).and_then(|n| pick(&n)) } else { pick(name) })
    }

    /// After a member's value: past a `,` (`true`: another member follows) or the
    /// object's closing `}` (`false`); `None` if neither comes.
    #[inline(always)]
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

    /// Steps over one value of any kind, checking its grammar.
    #[inline(always)]
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' => self.container(),
            _ => self.scalar(),
        }
    }

    /// Steps over a string, number, `true`, `false` or `null`, checking it.
    #[inline(always)]
    fn scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let fits = self.b.get(self.i..)?.starts_with(word);
        fits.then(|| self.i += word.len())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`: what may follow it is for
    /// the caller to check.
    #[inline(always)]
    fn number(&mut self) -> Option<()> {
        let b = self.b;
        let mut i = self.i;
        let digits = |i: &mut usize| {
            let run = digit_run(b, *i);
            *i += run;
            run > 0
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                digits(&mut i);
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.i = i;
        Some(())
    }

    /// At `{` or `[`: checks the container and moves past its closing bracket.
    /// A loop over a stack of open containers, not recursion: a record may nest
    /// as deep as it is long.
    fn container(&mut self) -> Option<()> {
        let mut open = Nest::default();
        loop {
            // At a value.
            self.ws();
            match self.peek()? {
                c @ (b'{' | b'[') => {
                    self.i += 1;
                    self.ws();
                    let object = c == b'{';
                    if self.peek()? == if object { b'}' } else { b']' } {
                        self.i += 1;
                        if open.is_empty() {
                            return Some(());
                        }
                    } else {
                        open.push(object);
                        if object {
                            self.name()?;
                        }
                        continue;
                    }
                }
                _ => self.scalar()?,
            }
            // After a value: a comma and the next member or item, or the closing
            // brackets of the containers it ends.
            loop {
                let object = open.top();
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.ws();
                            self.name()?;
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return None,
                }
                self.i += 1;
                if open.pop() {
                    return Some(());
                }
            }
        }
    }

    /// After a member's value inside `open` objects: follows the rest of the
    /// record to the `}` that closes the outermost one, checking its grammar, and
    /// requires only white space after it. [`Rest::Repeats`] as soon as a member
    /// of one of those objects has a watched name.
    fn rest(&mut self, mut open: usize, watch: &Watch) -> Option<Rest> {
        let b = self.b;
        loop {
            // Compact JSON first: `,"name":` without white space, a plain name.
            let i = self.i;
            if b.get(i..i + 2) == Some(b",\"") {
                if let Some(end) = plain_string_end(b, i + 2) {
                    if b.get(end + 1) == Some(&b':') {
                        if watch.holds(&b[i + 2..end], false) {
                            return Some(Rest::Repeats);
                        }
                        self.i = end + 2;
                        self.ws();
                        self.skip_value()?;
                        continue;
                    }
                }
            }
            if self.more_members()? {
                self.ws();
                let (start, end, escaped) = self.name()?;
                if watch.holds(&self.b[start..end], escaped) {
                    return Some(Rest::Repeats);
                }
                self.skip_value()?;
            } else {
                open -= 1;
                if open == 0 {
                    return only_whitespace(&self.b[self.i..]).then_some(Rest::Whole);
                }
            }
        }
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

/// The kinds of the containers open inside a value (`true`: an object), innermost
/// last: a bit each, in a word while they are few.
#[derive(Default)]
struct Nest {
    depth: usize,
    near: u64,
    far: Vec<u64>,
}

impl Nest {
    #[inline]
    fn push(&mut self, object: bool) {
        let d = self.depth;
        if d < 64 {
            self.near = (self.near & !(1 << d)) | (u64::from(object) << d);
        } else {
            let (word, bit) = ((d - 64) / 64, (d - 64) % 64);
            if word == self.far.len() {
                self.far.push(0);
            }
            self.far[word] = (self.far[word] & !(1 << bit)) | (u64::from(object) << bit);
        }
        self.depth += 1;
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.depth == 0
    }

    /// The innermost one's kind (one is open).
    #[inline]
    fn top(&self) -> bool {
        let d = self.depth - 1;
        let bits = if d < 64 { self.near >> d } else { self.far[(d - 64) / 64] >> ((d - 64) % 64) };
        bits & 1 == 1
    }

    /// Closes the innermost one; whether none is left open.
    #[inline]
    fn pop(&mut self) -> bool {
        self.depth -= 1;
        self.depth == 0
    }
}

/// How many ASCII digits start at `i` of `b`: 16 at a time where 16 bytes are
/// left (numbers in log records are ports, sizes, counts and ids of a few to
/// twenty digits), byte by byte past them.
#[inline(always)]
fn digit_run(b: &[u8], i: usize) -> usize {
    let mut run = 0;
    #[cfg(target_arch = "x86_64")]
    if i + 16 <= b.len() {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes
        // `b[i..i + 16]`, inside `b`; unaligned loads are allowed.
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
            // A digit less '0' is at most 9 (unsigned); other bytes wrap past it.
            let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            let nine = _mm_set1_epi8(9);
            let digit = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(d, nine), nine)) as u32;
            run = (!digit).trailing_zeros() as usize;
            if run < 16 {
                return run;
            }
        }
    }
    while b.get(i + run).is_some_and(u8::is_ascii_digit) {
        run += 1;
    }
    run
}

/// Whether `b` is JSON white space only.
fn only_whitespace(b: &[u8]) -> bool {
    b.iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

/// The closing quote of a string whose content starts at `start`, if only plain
/// ASCII comes before it (no escape, no control byte, no byte of 0x80 or above):
/// most names and values in log records. Sixteen bytes a step, the last step a
/// load that ends with `b` (overlapping the step before); `None` sends the string
/// to [`Scanner::long_string`]. The steps of [`string_stop`], written out again on
/// purpose: `string_stop` and a plain check after it, or both loops over one
/// shared 16-byte classifier, cost 1-6 % more instructions on the keyed runs
/// (callgrind, 200k test lines).
#[inline(always)]
fn plain_string_end(b: &[u8], start: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if b.len() >= 16 {
        use std::arch::x86_64::*;
        let mut from = start;
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads the 16
        // bytes `b[at..at + 16]`, inside `b` (`at <= b.len() - 16`); unaligned loads
        // are allowed.
        unsafe {
            let below = _mm_set1_epi8(0x1f);
            let quote = _mm_set1_epi8(b'"' as i8);
            let slash = _mm_set1_epi8(b'\\' as i8);
            while from < b.len() {
                let at = from.min(b.len() - 16);
                let skip = from - at;
                let v = _mm_loadu_si128(b.as_ptr().add(at) as *const __m128i);
                let q = _mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u32 >> skip;
                let other = _mm_or_si128(
                    _mm_cmpeq_epi8(v, slash),
                    _mm_cmpeq_epi8(_mm_max_epu8(v, below), below),
                );
                let other = (_mm_movemask_epi8(other) | _mm_movemask_epi8(v)) as u32 >> skip;
                if q | other != 0 {
                    // Nothing but plain bytes below the first quote.
                    let plain = q != 0 && other & ((q & q.wrapping_neg()) - 1) == 0;
                    return plain.then(|| from + q.trailing_zeros() as usize);
                }
                from = at + 16;
            }
        }
    }
    None
}

/// Inside a string, from `from`: the first byte that ends its plain run (`"`,
/// `\\` or a raw control byte below 0x20), and whether a byte of 0x80 or above
/// came before it (the string's UTF-8 is then checked). Strings in log records are
/// short (names, UUIDs, messages of a few dozen bytes), where a call into `memchr`
/// costs more than the scan: this one is inlined and looks at 16 bytes a step, the
/// last step a load that ends with `b` (overlapping the step before).
#[inline(always)]
fn string_stop(b: &[u8], mut from: usize) -> Option<(usize, bool)> {
    let mut high = false;
    #[cfg(target_arch = "x86_64")]
    if b.len() >= 16 {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads the 16
        // bytes `b[at..at + 16]`, inside `b` (`at <= b.len() - 16`); unaligned loads
        // are allowed.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let slash = _mm_set1_epi8(b'\\' as i8);
            let below = _mm_set1_epi8(0x1f);
            while from < b.len() {
                // The bytes before `from` in an overlapping last load are shifted out.
                let at = from.min(b.len() - 16);
                let skip = from - at;
                let v = _mm_loadu_si128(b.as_ptr().add(at) as *const __m128i);
                // A byte is at most 0x1f (unsigned) iff max(byte, 0x1f) is 0x1f.
                let control = _mm_cmpeq_epi8(_mm_max_epu8(v, below), below);
                let stop = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                    control,
                );
                let m = _mm_movemask_epi8(stop) as u32 >> skip;
                let hi = _mm_movemask_epi8(v) as u32 >> skip;
                if m != 0 {
                    let k = m.trailing_zeros();
                    return Some((from + k as usize, high | (hi & ((1 << k) - 1) != 0)));
                }
                high |= hi != 0;
                from = at + 16;
            }
            return None;
        }
    }
    for (k, &c) in b.get(from..)?.iter().enumerate() {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return Some((from + k, high));
        }
        high |= c >= 0x80;
    }
    None
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

    #[test]
    fn structure_after_the_key() {
        // Brackets and escaped quotes inside strings do not count.
        assert_eq!(find(".k", r#"{"k":1,"m":"}\"}]","z":[{"y":"{"}]}"#).as_deref(), Some("1"));
        assert_eq!(find(".k", r#"{"k":1,"m":"a\\"}"#).as_deref(), Some("1"));
        assert_eq!(find(".k", r#"{"k":1,"m":"a\"}"#), None);
        // Long records cross many 16-byte chunks, with and without escapes.
        let long = format!(r#"{{"k":"v","m":"{}","n":[{}[]]}}"#, "x".repeat(100), "[],".repeat(40));
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

    /// A record after a few edits of single bytes (deleted, inserted or replaced by
    /// bytes that matter to JSON's grammar, control bytes and bytes that are not
    /// UTF-8), or cut short: mostly invalid, now and then still valid.
    fn edited() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        const BYTES: &[u8] = b"\"\\{}[],: \t0123456789-+.eEtrufalsn/u\x01\x1f\x7f\xc3\xa9\xff";
        (
            record(),
            proptest::collection::vec(
                (any::<usize>(), 0u8..3, proptest::sample::select(BYTES)),
                0..3,
            ),
            proptest::option::weighted(0.2, any::<usize>()),
        )
            .prop_map(|(mut rec, edits, cut)| {
                for (at, op, byte) in edits {
                    let at = at % (rec.len() + 1);
                    match op {
                        0 if at < rec.len() => {
                            rec.remove(at);
                        }
                        1 if at < rec.len() => rec[at] = byte,
                        _ => rec.insert(at, byte),
                    }
                }
                if let Some(c) = cut {
                    rec.truncate(c % (rec.len() + 1));
                }
                rec
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// A record has a key only if it is valid JSON as serde_json reads it (the
        /// grammar: `IgnoredAny`, which also lets lone surrogate escapes pass, as
        /// this scanner does outside the key) and UTF-8; and a valid one has the
        /// key a full parser reads.
        #[test]
        fn only_valid_json_has_a_key(
            rec in edited(),
            path in proptest::sample::select(PATHS.to_vec()),
        ) {
            let valid = std::str::from_utf8(&rec).is_ok()
                && serde_json::from_slice::<serde::de::IgnoredAny>(&rec).is_ok();
            let p = JsonPath::parse("--key", path).unwrap();
            let mut scratch = Vec::new();
            let got = p.find(&rec, &mut scratch).map(<[u8]>::to_vec);
            let show = String::from_utf8_lossy(&rec);
            if !valid {
                proptest::prop_assert_eq!(got, None, "{}", show);
            } else if let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&rec) {
                let mut at = Some(&parsed);
                for seg in p.segments() {
                    let name = std::str::from_utf8(seg).unwrap();
                    at = at.and_then(|v| v.as_object()).and_then(|o| o.get(name));
                }
                let want = match at {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.as_bytes().to_vec()),
                    Some(v @ serde_json::Value::Bool(_)) => Some(v.to_string().into_bytes()),
                    Some(v) => {
                        // A number or a container: its raw bytes, which parse to the
                        // same value (serde_json writes a number too long for an
                        // integer as a float).
                        let got = got.as_deref().expect("a container is a key");
                        let back: serde_json::Value = serde_json::from_slice(got).unwrap();
                        proptest::prop_assert_eq!(&back, v, "{}", show);
                        Some(got.to_vec())
                    }
                };
                proptest::prop_assert_eq!(got, want, "{}", show);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// `is_object` (what `--tag` may add a member to) says yes exactly to what
        /// serde_json reads as one object, white space around it allowed.
        #[test]
        fn is_object_is_what_a_full_parser_reads_as_an_object(
            rec in edited(),
            around in proptest::sample::select(vec!["", " ", "\r\n", "\n", " x", "\r"]),
        ) {
            let mut rec = rec;
            rec.extend_from_slice(around.as_bytes());
            let valid = std::str::from_utf8(&rec).is_ok()
                && serde_json::from_slice::<serde::de::IgnoredAny>(&rec).is_ok();
            let object = rec.iter().find(|b| !b" \t\r\n".contains(b)) == Some(&b'{');
            proptest::prop_assert_eq!(
                is_object(&rec),
                valid && object,
                "{}",
                String::from_utf8_lossy(&rec)
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// A composite of two paths keys a record exactly when each path alone
        /// does, with the same texts, and a key (single or composite) read with a
        /// time field gives what each path alone gives: whether each part is found
        /// on its own or all in one walk ([`crate::key::Fields`], when all are
        /// top-level names), names given twice, edited records, and records cut
        /// short or with more after them included.
        #[test]
        fn fields_read_what_each_path_reads(
            whole in edited(),
            cut in proptest::option::of(0usize..300),
            junk in proptest::sample::select(vec!["", "", "", "x", "}", " {}", "\""]),
            first in proptest::sample::select(PATHS.to_vec()),
            second in proptest::sample::select(PATHS.to_vec()),
            time in proptest::sample::select(PATHS.to_vec()),
        ) {
            use crate::key::{Fields, KeySpec};
            let mut rec = whole.clone();
            if let Some(c) = cut {
                rec.truncate(c);
            }
            rec.extend_from_slice(junk.as_bytes());
            let rec = &rec[..];
            let show = String::from_utf8_lossy(rec);
            // Each path alone, as a key part reads it: an empty string is no key.
            let alone = |path: &str| {
                let mut scratch = Vec::new();
                let found = JsonPath::parse("--key", path).unwrap().find(rec, &mut scratch);
                found.filter(|t| !t.is_empty()).map(<[u8]>::to_vec)
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
                KeySpec::parse(&paths, None, crate::key::KeyType::Str).unwrap()
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
        assert_eq!(find(".id", r#"{"id":"42"}"#).as_deref(), Some("42"));
        assert_eq!(find(".id", r#"{"id":42}"#).as_deref(), Some("42"));
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

    #[test]
    fn invalid_json_is_no_key() {
        // A grammar error before the key, in the key's value or after it.
        for rec in [
            r#"{"k":1,}"#,
            r#"{"k":1 "x":2}"#,
            r#"{"k":01}"#,
            r#"{"k":-}"#,
            r#"{"k":1.}"#,
            r#"{"k":.5}"#,
            r#"{"k":1e}"#,
            r#"{"k":+1}"#,
            r#"{"k":tru}"#,
            r#"{"k":NaN}"#,
            r#"{"k":truex}"#,
            r#"{"x":nul,"k":1}"#,
            r#"{"x":01,"k":1}"#,
            r#"{"x":[1,,2],"k":1}"#,
            r#"{"x":[1,2,],"k":1}"#,
            r#"{"x":{"a":1,},"k":1}"#,
            r#"{"x":{"a" 1},"k":1}"#,
            r#"{"x":[}],"k":1}"#,
            r#"{"k":1,"x":}"#,
            r#"{"k":1,"x"}"#,
            r#"{"k":1,"x":[1 2]}"#,
            r#"{"k":1,"x":{"a":1]}"#,
            r#"{"k":1,"x":"\q"}"#,
            r#"{"k":1,"x":"\u12"}"#,
            r#"{"k":1,"x":"\u12g4"}"#,
            r#"{"k":1}{"k":2}"#,
            "{\"k\":\"a\tb\"}",
            "{\"k\":1,\"x\":\"a\u{1}b\"}",
        ] {
            assert_eq!(find(".k", rec), None, "{rec}");
            assert_eq!(find(".x.a", rec), None, "{rec}");
        }
        // Bytes that are not UTF-8, in the key or anywhere else in a string.
        let p = JsonPath::parse("--key", ".k").unwrap();
        for rec in [
            &b"{\"k\":\"\xff\"}"[..],
            b"{\"k\":1,\"m\":\"ab\xc3\"}",
            b"{\"\xed\xa0\x80\":1,\"k\":1}",
        ] {
            assert_eq!(p.find(rec, &mut Vec::new()), None, "{}", String::from_utf8_lossy(rec));
        }
        // What JSON allows: white space everywhere, every escape, exponents, UTF-8.
        for rec in [
            " { \"k\" : 1 , \"x\" : [ ] , \"y\" : { } , \"z\" : [ 1 , { \"a\" : null } ] } \r\n",
            r#"{"k":1,"x":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00","y":-0.5e+10,"z":1E-2}"#,
            r#"{"x":0,"y":-0,"z":[true,false,null],"k":1}"#,
            "{\"k\":1,\"é\":\"日本\u{7f}\"}",
        ] {
            assert_eq!(find(".k", rec).as_deref(), Some("1"), "{rec}");
        }
    }

    #[test]
    fn nesting_as_deep_as_the_record_is_long() {
        // A loop with its own stack, not recursion: no overflow, and the kinds
        // of brackets are matched past the first 64 levels.
        let deep = |open: &str, close: &str, n: usize| {
            format!(r#"{{"a":{}0{},"k":1}}"#, open.repeat(n), close.repeat(n))
        };
        assert_eq!(find(".k", &deep("[", "]", 200_000)).as_deref(), Some("1"));
        assert_eq!(find(".k", &deep("[{\"b\":", "}]", 50_000)).as_deref(), Some("1"));
        let mut crossed = deep("[{\"b\":", "}]", 100);
        // The 80th closing `}` from the inside becomes `]`: a mismatch beyond 64.
        let inner = crossed.find('0').unwrap();
        crossed.replace_range(inner + 1 + 2 * 79..inner + 2 + 2 * 79, "]");
        assert_eq!(find(".k", &crossed), None);
        assert_eq!(find(".k", &deep("[", "]", 1000)[..1500]), None);
    }
}
