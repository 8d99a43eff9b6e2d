//! Every file in `datasets/loghub/` and `datasets/zeek/` against the counts in its
//! NOTICE.md (computed there by a plain Python set over the same records), and a
//! few event-time windows on the real logs against the model in `model.rs`'s
//! spirit, written out again here over awk-style fields.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::util::{self, TestCommand};

fn loghub(name: &str) -> PathBuf {
    util::repo().join("datasets/loghub").join(name)
}

fn zeek(name: &str) -> PathBuf {
    util::repo().join("datasets/zeek").join(name)
}

/// Counts a run must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Truth {
    records: u64,
    keyed: u64,
    unique: u64,
    duplicates: u64,
}

/// Runs `logdedup ARGS FILE`, and the same with the file on stdin; both must give
/// the truth, and identical bytes.
fn check(file: &PathBuf, args: &[&str], t: Truth) -> Vec<u8> {
    let by_path = TestCommand::new(args).arg(file).run();
    by_path.assert_ok();
    let bytes = std::fs::read(file).unwrap();
    let by_stdin = TestCommand::new(args).stdin(&bytes).run();
    by_stdin.assert_ok();
    let what = format!("{} {args:?}", file.display());
    assert!(by_path.stdout == by_stdin.stdout, "{what}: file and stdin differ");
    let o = &by_path;
    let got = Truth {
        records: o.stat("records_in"),
        keyed: o.stat("records_in") - o.stat("unkeyed"),
        unique: o.stat("new"),
        duplicates: o.stat("duplicates"),
    };
    assert_eq!(got, t, "{what}");
    // Unkeyed records are emitted (the default), duplicates are not.
    assert_eq!(o.stat("emitted"), t.records - t.duplicates, "{what}");
    assert_eq!(o.stat("late"), 0, "{what}");
    // The output is the input's records, in order, byte for byte.
    assert_subsequence(&bytes, &o.stdout, &what);
    by_path.stdout
}

/// Every output record is an input record, in input order.
fn assert_subsequence(input: &[u8], output: &[u8], what: &str) {
    let ins = util::split_records(input);
    let mut it = ins.iter();
    for (n, rec) in util::split_records(output).iter().enumerate() {
        assert!(it.any(|r| r == rec), "{what}: output record {n} is not the next input record");
    }
}

/// The "Natural keys" table of `datasets/loghub/NOTICE.md`: key, keyed, unique,
/// duplicates, and the whole-line duplicates column.
#[test]
fn loghub_natural_keys() {
    let rows: &[(&str, &[&str], u64, u64, u64, u64)] = &[
        ("HDFS_2k.log", &["--key", "regex:blk_(-?[0-9]+)"], 2000, 1994, 6, 0),
        ("OpenSSH_2k.log", &["--key", r"regex:sshd\[([0-9]+)\]"], 2000, 519, 1481, 0),
        ("OpenStack_2k.log", &["--key", r"regex:\[req-([0-9a-f-]{36})"], 1845, 938, 907, 0),
        (
            "Hadoop_2k.log",
            &["--key", "regex:(attempt_[0-9]+_[0-9]+_[mr]_[0-9]+_[0-9]+)"],
            410,
            14,
            396,
            15,
        ),
        ("Zookeeper_2k.log", &["--key", "regex:session (0x[0-9a-f]+)"], 96, 94, 2, 1),
        ("HPC_2k.log", &["--key", "field:1"], 2000, 1997, 3, 1),
        (
            "BGL_2k.log",
            &["--key", "field:4", "--key", r"regex:^(?:\S+ ){6}(.*)$"],
            2000,
            1850,
            150,
            0,
        ),
        ("Linux_2k.log", &["--key", r"regex:\[([0-9]+)\]:"], 1849, 1550, 299, 0),
        (
            "Mac_2k.log",
            &["--key", r"regex:^\S+\s+\S+ \S+ \S+ (.+?\[[0-9]+\]):"],
            1946,
            217,
            1729,
            9,
        ),
        ("Android_2k.log", &["--key", "field:3", "--key", "field:4"], 2000, 66, 1934, 12),
        ("Apache_2k.log", &["--key", "regex:Found child ([0-9]+)"], 836, 830, 6, 539),
        (
            "HealthApp_2k.log",
            &["--delimiter", "|", "--key", "field:2", "--key", "field:4"],
            2000,
            1179,
            821,
            0,
        ),
        ("Proxifier_2k.log", &["--key", "regex: - ([^ ]+:[0-9]+) "], 2000, 322, 1678, 296),
        ("Windows_2k.log", &["--key", "regex:Package_for_KB([0-9]+)"], 541, 271, 270, 719),
    ];
    assert_eq!(rows.len(), 14, "every loghub file");
    for &(file, args, keyed, unique, duplicates, line_dups) in rows {
        let p = loghub(file);
        check(&p, args, Truth { records: 2000, keyed, unique, duplicates });
        let whole =
            Truth { records: 2000, keyed: 2000, unique: 2000 - line_dups, duplicates: line_dups };
        check(&p, &[], whole);
        check(&p, &["--key", "line"], whole);
    }
}

