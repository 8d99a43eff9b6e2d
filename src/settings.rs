//! The settings a state directory is bound to: the flags that decide what a key
//! is, as one line of text stored in every snapshot (see `state`).
//!
//! The text is part of the snapshot format, unchanged since version 1:
//!
//! ```text
//! v1 key=KEY key_type=Auto|Int|Str delimiter=None|Some(BYTE) window_ns=None|Some(NS) bloom=0|1
//! ```
//!
//! Every piece is spelled out here rather than taken from `Debug`, so renaming a
//! type cannot break loading an old snapshot. A snapshot whose text differs from
//! the run's is refused, and [`differences`] says which flags differ in the words
//! a user types them with (`--window 1h`), not in the stored ones.

use std::time::Duration;

use crate::config::{show_duration, Config};
use crate::key::KeyType;

/// The settings text of a run with `config`; `bloom` says whether string IDs pass
/// a bloom filter.
pub fn text(config: &Config, bloom: bool) -> String {
    let key_type = match config.key.key_type() {
        KeyType::Auto => "Auto",
        KeyType::Int => "Int",
        KeyType::Str => "Str",
    };
    let opt = |v: Option<String>| v.map_or_else(|| "None".to_string(), |v| format!("Some({v})"));
    format!(
        "v1 key={} key_type={key_type} delimiter={} window_ns={} bloom={}",
        config.key.describe(),
        opt(config.key.delimiter().map(|d| d.to_string())),
        opt(config.window.width_ns.map(|w| w.to_string())),
        u8::from(bloom)
    )
}

/// The pieces of a settings text, each as stored.
#[derive(Debug, PartialEq, Eq)]
struct Pieces<'a> {
    key: &'a str,
    key_type: &'a str,
    delimiter: &'a str,
    window_ns: &'a str,
    bloom: &'a str,
}

