//! The Redis `SET id 1 NX EX ttl` deduplicator, as a user would write it: read
//! lines, extract the ID, send one `SET … NX EX` per line pipelined in batches,
//! and write the lines whose `SET` succeeded (the ID was new).
//!
//! This is the peer the design replaces, so it gets a fair implementation: one
//! round trip per batch, not per record, and block-buffered output.

use std::io::{self, BufRead, BufWriter, Write};

use crate::error::{Error, Result};

/// Extracts the key text of `line`: each of `keys` is a JSON field name (its value
/// text: a string's raw content or a number's literal) or `field:N` (the N-th
/// whitespace-separated field). Parts are joined with `\x1f`. `None` when a part is
/// missing.
pub fn extract_key(line: &[u8], keys: &[String], out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(0x1f);
        }
        if let Some(n) = k.strip_prefix("field:") {
            let n: usize = n.parse().ok()?;
            let f = line
                .split(|b| b.is_ascii_whitespace())
                .filter(|f| !f.is_empty())
                .nth(n.checked_sub(1)?)?;
            out.extend_from_slice(f);
            continue;
        }
        let needle = format!("\"{k}\":");
        let at = find(line, needle.as_bytes())? + needle.len();
        let rest = &line[at..];
        if let Some(s) = rest.strip_prefix(b"\"") {
            // The generator never escapes quotes inside IDs; a backslash-quote
            // would end the value early here, which is acceptable for this peer.
            let end = s.iter().position(|&b| b == b'"')?;
            out.extend_from_slice(&s[..end]);
        } else {
            let end = rest.iter().position(|&b| b == b',' || b == b'}').unwrap_or(rest.len());
            out.extend_from_slice(rest[..end].trim_ascii());
        }
    }
    Some(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Runs the client: stdin to stdout through Redis at `url`.
pub fn run(url: &str, keys: &[String], batch: usize, ttl: u64) -> Result<()> {
    let mut con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .map_err(Error::redis(format!("--redis {url}")))?;
    let stdin = io::stdin().lock();
    let mut reader = io::BufReader::with_capacity(1 << 20, stdin);
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut lines: Vec<Vec<u8>> = Vec::with_capacity(batch);
    let mut key = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| Error::Stream { what: "reading stdin", source })?;
        if n > 0 {
            lines.push(line);
        }
        if lines.len() == batch || (n == 0 && !lines.is_empty()) {
            let mut pipe = redis::pipe();
            let mut keyed = Vec::with_capacity(lines.len());
            for l in &lines {
                if extract_key(l, keys, &mut key).is_some() {
                    pipe.cmd("SET").arg(&key[..]).arg(1).arg("NX").arg("EX").arg(ttl);
                    keyed.push(true);
                } else {
                    keyed.push(false);
                }
            }
            let answers: Vec<Option<String>> =
                pipe.query(&mut con).map_err(Error::redis("pipeline"))?;
            let mut answers = answers.into_iter();
            for (l, k) in lines.iter().zip(keyed) {
                // Unkeyed lines are passed on: never lose a log silently.
                if !k || answers.next().flatten().is_some() {
                    if let Err(e) = out.write_all(l) {
                        return if e.kind() == io::ErrorKind::BrokenPipe {
                            Ok(())
                        } else {
                            Err(Error::Stream { what: "writing stdout", source: e })
                        };
                    }
                }
            }
            lines.clear();
        }
        if n == 0 {
            break;
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::Stream { what: "writing stdout", source: e })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(line: &str, keys: &[&str]) -> Option<String> {
        let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        extract_key(line.as_bytes(), &keys, &mut out).map(|_| String::from_utf8(out).unwrap())
    }

    #[test]
    fn keys_from_json_and_fields() {
        let l = r#"{"ts":"x","request_id":"ab-1","user":"u7","order":42,"batch":3}"#;
        assert_eq!(key(l, &["request_id"]).unwrap(), "ab-1");
        assert_eq!(key(l, &["user", "order", "batch"]).unwrap(), "u7\x1f42\x1f3");
        assert_eq!(key(l, &["missing"]), None);
        assert_eq!(key("a b  c d", &["field:3"]).unwrap(), "c");
        assert_eq!(key("a b", &["field:3"]), None);
    }
}