/// The "Other keys worth testing" table.
#[test]
fn loghub_other_keys() {
    let rows: &[(&str, &[&str], u64, u64, u64)] = &[
        ("OpenSSH_2k.log", &["--key", "regex:from ([0-9.]+)"], 1116, 27, 1089),
        ("OpenStack_2k.log", &["--key", r"regex:\[instance: ([0-9a-f-]{36})\]"], 535, 22, 513),
        ("HPC_2k.log", &["--key", "field:2", "--key", "field:4"], 2000, 594, 1406),
        ("BGL_2k.log", &["--key", "field:4"], 2000, 1778, 222),
        ("Linux_2k.log", &["--key", r"regex:rhost=(\S+)"], 489, 47, 442),
        ("Android_2k.log", &["--key", "field:3"], 2000, 10, 1990),
        ("Windows_2k.log", &["--key", "regex:Session: ([0-9_]+)"], 609, 609, 0),
        ("Windows_2k.log", &["--key", r"regex:CSI\s+([0-9a-f]{8})@"], 13, 8, 5),
    ];
    for &(file, args, keyed, unique, duplicates) in rows {
        check(&loghub(file), args, Truth { records: 2000, keyed, unique, duplicates });
    }
}

/// HDFS block ids are random signed 64-bit integers: integer IDs all, whatever
/// tier they take; `--key-type str` and `int` give the same counts.
#[test]
fn hdfs_block_ids_are_integers_and_typing_does_not_change_counts() {
    let p = loghub("HDFS_2k.log");
    let t = Truth { records: 2000, keyed: 2000, unique: 1994, duplicates: 6 };
    let mut outs = Vec::new();
    for kt in ["auto", "int", "str"] {
        outs.push(check(&p, &["--key", "regex:blk_(-?[0-9]+)", "--key-type", kt], t));
    }
    assert!(outs.windows(2).all(|w| w[0] == w[1]));
    // Windows CSI numbers are zero-padded hex: under `int` they are unkeyed
    // except the few that happen to be canonical decimals (none: all start with 0).
    let o = TestCommand::new(&["--key", r"regex:CSI\s+([0-9a-f]{8})@", "--key-type", "int"])
        .arg(loghub("Windows_2k.log"))
        .run();
    o.assert_ok();
    assert_eq!(o.stat("unkeyed"), 2000);
    assert_eq!(o.stat("emitted"), 2000);
}

