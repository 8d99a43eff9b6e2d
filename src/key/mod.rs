//! Key extraction: what identifies a record (`--key`, `--key-type`, `--delimiter`).
//!
//! A [`KeySpec`] turns a record's bytes into a [`Key`], or into nothing when the
//! record has no such key (it is then *unkeyed*, a verdict and not an error).
//! The encoding of a key is stable across versions, because the state directory
//! and the exact tier written by one version are read by the next:
//! - a single part is its text as found (a JSON string unescaped);
//! - a composite key (several `--key`) is each part's length as a LEB128 varint
//!   followed by the part's bytes, so `("ab","c")` and `("a","bc")` differ;
//! - under `--key-type auto`, a single part that is a canonical decimal i64 is an
//!   integer ID, mapped to u64 by flipping the sign bit.

pub mod field;
pub mod int;
pub mod json;

use regex::bytes::{CaptureLocations, Regex};

use crate::error::ConfigError;
pub use json::JsonPath;

/// `--key-type`: how a single-part key is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyType {
    /// Canonical decimal integers in the i64 range are integer IDs (so "42" and 42
    /// are the same ID), the rest strings.
    #[default]
    Auto,
    /// Every key must be a canonical decimal integer; other keys are unkeyed.
    Int,
    /// Every key is a string ID, hashed as text.
    Str,
}

/// One part of a key.
#[derive(Debug, Clone)]
pub enum KeyPart {
    /// The whole record (without its line terminator).
    Line,
    /// A JSON path.
    Json(JsonPath),
    /// The first capture group of a regex, or the whole match if it has none.
    Regex(Regex),
    /// The N-th field (from 1).
    Field(usize),
}

impl KeyPart {
    /// Parses one `--key` value: `line`, `.json.path`, `regex:PATTERN`, `field:N`.
    pub fn parse(flag: &str, text: &str) -> Result<KeyPart, ConfigError> {
        if text == "line" {
            Ok(KeyPart::Line)
        } else if text.starts_with('.') {
            Ok(KeyPart::Json(JsonPath::parse(flag, text)?))
        } else if let Some(pat) = text.strip_prefix("regex:") {
            if pat.is_empty() {
                return Err(ConfigError::new(
                    flag,
                    "empty pattern in 'regex:' (expected e.g. 'regex:blk_(-?[0-9]+)')",
                ));
            }
            let re = Regex::new(pat)
                .map_err(|e| ConfigError::new(flag, format!("invalid regex '{pat}': {e}")))?;
            Ok(KeyPart::Regex(re))
        } else if let Some(n) = text.strip_prefix("field:") {
            match n.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(KeyPart::Field(n)),
                _ => Err(ConfigError::new(
                    flag,
                    format!("invalid field number '{n}' in '{text}' (fields count from 1)"),
                )),
            }
        } else {
            Err(ConfigError::new(
                flag,
                format!(
                    "unknown key '{text}' (expected line, .json.path, regex:PATTERN or field:N)"
                ),
            ))
        }
    }
}

/// A key found in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// An integer ID (sign bit flipped), with its canonical text.
    Int {
        /// The mapped value.
        value: u64,
        /// Its canonical decimal text.
        text: &'a [u8],
    },
    /// A string ID: the stable encoding of the key's bytes.
    Str(&'a [u8]),
}

impl<'a> Key<'a> {
    /// The bytes that are hashed for the string path.
    pub fn bytes(&self) -> &'a [u8] {
        match *self {
            Key::Int { text, .. } => text,
            Key::Str(s) => s,
        }
    }
}

/// Reusable buffers for extraction, so the hot path does not allocate.
#[derive(Debug, Default)]
pub struct Scratch {
    part: Vec<u8>,
    key: Vec<u8>,
    locs: Vec<Option<CaptureLocations>>,
}

/// What identifies a record.
#[derive(Debug, Clone)]
pub struct KeySpec {
    parts: Vec<KeyPart>,
    delimiter: Option<u8>,
    key_type: KeyType,
}

impl KeySpec {
    /// The default: the whole line, auto-typed.
    pub fn line() -> KeySpec {
        KeySpec { parts: vec![KeyPart::Line], delimiter: None, key_type: KeyType::Auto }
    }