impl<'a> Pieces<'a> {
    /// Splits a settings text, from the right: only the key (first) may hold
    /// spaces and `=` (a regex, a quoted JSON name).
    fn parse(text: &'a str) -> Option<Pieces<'a>> {
        let (rest, bloom) = text.rsplit_once(" bloom=")?;
        let (rest, window_ns) = rest.rsplit_once(" window_ns=")?;
        let (rest, delimiter) = rest.rsplit_once(" delimiter=")?;
        let (rest, key_type) = rest.rsplit_once(" key_type=")?;
        let key = rest.strip_prefix("v1 key=")?;
        Some(Pieces { key, key_type, delimiter, window_ns, bloom })
    }

    /// Each piece as the flags that give it: `(flag, how it is written)`.
    fn flags(&self) -> [(&'static str, String); 5] {
        [
            ("--key", show_key(self.key)),
            ("--key-type", format!("--key-type {}", self.key_type.to_ascii_lowercase())),
            ("--delimiter", show_delimiter(self.delimiter)),
            ("--window", show_window(self.window_ns)),
            ("--local-bloom", show_bloom(self.bloom)),
        ]
    }
}

/// Where the settings `was` (a snapshot's) and `now` (this run's) differ, as
/// flags: `--window 1h, where this run has --window 10m`.
pub fn differences(was: &str, now: &str) -> String {
    let (Some(a), Some(b)) = (Pieces::parse(was), Pieces::parse(now)) else {
        return format!("other settings ({was}) than this run ({now})");
    };
    let (mut then, mut here) = (Vec::new(), Vec::new());
    for ((_, x), (_, y)) in a.flags().into_iter().zip(b.flags()) {
        if x != y {
            then.push(x);
            here.push(y);
        }
    }
    format!("{}, where this run has {}", then.join(" and "), here.join(" and "))
}

/// `--key .request_id --key field:3`: each part of the stored key (`."request_id"
/// + field:3`), a JSON name unquoted where it needs no quotes.
fn show_key(stored: &str) -> String {
    let parts: Vec<String> = stored
        .split(" + ")
        .map(|part| {
            let plain = |name: &str| {
                !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            };
            let names = part.strip_prefix(".\"").and_then(|p| p.strip_suffix('"'));
            match names.map(|n| n.split("\".\"").collect::<Vec<_>>()) {
                Some(names) if names.iter().all(|n| plain(n)) => format!(".{}", names.join(".")),
                _ => part.to_string(),
            }
        })
        .map(|p| format!("--key {p}"))
        .collect();
    parts.join(" ")
}

/// `--delimiter '|'`, or that there was none.
fn show_delimiter(stored: &str) -> String {
    let byte = stored.strip_prefix("Some(").and_then(|s| s.strip_suffix(')'));
    match byte.and_then(|b| b.parse::<u8>().ok()) {
        Some(b'\t') => "--delimiter '\\t'".to_string(),
        Some(b) if b.is_ascii_graphic() || b == b' ' => format!("--delimiter '{}'", b as char),
        Some(b) => format!("--delimiter byte {b}"),
        None => "no --delimiter".to_string(),
    }
}

/// `--window 1h` (in the largest unit that holds it whole), or that there was none.
fn show_window(stored: &str) -> String {
    let ns = stored.strip_prefix("Some(").and_then(|s| s.strip_suffix(')'));
    match ns.and_then(|n| n.parse::<u64>().ok()) {
        Some(ns) => format!("--window {}", show_duration(Duration::from_nanos(ns))),
        None => "no --window".to_string(),
    }
}

/// Whether string IDs passed a bloom filter, as `--local-bloom` (whose `auto`
/// is on with `--exact redis://…` or `none`, off with `memory`).
fn show_bloom(stored: &str) -> String {
    match stored {
        "1" => "a bloom filter (--local-bloom on, or auto with --exact redis or none)",
        _ => "no bloom filter (--local-bloom off, or auto with --exact memory)",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeySpec;

    /// The text of every snapshot written so far: pinned, because a change would
    /// refuse every existing state directory.
    #[test]
    fn the_text_is_pinned() {
        let key = [".request_id".to_string(), "field:3".to_string()];
        let mut c = Config {
            key: KeySpec::parse(&key, Some(b'|'), KeyType::Str).unwrap(),
            ..Config::default()
        };
        c.window.width_ns = Some(3_600_000_000_000);
        assert_eq!(
            text(&c, true),
            "v1 key=.\"request_id\" + field:3 key_type=Str delimiter=Some(124) \
             window_ns=Some(3600000000000) bloom=1"
        );
        assert_eq!(
            text(&Config::default(), false),
            "v1 key=line key_type=Auto delimiter=None window_ns=None bloom=0"
        );
    }

    #[test]
    fn differences_name_the_flags_as_typed() {
        let was = "v1 key=.\"request_id\" key_type=Auto delimiter=None \
                   window_ns=Some(3600000000000) bloom=0";
        let now =
            "v1 key=.\"id\" key_type=Auto delimiter=None window_ns=Some(600000000000) bloom=0";
        assert_eq!(
            differences(was, now),
            "--key .request_id and --window 1h, where this run has --key .id and --window 10m"
        );
        let now = "v1 key=.\"a b\" + regex:x=(\\d+) key_type=Int delimiter=Some(9) \
                   window_ns=None bloom=1";
        let d = differences(was, now);
        assert_eq!(
            d,
            "--key .request_id and --key-type auto and no --delimiter and --window 1h and \
             no bloom filter (--local-bloom off, or auto with --exact memory), where this run \
             has --key .\"a b\" --key regex:x=(\\d+) and --key-type int and --delimiter '\\t' \
             and no --window and a bloom filter (--local-bloom on, or auto with --exact redis \
             or none)"
        );
        assert!(!d.contains("window_ns") && !d.contains("bloom=") && !d.contains("Some("));
        // Text that does not parse (never written by any version) is shown as is.
        assert_eq!(differences("x", "y"), "other settings (x) than this run (y)");
    }
}