/// The Zeek table: `.uid`, `."id.orig_h"`, whole line, and `.uid` in 1-minute
/// event-time windows.
#[test]
fn zeek_ntp() {
    let p = zeek("ntp.json");
    let t = |unique, duplicates| Truth { records: 904, keyed: 904, unique, duplicates };
    check(&p, &["--key", ".uid"], t(433, 471));
    check(&p, &["--key", r#"."id.orig_h""#], t(46, 858));
    check(&p, &[], t(904, 0));
    let o = check(&p, &["--key", ".uid", "--window", "1m", "--time-field", ".ts"], t(433, 471));
    assert_eq!(o, check(&p, &["--key", ".uid"], t(433, 471)));
    // Nested reading of a dotted name finds nothing: every record is unkeyed.
    let o = TestCommand::new(&["--key", ".id.orig_h"]).arg(&p).run();
    o.assert_ok();
    assert_eq!((o.stat("unkeyed"), o.stat("emitted")), (904, 904));
    // `ref_id` holds escaped backslashes; keyed on it the unescaped text counts.
    let o = TestCommand::new(&["--key", ".ref_id", "--emit", "all", "--tag", "dup"]).arg(&p).run();
    o.assert_ok();
    assert_eq!(o.stat("unkeyed"), 0);
    for line in o.stdout_str().lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a tagged record is JSON");
        assert!(v["dup"].is_boolean() && line.ends_with("}"), "{line}");
        assert!(line.ends_with(&format!(",\"dup\":{}}}", v["dup"])), "the tag comes last: {line}");
    }
}

/// In process, every read size gives the bytes of the binary's default run.
#[test]
fn datasets_every_read_size_same_bytes() {
    use logdedup::{Config, KeyType};
    for (file, keys) in [
        (loghub("HealthApp_2k.log"), &["field:2", "field:4"][..]),
        (loghub("Proxifier_2k.log"), &["line"][..]),
        (loghub("HDFS_2k.log"), &["regex:blk_(-?[0-9]+)"][..]),
        (zeek("ntp.json"), &[".uid"][..]),
    ] {
        let bytes = std::fs::read(&file).unwrap();
        let delim = file.ends_with("HealthApp_2k.log").then_some(b'|');
        let mut want: Option<Vec<u8>> = None;
        for (chunk, max_read) in [(1 << 20, 1 << 20), (7, 7), (4093, 1000), (64 << 10, 1)] {
            let mut c = Config::default();
            c.key = util::key_spec(keys, delim, KeyType::Auto);
            c.framing.chunk_bytes = chunk;
            let (out, stats) = util::run_pipeline(c, bytes.clone(), max_read).unwrap();
            assert_eq!(stats.records_in, util::split_records(&bytes).len() as u64);
            match &want {
                None => want = Some(out),
                Some(w) => assert!(
                    *w == out,
                    "{} chunk {chunk} read {max_read}: different bytes",
                    file.display()
                ),
            }
        }
    }
}

/// Event time on real logs: BGL (epoch seconds in field 2) and HPC (field 5,
/// a random sample, so most records are out of order), against the window model.
#[test]
fn loghub_event_time_windows_match_the_model() {
    for (file, key_field, time_field, window, retain) in [
        ("BGL_2k.log", 4, 2, 60, 1),
        ("BGL_2k.log", 4, 2, 3600, 2),
        ("HPC_2k.log", 2, 5, 3600, 1),
        ("HPC_2k.log", 2, 5, 86400, 3),
    ] {
        let bytes = std::fs::read(loghub(file)).unwrap();
        let mut seen: HashMap<i64, HashSet<Vec<u8>>> = HashMap::new();
        let mut newest: Option<i64> = None;
        let (mut new, mut dup, mut late, mut unkeyed) = (0u64, 0u64, 0u64, 0u64);
        let mut want = Vec::new();
        for raw in util::split_records(&bytes) {
            let fields: Vec<&[u8]> = util::content(raw)
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|f| !f.is_empty())
                .collect();
            let key = fields.get(key_field - 1);
            let t = fields
                .get(time_field - 1)
                .and_then(|t| std::str::from_utf8(t).ok()?.parse::<i64>().ok());
            let (Some(key), Some(t)) = (key, t) else {
                unkeyed += 1;
                want.extend_from_slice(raw);
                continue;
            };
            let w = t.div_euclid(window);
            let n = newest.map_or(w, |n: i64| n.max(w));
            newest = Some(n);
            let oldest = n - retain + 1;
            if w < oldest {
                late += 1;
                want.extend_from_slice(raw);
                continue;
            }
            let d = (oldest..=w).any(|x| seen.get(&x).is_some_and(|s| s.contains(*key)));
            seen.entry(w).or_default().insert(key.to_vec());
            if d {
                dup += 1;
            } else {
                new += 1;
                want.extend_from_slice(raw);
            }
        }
        let args = [
            "--key".to_string(),
            format!("field:{key_field}"),
            "--time-field".into(),
            format!("field:{time_field}"),
            "--window".into(),
            format!("{window}s"),
            "--retain".into(),
            retain.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = TestCommand::new(&args).stdin(&bytes).run();
        o.assert_ok();
        let what = format!("{file} {args:?}");
        assert_eq!(
            (o.stat("new"), o.stat("duplicates"), o.stat("late"), o.stat("unkeyed")),
            (new, dup, late, unkeyed),
            "{what}"
        );
        assert!(o.stdout == want, "{what}: bytes differ");
        if file == "HPC_2k.log" && window == 3600 {
            assert!(late > 0, "the HPC sample is out of order: some records must be late");
        }
    }
}