    /// Builds a key spec from parsed parts.
    pub fn new(
        parts: Vec<KeyPart>,
        delimiter: Option<u8>,
        key_type: KeyType,
    ) -> Result<KeySpec, ConfigError> {
        if parts.is_empty() {
            return Err(ConfigError::new("--key", "at least one key is needed"));
        }
        if parts.len() > 1 && key_type == KeyType::Int {
            return Err(ConfigError::new(
                "--key-type",
                "'int' needs a single --key: a composite key is a string",
            ));
        }
        Ok(KeySpec { parts, delimiter, key_type })
    }

    /// Parses `--key` values (repeated for a composite key).
    pub fn parse(
        keys: &[String],
        delimiter: Option<u8>,
        key_type: KeyType,
    ) -> Result<KeySpec, ConfigError> {
        let parts = if keys.is_empty() {
            vec![KeyPart::Line]
        } else {
            keys.iter().map(|k| KeyPart::parse("--key", k)).collect::<Result<_, _>>()?
        };
        KeySpec::new(parts, delimiter, key_type)
    }

    /// The spec as flags would spell it (for the state directory's settings).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|p| match p {
                KeyPart::Line => "line".to_string(),
                KeyPart::Json(j) => j
                    .segments()
                    .iter()
                    .map(|s| format!(".{}", quote(&String::from_utf8_lossy(s))))
                    .collect::<String>(),
                KeyPart::Regex(r) => format!("regex:{}", r.as_str()),
                KeyPart::Field(n) => format!("field:{n}"),
            })
            .collect();
        parts.join(" + ")
    }

    /// `--key-type`.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// `--delimiter`.
    pub fn delimiter(&self) -> Option<u8> {
        self.delimiter
    }

    /// The parts.
    pub fn parts(&self) -> &[KeyPart] {
        &self.parts
    }

    /// Whether the key is the whole line.
    pub fn is_line(&self) -> bool {
        matches!(self.parts.as_slice(), [KeyPart::Line])
    }

    /// A scratch space sized for this spec.
    pub fn scratch(&self) -> Scratch {
        let locs = self
            .parts
            .iter()
            .map(|p| match p {
                KeyPart::Regex(re) => Some(re.capture_locations()),
                _ => None,
            })
            .collect();
        Scratch { part: Vec::new(), key: Vec::new(), locs }
    }

    /// Extracts the key of `record` (its bytes without the line terminator).
    /// `None` means the record is unkeyed.
    pub fn extract<'a>(&self, record: &'a [u8], scratch: &'a mut Scratch) -> Option<Key<'a>> {
        let Scratch { part, key, locs } = scratch;
        if self.parts.len() == 1 {
            let text = extract_part(&self.parts[0], self.delimiter, record, part, &mut locs[0])?;
            return self.typed(text);
        }
        key.clear();
        for (p, loc) in self.parts.iter().zip(locs.iter_mut()) {
            let text = extract_part(p, self.delimiter, record, part, loc)?;
            push_part(key, text);
        }
        Some(Key::Str(key.as_slice()))
    }

    /// The key of a single part's text, under `--key-type`.
    fn typed<'a>(&self, text: &'a [u8]) -> Option<Key<'a>> {
        Some(match self.key_type {
            KeyType::Str => Key::Str(text),
            KeyType::Auto => match int::parse_canonical_i64(text) {
                Some(v) => Key::Int { value: int::to_u64(v), text },
                None => Key::Str(text),
            },
            KeyType::Int => {
                let v = int::parse_canonical_i64(text)?;
                Key::Int { value: int::to_u64(v), text }
            }
        })
    }

    /// Extracts the text of the first part only (used for the time field).
    pub fn extract_text<'a>(&self, record: &'a [u8], scratch: &'a mut Scratch) -> Option<&'a [u8]> {
        let Scratch { part, locs, .. } = scratch;
        extract_part(&self.parts[0], self.delimiter, record, part, &mut locs[0])
    }

    /// The JSON paths of the parts, if every part is one.
    fn json_paths(&self) -> Option<Vec<&JsonPath>> {
        self.parts
            .iter()
            .map(|p| match p {
                KeyPart::Json(j) => Some(j),
                _ => None,
            })
            .collect()
    }
}

/// What a record is read for: its key and, with `--time-field`, its event time.
///
/// Call [`Fields::read`] on a record before [`Fields::time`] and [`Fields::key`].
/// When the key's parts and the time field are all top-level JSON names and there
/// are two or more of them, one walk of the record finds them all
/// ([`json::TopNames`]); otherwise each is found on its own.
#[derive(Debug, Clone)]
pub struct Fields {
    key: KeySpec,
    time: Option<KeySpec>,
    joint: Option<Joint>,
}

/// The one-walk plan of [`Fields`].
#[derive(Debug, Clone)]
struct Joint {
    names: json::TopNames,
    /// The slot in `names` of each key part, in order.
    key: Vec<usize>,
    /// The slot of the time field.
    time: Option<usize>,
}

/// Reusable buffers for [`Fields`].
#[derive(Debug)]
pub struct FieldsScratch {
    key: Scratch,
    time: Option<Scratch>,
    /// Where each name's value starts ([`json::TopNames::locate`]).
    at: Vec<usize>,
    /// Whether the record read is a whole JSON object (one walk only).
    whole: bool,
}

impl Fields {
    /// Reads `key` and, if given, the time field `time` (its first part).
    pub fn new(key: KeySpec, time: Option<KeySpec>) -> Fields {
        let joint = (|| {
            let mut paths = key.json_paths()?;
            let time_path = match time.as_ref().map(|t| &t.parts()[0]) {
                Some(KeyPart::Json(j)) => Some(j),
                Some(_) => return None,
                None => None,
            };
            paths.extend(time_path);
            if paths.len() < 2 {
                // One name alone keeps its own walk (`JsonPath::find`).
                return None;
            }
            let names = json::TopNames::of(paths.iter().copied())?;
            let slot = |p: &JsonPath| names.slot(p).expect("a name given to TopNames::of");
            let key_slots = paths[..key.parts().len()].iter().map(|p| slot(p)).collect();
            let time = time_path.map(slot);
            Some(Joint { names, key: key_slots, time })
        })();
        Fields { key, time, joint }
    }

    /// Scratch space for these fields.
    pub fn scratch(&self) -> FieldsScratch {
        FieldsScratch {
            key: self.key.scratch(),
            time: self.time.as_ref().map(KeySpec::scratch),
            at: vec![usize::MAX; self.joint.as_ref().map_or(0, |j| j.names.len())],
            whole: false,
        }
    }

    /// Starts on `record` (its bytes without the line terminator).
    pub fn read(&self, record: &[u8], scratch: &mut FieldsScratch) {
        if let Some(j) = &self.joint {
            scratch.whole = j.names.locate(record, &mut scratch.at);
        }
    }

    /// The time field's text in the record last [`Fields::read`].
    pub fn time<'a>(&self, record: &'a [u8], scratch: &'a mut FieldsScratch) -> Option<&'a [u8]> {
        let ts = scratch.time.as_mut()?;
        match &self.joint {
            Some(j) => {
                if !scratch.whole {
                    return None;
                }
                located(record, scratch.at[j.time?], &mut ts.part)
            }
            None => self.time.as_ref()?.extract_text(record, ts),
        }
    }

    /// The key of the record last [`Fields::read`]; `None` if it is unkeyed.
    pub fn key<'a>(&self, record: &'a [u8], scratch: &'a mut FieldsScratch) -> Option<Key<'a>> {
        let Some(j) = &self.joint else { return self.key.extract(record, &mut scratch.key) };
        if !scratch.whole {
            return None;
        }
        let Scratch { part, key, .. } = &mut scratch.key;
        if let [slot] = j.key[..] {
            return self.key.typed(located(record, scratch.at[slot], part)?);
        }
        key.clear();
        for &slot in &j.key {
            push_part(key, located(record, scratch.at[slot], part)?);
        }
        Some(Key::Str(key.as_slice()))
    }
}

/// The text of the value found at `at` ([`json::TopNames::locate`]), if any (an
/// empty string is none, as in [`extract_part`]).
fn located<'a>(record: &'a [u8], at: usize, part: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    (at != usize::MAX).then(|| json::value_at(record, at, part))?.filter(|t| !t.is_empty())
}

/// Appends one part of a composite key: its length, then its bytes.
fn push_part(key: &mut Vec<u8>, text: &[u8]) {
    push_varint(key, text.len() as u64);
    key.extend_from_slice(text);
}

/// The text of one part of a key. An empty field, match or JSON string is no
/// key: records that lack a value must not all share the ID "" (the first one
/// kept, the rest dropped). The whole line is the exception: it is the record
/// itself, and empty lines are duplicates of each other as in `sort -u`.
fn extract_part<'a>(
    part: &KeyPart,
    delimiter: Option<u8>,
    record: &'a [u8],
    scratch: &'a mut Vec<u8>,
    locs: &mut Option<CaptureLocations>,
) -> Option<&'a [u8]> {
    let text = match part {
        KeyPart::Line => return Some(record),
        KeyPart::Json(path) => path.find(record, scratch),
        KeyPart::Field(n) => match delimiter {
            Some(d) => field::delimited_field(record, d, *n),
            None => field::whitespace_field(record, *n),
        },
        KeyPart::Regex(re) => {
            let locs = locs.as_mut()?;
            re.captures_read(locs, record)?;
            let (s, e) = if locs.len() > 1 { locs.get(1)? } else { locs.get(0)? };
            Some(&record[s..e])
        }
    };
    text.filter(|t| !t.is_empty())
}

/// A member name in double quotes, `"` and `\\` escaped, control characters as
/// `\n`, `\r`, `\t` or `\u{..}`. Part of the snapshot's settings text (see
/// [`KeySpec::describe`]): spelled out, not `Debug`, so it cannot change under us.
fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// LEB128: 7 bits a byte, high bit set on all but the last.
fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Parses `--delimiter`: one byte, or `\t`.
pub fn parse_delimiter(text: &str) -> Result<u8, ConfigError> {
    match text {
        "\\t" | "\t" => Ok(b'\t'),
        t if t.len() == 1 => Ok(t.as_bytes()[0]),
        _ => Err(ConfigError::new("--delimiter", format!("must be a single byte, got '{text}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(keys: &[&str], kt: KeyType) -> KeySpec {
        KeySpec::parse(&keys.iter().map(|s| s.to_string()).collect::<Vec<_>>(), None, kt).unwrap()
    }

    fn key_of(s: &KeySpec, rec: &[u8]) -> Option<(Option<u64>, Vec<u8>)> {
        let mut scratch = s.scratch();
        s.extract(rec, &mut scratch).map(|k| match k {
            Key::Int { value, text } => (Some(value), text.to_vec()),
            Key::Str(b) => (None, b.to_vec()),
        })
    }

    #[test]
    fn auto_int_and_str() {
        let s = spec(&[".id"], KeyType::Auto);
        assert_eq!(key_of(&s, br#"{"id":42}"#), Some((Some(int::to_u64(42)), b"42".to_vec())));
        assert_eq!(key_of(&s, br#"{"id":"42"}"#), key_of(&s, br#"{"id":42}"#));
        assert_eq!(key_of(&s, br#"{"id":"042"}"#), Some((None, b"042".to_vec())));
        let s = spec(&[".id"], KeyType::Str);
        assert_eq!(key_of(&s, br#"{"id":42}"#), Some((None, b"42".to_vec())));
        let s = spec(&[".id"], KeyType::Int);
        assert_eq!(key_of(&s, br#"{"id":"x"}"#), None);
    }

    /// The names in the snapshot's settings text read as they did when they were
    /// written with `Debug` (version 1 snapshots hold that text).
    #[test]
    fn quoted_names_match_the_v1_text() {
        for name in [
            "id",
            "request_id",
            "id.orig_h",
            "a\"b",
            "back\\slash",
            "tab\t",
            "nl\n",
            "é😀",
            "\u{1}",
        ] {
            assert_eq!(quote(name), format!("{name:?}"), "{name}");
        }
        let spec = spec(&[".a.\"b.c\"", "field:3", "line"], KeyType::Auto);
        assert_eq!(spec.describe(), ".\"a\".\"b.c\" + field:3 + line");
    }

    /// A composite of JSON paths, whatever order the paths come in: a record cut
    /// short after every key, or malformed between them, is unkeyed.
    #[test]
    fn composite_json_needs_the_whole_record() {
        for keys in [[".a", ".b.c"], [".b.c", ".a"]] {
            let s = spec(&keys, KeyType::Str);
            let whole = br#"{"a":"x","b":{"c":1,"d":[2]},"e":"}"}"#;
            assert!(key_of(&s, whole).is_some(), "{keys:?}");
            for cut in 1..whole.len() {
                assert_eq!(key_of(&s, &whole[..cut]), None, "{keys:?} cut at {cut}");
            }
            assert_eq!(key_of(&s, br#"{"a":"x","b":{"c":1,"d":[2]}},"e":1}"#), None);
            assert_eq!(key_of(&s, br#"{"a":"x" "b":{"c":1}}"#), None);
            assert_eq!(key_of(&s, br#"{"a":"x","b":{"c":1}} x"#), None);
        }
    }

    /// An empty field, match or JSON string is no key, alone or as a part of a
    /// composite; an empty line is a key (the record itself).
    #[test]
    fn an_empty_key_is_no_key() {
        let pipe = |keys: &[&str]| {
            let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
            KeySpec::parse(&keys, Some(b'|'), KeyType::Auto).unwrap()
        };
        assert_eq!(key_of(&pipe(&["field:2"]), b"r1|"), None);
        assert_eq!(key_of(&pipe(&["field:2"]), b"r1|x"), Some((None, b"x".to_vec())));
        assert_eq!(key_of(&pipe(&["field:1", "field:2"]), b"r1|"), None);
        assert_eq!(key_of(&spec(&[".id"], KeyType::Str), br#"{"id":""}"#), None);
        assert_eq!(key_of(&spec(&["regex:id=([a-z]*)"], KeyType::Str), b"id= x"), None);
        assert_eq!(key_of(&spec(&["line"], KeyType::Str), b""), Some((None, Vec::new())));
        // Found in one walk (two top-level names) as on their own.
        let fields = Fields::new(spec(&[".id", ".g"], KeyType::Str), None);
        let mut scratch = fields.scratch();
        for (rec, keyed) in [(&br#"{"id":"","g":1}"#[..], false), (br#"{"id":"a","g":1}"#, true)] {
            fields.read(rec, &mut scratch);
            assert_eq!(fields.key(rec, &mut scratch).is_some(), keyed);
        }
    }

    #[test]
    fn composite_is_unambiguous() {
        let s = spec(&["field:1", "field:2"], KeyType::Auto);
        let a = key_of(&s, b"ab c").unwrap();
        let b = key_of(&s, b"a bc").unwrap();
        assert_ne!(a, b);
        assert_eq!(a, (None, b"\x02ab\x01c".to_vec()));
        assert_eq!(key_of(&s, b"onlyone"), None);
        assert!(KeySpec::parse(&["field:1".into(), "field:2".into()], None, KeyType::Int).is_err());
    }

    /// A part of exactly 128 bytes has the two-byte length `80 01` (LEB128). The
    /// encoding is a stable format; a one-byte `80` would also make these two
    /// different composite keys encode alike (the second record would be dropped).
    #[test]
    fn composite_length_prefix_of_a_128_byte_part() {
        let s = spec(&["field:1", "field:2"], KeyType::Str);
        // ("\x02" + 127×a, 127×b + "\x01c")  vs  (127×a + "\x81\x01" + 127×b, "c")
        let a = [&[0x02u8][..], &[b'a'; 127], b" ", &[b'b'; 127], &[0x01, b'c']].concat();
        let b = [&[b'a'; 127][..], &[0x81, 0x01], &[b'b'; 127], b" c"].concat();
        let (ka, kb) = (key_of(&s, &a).unwrap(), key_of(&s, &b).unwrap());
        assert_eq!(ka.1[..3], [0x80, 0x01, 0x02]);
        assert_eq!(ka.1.len(), 2 + 128 + 2 + 129);
        assert_eq!(kb.1[..2], [0x80, 0x02]);
        assert_ne!(ka, kb);
    }

    #[test]
    fn regex_groups() {
        let s = spec(&[r"regex:blk_(-?[0-9]+)"], KeyType::Auto);
        assert_eq!(
            key_of(&s, b"x blk_-17 y blk_5"),
            Some((Some(int::to_u64(-17)), b"-17".to_vec()))
        );
        assert_eq!(key_of(&s, b"nothing"), None);
        let s = spec(&[r"regex:[a-z]+"], KeyType::Auto);
        assert_eq!(key_of(&s, b"12 abc"), Some((None, b"abc".to_vec())));
        // An optional group that did not take part gives no key.
        let s = spec(&[r"regex:a(b)?"], KeyType::Auto);
        assert_eq!(key_of(&s, b"a"), None);
    }

    #[test]
    fn bad_specs_name_the_flag() {
        for bad in ["nope", "field:0", "field:x", "regex:(", "regex:", ".a..b", ".a[0].id"] {
            let e = KeyPart::parse("--key", bad).unwrap_err();
            assert_eq!(e.flag, "--key");
        }
        assert_eq!(parse_delimiter("\\t").unwrap(), b'\t');
        assert!(parse_delimiter("ab").is_err());
    }
}
