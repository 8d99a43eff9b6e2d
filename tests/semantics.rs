//! DESIGN's contract, one rule per test, through the real executable: framing,
//! key kinds and typing, unkeyed records, windows, retention, late records,
//! event-time formats, emit modes and tags, oversized records, the tiers.

use std::io::Read;
use std::sync::Arc;

use logdedup::config::TimeConfig;
use logdedup::window::ManualClock;
use logdedup::{Config, KeyType, Pipeline};

use crate::util::{self, key_spec, SharedBuf, TestCommand};

/// Runs the binary, checks exit 0 and conservation, returns the output.
fn run(args: &[&str], input: &str) -> crate::util::Output {
    let o = TestCommand::new(args).stdin(input).run();
    o.assert_ok();
    o
}

fn out(args: &[&str], input: &str) -> String {
    run(args, input).stdout_str()
}

// ---------------------------------------------------------------------------
// Framing

#[test]
fn cr_before_newline_is_not_part_of_the_key() {
    assert_eq!(out(&[], "a\r\na\nb\nb\r\n"), "a\r\nb\n");
    // A last record without `\n` keeps its `\r` as content: a different key.
    assert_eq!(out(&[], "b\nb\r"), "b\nb\r");
    // A `\r` elsewhere is content.
    assert_eq!(out(&[], "a\rb\nab\n"), "a\rb\nab\n");
}

#[test]
fn last_record_without_newline_stays_without_one() {
    assert_eq!(out(&[], "a\nb"), "a\nb");
    assert_eq!(out(&[], "a\nb\nb"), "a\nb\n");
    assert_eq!(out(&[], "b"), "b");
    let o = run(&[], "a\na");
    assert_eq!(
        (o.stdout_str().as_str(), o.stat("records_in"), o.stat("duplicates")),
        ("a\n", 2, 1)
    );
}

#[test]
fn empty_lines_are_records() {
    let o = run(&[], "\n\nx\n\r\n");
    assert_eq!(o.stdout_str(), "\nx\n");
    assert_eq!((o.stat("records_in"), o.stat("duplicates")), (4, 2));
}

#[test]
fn output_is_input_bytes_in_input_order() {
    let input = "z\ny\nz\nx\ny\nw\n";
    assert_eq!(out(&[], input), "z\ny\nx\nw\n");
    assert_eq!(out(&["--emit", "all"], input), input);
    assert_eq!(out(&["--emit", "dups"], input), "z\ny\n");
}

// ---------------------------------------------------------------------------
// Keys

#[test]
fn json_paths() {
    let input = concat!(
        r#"{"a":1,"n":{"b":"x"}}"#,
        "\n",
        r#"{"a":2,"n":{"b":"x"}}"#,
        "\n",
        r#"{"n":{"b":"y"},"a":1}"#,
        "\n",
        r#"{"id.orig_h":"10.0.0.1","id":{"orig_h":"other"}}"#,
        "\n",
    );
    let o = run(&["--key", ".a"], input);
    assert_eq!(o.stdout_str().lines().count(), 3); // a=1, a=2, unkeyed (no .a)
    assert_eq!((o.stat("duplicates"), o.stat("unkeyed")), (1, 1));
    let o = run(&["--key", ".n.b"], input);
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (2, 1, 1));
    let o = run(&["--key", r#"."id.orig_h""#], &input.repeat(2));
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (1, 1, 6));
    // A dotted name and a nested path are different keys.
    let input = concat!(
        r#"{"id.orig_h":"h","id":{"orig_h":"x"}}"#,
        "\n",
        r#"{"id":{"orig_h":"y"},"id.orig_h":"h"}"#,
        "\n",
    );
    let o = run(&["--key", r#"."id.orig_h""#], input);
    assert_eq!((o.stat("new"), o.stat("duplicates")), (1, 1));
    let o = run(&["--key", ".id.orig_h"], input);
    assert_eq!((o.stat("new"), o.stat("duplicates")), (2, 0));
}

#[test]
fn json_string_content_is_the_key() {
    // Escaped quotes and backslashes inside strings, before and in the key.
    let input = concat!(
        r#"{"msg":"a \"id\":1 trap","id":"x\"y"}"#,
        "\n",
        r#"{"id":"x\u0022y"}"#,
        "\n",
        r#"{"id":"x\\\"y"}"#,
        "\n",
        r#"{"msg":"\\","id":"x\"y"}"#,
        "\n",
    );
    let o = run(&["--key", ".id"], input);
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (2, 2, 0));
    assert_eq!(o.lines().len(), 2);
    assert!(o.lines()[1].contains(r#"x\\\"y"#));
}

#[test]
fn a_json_name_given_twice_takes_the_last_member() {
    // As jq reads them: the keys are 2, 2 (a duplicate), none (null), 1, and,
    // through `.a.b`, the second `a`'s `b`.
    let input = concat!(
        r#"{"id":1,"id":2}"#,
        "\n",
        r#"{"id":2}"#,
        "\n",
        r#"{"id":1,"msg":"x","id":null}"#,
        "\n",
        r#"{"id":1}"#,
        "\n",
    );
    let o = run(&["--key", ".id"], input);
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (2, 1, 1));
    assert_eq!(o.lines(), [r#"{"id":1,"id":2}"#, r#"{"id":1,"msg":"x","id":null}"#, r#"{"id":1}"#]);
    let input = concat!(r#"{"a":{"b":1},"a":{"b":7}}"#, "\n", r#"{"a":{"b":7}}"#, "\n");
    assert_eq!(out(&["--key", ".a.b"], input), concat!(r#"{"a":{"b":1},"a":{"b":7}}"#, "\n"));
}

#[test]
fn a_json_time_field_given_twice_takes_the_last_member() {
    // The first record's time is its last `ts` (00:05), so the second falls in its
    // window and is a duplicate; read from the first `ts` (00:00), it would be in
    // an older window, dropped by the time the second arrives.
    let args = ["--key", ".id", "--time-field", ".ts", "--window", "1m"];
    let input = concat!(
        r#"{"ts":"2026-01-01T00:00:00Z","id":1,"ts":"2026-01-01T00:05:00Z"}"#,
        "\n",
        r#"{"ts":"2026-01-01T00:05:30Z","id":1}"#,
        "\n",
        // The key given twice after the time: the last `id` (2) counts.
        r#"{"ts":"2026-01-01T00:05:40Z","id":3,"id":2}"#,
        "\n",
        r#"{"ts":"2026-01-01T00:05:50Z","id":2}"#,
        "\n",
    );
    let o = run(&args, input);
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("late")), (2, 2, 0));
}

#[test]
fn quoted_and_bare_integers_are_one_id_under_auto() {
    let input = "{\"id\":42}\n{\"id\":\"42\"}\n{\"id\":\"042\"}\n{\"id\":42.0}\n";
    for kt in ["auto", "str"] {
        let o = run(&["--key", ".id", "--key-type", kt], input);
        assert_eq!(o.stdout_str(), "{\"id\":42}\n{\"id\":\"042\"}\n{\"id\":42.0}\n", "{kt}");
    }
    let o = run(&["--key", ".id", "--key-type", "int"], input);
    assert_eq!(o.stdout_str(), input.replace("{\"id\":\"42\"}\n", ""));
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (1, 1, 2));
    let o = run(&["--key", ".id"], input);
    assert_eq!((o.stat("int_ids"), o.stat("str_ids")), (2, 2));
}

/// `-0`, `+1` and `042` are strings, never the integers 0, 1 and 42.
#[test]
fn non_canonical_numbers_are_strings() {
    let input = "0\n-0\n1\n+1\n42\n042\n-0\n+1\n042\n";
    let o = run(&["--key", "field:1"], input);
    assert_eq!(o.stdout_str(), "0\n-0\n1\n+1\n42\n042\n");
    assert_eq!((o.stat("int_ids"), o.stat("str_ids")), (3, 6));
    let o = run(&["--key", "field:1", "--key-type", "int"], input);
    assert_eq!((o.stat("new"), o.stat("unkeyed")), (3, 6));
}

#[test]
fn sixty_four_bit_edges() {
    let input = [
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "-9223372036854775809",
        "-1608999687919862906",
        "4294967295",
        "4294967296",
        "-4294967296",
        "-4294967297",
    ]
    .map(|s| format!("{{\"id\":{s}}}\n{{\"id\":\"{s}\"}}\n"))
    .concat();
    let o = run(&["--key", ".id"], &input);
    assert_eq!((o.stat("new"), o.stat("duplicates")), (9, 9));
    assert_eq!(o.stat("str_ids") + o.stat("int_ids"), 18);
    let o = run(&["--key", ".id", "--key-type", "int"], &input);
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (7, 7, 4));
}

#[test]
fn regex_first_group_or_whole_match() {
    let input = "blk_1 x blk_2\nblk_1\nblk_-1 blk_1\nnone\n";
    let o = run(&["--key", r"regex:blk_(-?\d+)"], input);
    assert_eq!(o.stdout_str(), "blk_1 x blk_2\nblk_-1 blk_1\nnone\n");
    assert_eq!(o.stat("unkeyed"), 1);
    let o = run(&["--key", r"regex:blk_-?\d+"], "a blk_1\nb blk_1\nblk_12\n");
    assert_eq!(o.stdout_str(), "a blk_1\nblk_12\n");
}

#[test]
fn fields_awk_and_delimited() {
    let input = "  a  b\tc\na b c\n\tx b z\nonly\n";
    let o = run(&["--key", "field:2"], input);
    assert_eq!(o.stdout_str(), "  a  b\tc\nonly\n");
    assert_eq!((o.stat("duplicates"), o.stat("unkeyed")), (2, 1));
    // An empty field is no key.
    let o = run(&["--key", "field:2", "--delimiter", "|"], "a||c\nb||d\nx|y\nnone\nz|y\n");
    assert_eq!(o.stdout_str(), "a||c\nb||d\nx|y\nnone\n");
    assert_eq!((o.stat("duplicates"), o.stat("unkeyed")), (1, 3));
    let o = run(&["--key", "field:3", "--delimiter", "\\t"], "a\tb\tc\nx y\tz\tc\n");
    assert_eq!(o.stdout_str(), "a\tb\tc\n");
}

#[test]
fn composite_keys_are_unambiguous() {
    let input = "ab c\na bc\nab c\nonly\n";
    let o = run(&["--key", "field:1", "--key", "field:2"], input);
    assert_eq!(o.stdout_str(), "ab c\na bc\nonly\n");
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (2, 1, 1));
    // JSON + regex + field in one key.
    // (The regex part reads inside the JSON: a line with text after the object
    // is not JSON, so its JSON parts would be missing.)
    let input = "{\"u\":1,\"o\":2,\"m\":\"id=7\"}\n{\"u\":1,\"o\":2,\"m\":\"id=8\"}\n{\"u\":1,\"o\":2,\"m\":\"id=7\"}\n";
    let o = run(&["--key", ".u", "--key", ".o", "--key", r"regex:id=(\d+)"], input);
    assert_eq!(o.stat("duplicates"), 1);
    // A part that is empty is missing: the record is unkeyed.
    let o = run(&["--key", "field:1", "--key", "field:2", "--delimiter", ","], ",ab\na,b\n,ab\n");
    assert_eq!(o.stdout_str(), ",ab\na,b\n,ab\n");
    assert_eq!((o.stat("new"), o.stat("unkeyed")), (1, 2));
}

// ---------------------------------------------------------------------------
// Unkeyed records

#[test]
fn unkeyed_policies() {
    let input = "{\"id\":1}\nplain\n{\"id\":null}\n{\"id\":1}\n{\"x\":1}\nplain\n";
    let o = run(&["--key", ".id"], input);
    assert_eq!(o.stdout_str(), "{\"id\":1}\nplain\n{\"id\":null}\n{\"x\":1}\nplain\n");
    assert_eq!(o.stat("unkeyed"), 4);
    let o = run(&["--key", ".id", "--on-unkeyed", "drop"], input);
    assert_eq!(o.stdout_str(), "{\"id\":1}\n");
    assert_eq!(o.stat("dropped"), 4);
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("rejects");
    let o = run(
        &["--key", ".id", "--on-unkeyed", "reject", "--reject-file", rf.to_str().unwrap()],
        input,
    );
    assert_eq!(o.stdout_str(), "{\"id\":1}\n");
    assert_eq!(o.stat("rejected"), 4);
    assert_eq!(std::fs::read_to_string(&rf).unwrap(), "plain\n{\"id\":null}\n{\"x\":1}\nplain\n");
}

// ---------------------------------------------------------------------------
// Windows

fn ev(id: &str, ts: i64) -> String {
    format!("{{\"id\":\"{id}\",\"ts\":{ts}}}\n")
}

/// Without `--window` one window spans the whole stream, so the event time would
/// decide nothing: `--time-field` needs `--window`.
#[test]
fn one_window_without_window_flag() {
    let input = ev("a", 0) + &ev("a", 1_000_000) + &ev("a", -5);
    let o = run(&["--key", ".id"], &input);
    assert_eq!((o.stat("new"), o.stat("duplicates")), (1, 2));
    let o = TestCommand::raw(&["--key", ".id", "--time-field", ".ts"]).stdin(&input).run();
    assert_eq!(o.code, 1, "{}", o.stderr);
}

#[test]
fn windows_forget_what_fell_out() {
    // 10 s windows, retain 1: a repeat in the next window is new again.
    let input = ev("a", 1) + &ev("a", 9) + &ev("a", 10) + &ev("a", 19) + &ev("a", 25);
    let o = run(&["--key", ".id", "--window", "10s", "--time-field", ".ts"], &input);
    assert_eq!(o.stdout_str(), ev("a", 1) + &ev("a", 10) + &ev("a", 25));
    assert!(o.stat("windows_rotated") > 0);
    // retain 2: the previous window still counts.
    let o =
        run(&["--key", ".id", "--window", "10s", "--retain", "2", "--time-field", ".ts"], &input);
    assert_eq!(o.stdout_str(), ev("a", 1));
    let input = ev("a", 1) + &ev("a", 25);
    let o =
        run(&["--key", ".id", "--window", "10s", "--retain", "2", "--time-field", ".ts"], &input);
    assert_eq!(o.stdout_str(), input);
}

/// A JSON time field is only read from a whole JSON record: one cut short after
/// its time is unkeyed whatever the key (the time's check of the rest of the
/// record is made once with the key's, so a key that is not JSON must still make it).
#[test]
fn a_time_field_is_not_read_from_a_cut_record() {
    let cut = "{\"ts\":5,\"m\":\"a\"\n";
    let whole = "{\"ts\":5,\"m\":\"a\"}\n";
    for key in [&["--key", "line"][..], &["--key", "field:1"], &["--key", ".m"], &["--key", ".ts"]]
    {
        let mut args = key.to_vec();
        args.extend(["--time-field", ".ts", "--window", "10s", "--on-unkeyed", "drop"]);
        let o = run(&args, &format!("{cut}{whole}{cut}"));
        assert_eq!(o.stdout_str(), whole, "{key:?}");
        assert_eq!((o.stat("unkeyed"), o.stat("dropped")), (2, 2), "{key:?}");
    }
    // The key before the time and the time before the key, nested or not: cut
    // anywhere after both, the record is unkeyed; whole, it is keyed.
    for rec in [
        r#"{"id":"a","x":{"y":[1,"}"]},"ts":5,"z":"q\"}"}"#,
        r#"{"ts":5,"x":{"y":[1,"}"]},"id":"a","z":"q\"}"}"#,
        r#"{"o":{"id":"a"},"ts":5,"z":"]"}"#,
    ] {
        let key = if rec.starts_with(r#"{"o""#) { ".o.id" } else { ".id" };
        let args = ["--key", key, "--time-field", ".ts", "--window", "10s", "--on-unkeyed", "drop"];
        let after = rec.find(",\"z\"").unwrap();
        for end in after..rec.len() {
            let o = run(&args, &format!("{}\n", &rec[..end]));
            assert_eq!((o.stat("unkeyed"), o.stdout_str()), (1, String::new()), "{}", &rec[..end]);
        }
        let o = run(&args, &format!("{rec}\n{rec}\n"));
        assert_eq!((o.stat("new"), o.stat("duplicates")), (1, 1), "{rec}");
    }
}

/// Windows are epoch-aligned, also before 1970.
#[test]
fn windows_are_epoch_aligned() {
    let input = ev("a", -1) + &ev("a", 0) + &ev("a", 59) + &ev("a", 60);
    let o = run(&["--key", ".id", "--window", "1m", "--time-field", ".ts"], &input);
    assert_eq!(o.stdout_str(), ev("a", -1) + &ev("a", 0) + &ev("a", 60));
}

/// A record in an older retained window is checked against windows up to its
/// own only, and is inserted into its own window.
#[test]
fn older_retained_window_sees_only_windows_up_to_its_own() {
    let args = ["--key", ".id", "--window", "10s", "--retain", "3", "--time-field", ".ts"];
    // `a` first seen in window 2; then a record of window 1: not a duplicate.
    let input = ev("a", 25) + &ev("a", 15) + &ev("a", 16) + &ev("a", 27) + &ev("a", 5);
    let o = run(&args, &input);
    assert_eq!(o.stdout_str(), ev("a", 25) + &ev("a", 15) + &ev("a", 5));
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("late")), (3, 2, 0));
}

/// A window that falls out is dropped whole from every tier: once the clock has
/// moved on, only the IDs of the retained windows are held (memory stays flat).
/// The records are read from a file in one read, so they are one batch: the string
/// IDs of the old window are decided (and inserted) before it retires.
#[test]
fn retired_windows_are_dropped_from_every_tier() {
    // Window 0: strings a, b and integers 1, 2. Window 1: c, 3, and a again (new:
    // its window 0 record fell out).
    let input = [("a", 1), ("1", 2), ("b", 3), ("2", 4), ("c", 15), ("3", 16), ("a", 17)]
        .map(|(id, ts)| ev(id, ts))
        .concat();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in");
    std::fs::write(&file, &input).unwrap();
    let args = ["--key", ".id", "--window", "10s", "--time-field", ".ts"];
    // (extra flags, fingerprints held, bloom keys held)
    for (extra, fingerprints, bloom_keys) in
        [(&[][..], 2, 0), (&["--local-bloom", "on"][..], 2, 2), (&["--exact", "none"][..], 0, 2)]
    {
        let o = TestCommand::new(&[&args[..], extra].concat()).arg(&file).run();
        o.assert_ok();
        assert_eq!(o.stdout_str(), input, "{extra:?}");
        assert_eq!(
            ["new", "windows_rotated", "bitmap_ids", "exact_fingerprints", "bloom_keys"]
                .map(|k| o.stat(k)),
            [7, 1, 1, fingerprints, bloom_keys],
            "{extra:?}: only window 1's IDs (c, 3, a) are held"
        );
    }
}

#[test]
fn late_records() {
    let args = ["--key", ".id", "--window", "10s", "--time-field", ".ts"];
    let input = ev("a", 35) + &ev("a", 5) + &ev("a", 5) + &ev("b", 36);
    let o = run(&args, &input);
    assert_eq!(o.stdout_str(), input);
    assert_eq!((o.stat("new"), o.stat("late")), (2, 2));
    let mut drop = args.to_vec();
    drop.extend(["--on-late", "drop"]);
    let o = run(&drop, &input);
    assert_eq!(o.stdout_str(), ev("a", 35) + &ev("b", 36));
    assert_eq!((o.stat("late"), o.stat("dropped")), (2, 2));
    // A late record is never inserted: the same ID in the clock's window is new.
    let input = ev("x", 35) + &ev("y", 5) + &ev("y", 36);
    let o = run(&args, &input);
    assert_eq!(o.stdout_str(), input);
}

/// A late record is never a duplicate: `--emit dups` leaves it out, and under
/// `--emit all --tag` it is written tagged `false`.
#[test]
fn late_records_follow_their_policy_in_every_emit_mode() {
    let input = ev("a", 35) + &ev("a", 36) + &ev("b", 5);
    let base = ["--key", ".id", "--window", "10s", "--time-field", ".ts"];
    let mut dups = base.to_vec();
    dups.extend(["--emit", "dups"]);
    let o = run(&dups, &input);
    assert_eq!(o.stdout_str(), ev("a", 36));
    assert_eq!((o.stat("duplicates"), o.stat("late"), o.stat("emitted")), (1, 1, 1));
    let mut all = base.to_vec();
    all.extend(["--emit", "all", "--tag", "dup"]);
    let o = run(&all, &input);
    let out = o.stdout_str();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].contains(r#""dup":false"#) && lines[1].contains(r#""dup":true"#));
    assert_eq!(lines[2], r#"{"id":"b","ts":5,"dup":false}"#, "the late record is tagged");
}

#[test]
fn no_readable_time_is_unkeyed() {
    let args = ["--key", ".id", "--window", "10s", "--time-field", ".ts"];
    let input =
        "{\"id\":1}\n{\"id\":1,\"ts\":\"soon\"}\n{\"id\":1,\"ts\":null}\n{\"id\":1,\"ts\":3}\n";
    let o = run(&args, input);
    assert_eq!(o.stdout_str(), input);
    assert_eq!((o.stat("unkeyed"), o.stat("new")), (3, 1));
    let mut drop = args.to_vec();
    drop.extend(["--on-unkeyed", "drop"]);
    assert_eq!(out(&drop, input), "{\"id\":1,\"ts\":3}\n");
}

#[test]
fn time_formats() {
    let args = ["--key", ".id", "--window", "1h", "--time-field", ".ts"];
    // RFC 3339 with offsets, epoch s/ms/µs/ns: all the same hour.
    let t = [
        "\"2018-03-24T17:15:25Z\"",
        "\"2018-03-24T19:15:25.5+02:00\"",
        "\"2018-03-24 17:59:59Z\"",
        "1521911725",
        "1521911725123",
        "1521911725123456",
        "\"1521911725123456789\"",
        "1521911725.25",
    ];
    let input: String = t.iter().map(|t| format!("{{\"id\":1,\"ts\":{t}}}\n")).collect();
    let o = run(&args, &input);
    assert_eq!((o.stat("new"), o.stat("duplicates"), o.stat("unkeyed")), (1, 7, 0));
    // The next hour is a new window.
    let o = run(&args, &(input.clone() + "{\"id\":1,\"ts\":\"2018-03-24T18:00:00Z\"}\n"));
    assert_eq!((o.stat("new"), o.stat("duplicates")), (2, 7));
    // strftime: HDFS's `081109 203615` in field 1+2 via a regex.
    let hdfs = "081109 203615 blk_1\n081109 205959 blk_1\n081109 210000 blk_1\nbad blk_1\n";
    let o = run(
        &[
            "--key",
            r"regex:blk_(\d+)",
            "--time-field",
            r"regex:^(\d{6} \d{6})",
            "--time-format",
            "%y%m%d %H%M%S",
            "--window",
            "1h",
        ],
        hdfs,
    );
    assert_eq!(o.stdout_str(), "081109 203615 blk_1\n081109 210000 blk_1\nbad blk_1\n");
    assert_eq!(o.stat("unkeyed"), 1);
    // syslog without a year.
    let syslog = "Jun  9 06:06:20 a\nJun  9 06:59:59 a\nJun  9 07:00:00 a\n";
    let o = run(&SYSLOG_1H, syslog);
    assert_eq!(o.stdout_str(), "Jun  9 06:06:20 a\nJun  9 07:00:00 a\n");
}

/// Syslog-style lines keyed on their fourth field, in windows of an hour by their time.
const SYSLOG_1H: [&str; 8] = [
    "--key",
    "field:4",
    "--time-field",
    r"regex:^(\w+ +\d+ [\d:]+)",
    "--time-format",
    "%b %e %T",
    "--window",
    "1h",
];

/// A time format without a year crosses New Year forward: January follows
/// December (not late, one window on), and a late December record after it is
/// still December.
#[test]
fn syslog_times_cross_new_year() {
    let syslog = "Dec 31 23:59:58 a\nJan  1 00:00:01 a\nJan  1 00:00:02 b\nDec 31 23:59:59 c\nJan  1 00:30:00 c\n";
    let o = run(&[&SYSLOG_1H[..], &["--retain", "2"]].concat(), syslog);
    assert_eq!(o.stdout_str(), "Dec 31 23:59:58 a\nJan  1 00:00:02 b\nDec 31 23:59:59 c\n");
    assert_eq!(o.stat("late"), 0);
    assert_eq!(o.stat("duplicates"), 2);
    assert_eq!(o.stat("windows_rotated"), 1);
}

/// A year-less time is read near the stream's last time, not near the arrival
/// clock: months of syslog from January to September replayed in December (the
/// clock's year and the next are both a guess) stay in order. Read near the
/// clock, June would be the June before and every record from it late.
#[test]
fn a_time_without_year_follows_the_stream_not_the_clock() {
    let december = 1_796_169_600 * 1_000_000_000; // 2026-12-02T00:00:00Z
    let syslog = "Jan 15 10:00:00 a\nMar  1 10:00:00 b\nJun 10 10:00:00 c\nSep  1 10:00:00 d\nSep  1 10:00:01 d\n";
    let mut c = Config::default();
    c.key = key_spec(&["field:4"], None, KeyType::Auto);
    c.time = Some(TimeConfig {
        field: key_spec(&[r"regex:^(\w+ +\d+ [\d:]+)"], None, KeyType::Str),
        format: Some("%b %e %T".into()),
    });
    c.window.width_ns = Some(3_600_000_000_000);
    let out = SharedBuf::default();
    let stats = Pipeline::new(c)
        .with_clock(Arc::new(ManualClock::new(december)))
        .run(syslog.as_bytes(), Box::new(out.clone()))
        .unwrap();
    assert_eq!((stats.late, stats.duplicates), (0, 1));
    assert_eq!(
        String::from_utf8(out.bytes()).unwrap(),
        syslog.rsplit_once("Sep  1 10:00:01").unwrap().0
    );
}

/// Without `--time-field` the window is the arrival time, from an injected clock.
#[test]
fn arrival_time_windows_use_the_injected_clock() {
    /// Returns one line per read, moving the clock to that line's time first.
    struct Timed {
        lines: Vec<(i64, &'static [u8])>,
        clock: ManualClock,
    }
    impl Read for Timed {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.lines.is_empty() {
                return Ok(0);
            }
            let (t, l) = self.lines.remove(0);
            self.clock.set(t * 1_000_000_000);
            buf[..l.len()].copy_from_slice(l);
            Ok(l.len())
        }
    }
    let clock = ManualClock::new(0);
    let input = Timed {
        lines: vec![(0, b"a\n"), (5, b"a\n"), (10, b"a\n"), (12, b"b\n"), (30, b"b\n")],
        clock: clock.clone(),
    };
    let mut c = Config::default();
    c.window.width_ns = Some(10_000_000_000);
    let out = SharedBuf::default();
    let stats =
        Pipeline::new(c).with_clock(Arc::new(clock)).run(input, Box::new(out.clone())).unwrap();
    assert_eq!(out.bytes(), b"a\na\nb\nb\n");
    assert_eq!((stats.new, stats.duplicates), (4, 1));
}

// ---------------------------------------------------------------------------
// Emit modes and tags

#[test]
fn emit_modes_and_tags() {
    let input = "{\"id\":1}\n  { \"id\":1}\r\nplain\n{\"id\":2,\"x\":{}}\n{\"id\":2,\"x\":{}}\n";
    let base = ["--key", ".id"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        out(&a, input)
    };
    assert_eq!(with(&[]), "{\"id\":1}\nplain\n{\"id\":2,\"x\":{}}\n");
    assert_eq!(with(&["--emit", "dups"]), "  { \"id\":1}\r\n{\"id\":2,\"x\":{}}\n");
    assert_eq!(with(&["--emit", "all"]), input);
    assert_eq!(
        with(&["--emit", "all", "--tag", "dup"]),
        "{\"id\":1,\"dup\":false}\n  { \"id\":1,\"dup\":true}\r\nplain\n{\"id\":2,\"x\":{},\"dup\":false}\n{\"id\":2,\"x\":{},\"dup\":true}\n"
    );
}

/// Tags go into JSON objects only, whatever the key; other records pass unchanged.
#[test]
fn tags_only_json_objects() {
    let o = run(&["--emit", "all", "--tag", "seen"], "plain\nplain\n{}\n{}\n[1]\n[1]\n");
    assert_eq!(o.stdout_str(), "plain\nplain\n{\"seen\":false}\n{\"seen\":true}\n[1]\n[1]\n");
}

/// The tag is the last member, so a record that already has a member of that name
/// reads as tagged to readers that take a name's last member (jq, serde_json).
#[test]
fn a_tag_overrides_a_member_of_the_same_name() {
    let input =
        "{\"id\":1,\"dup\":\"no\"}\n{\"id\":1,\"dup\":\"no\"}\r\n{ \"id\":2 , \"dup\":0 }\n";
    let o = run(&["--key", ".id", "--emit", "all", "--tag", "dup"], input);
    let out = o.stdout_str();
    let tags: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["dup"].clone())
        .collect();
    assert_eq!(tags, [false, true, false], "{out}");
    assert_eq!((o.stat("new"), o.stat("duplicates")), (2, 1));
}

// ---------------------------------------------------------------------------
// Oversized records

#[test]
fn oversized_records_by_policy() {
    let big = "x".repeat(100);
    let input = format!("a\n{big}\n{big}\nb\n{big}");
    let o = run(&["--max-record-bytes", "50"], &input);
    assert_eq!(o.stdout_str(), input, "oversized records are passed through, never deduplicated");
    assert_eq!((o.stat("oversized"), o.stat("emitted")), (3, 5));
    let o = run(&["--max-record-bytes", "50", "--on-oversized", "drop"], &input);
    assert_eq!(o.stdout_str(), "a\nb\n");
    assert_eq!(o.stat("dropped"), 3);
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r");
    let o = run(
        &[
            "--max-record-bytes",
            "50",
            "--on-oversized",
            "reject",
            "--reject-file",
            rf.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(o.stdout_str(), "a\nb\n");
    assert_eq!(o.stat("rejected"), 3);
    assert_eq!(std::fs::read_to_string(&rf).unwrap(), format!("{big}\n{big}\n{big}"));
    // Exactly at the limit (without the terminator) is a record like any other.
    let at = "y".repeat(50);
    let o = run(&["--max-record-bytes", "50"], &format!("{at}\r\n{at}\n"));
    assert_eq!(o.stdout_str(), format!("{at}\r\n"));
    assert_eq!(o.stat("oversized"), 0);
}

/// Runs `--max-record-bytes LIMIT --on-oversized POLICY --reject-file REJECTS FILE`
/// and checks that it wrote `want`.
fn oversized_from_file(
    limit: &str,
    policy: &str,
    rejects: &std::path::Path,
    file: &std::path::Path,
    want: &str,
) -> util::Output {
    let o = TestCommand::new(&["--max-record-bytes", limit, "--on-oversized", policy])
        .arg("--reject-file")
        .arg(rejects)
        .arg(file)
        .run();
    o.assert_ok();
    assert!(o.stdout == want.as_bytes(), "{policy}: {} bytes written", o.stdout.len());
    o
}

/// The `\r` of a `\r\n` is not counted against `--max-record-bytes`, also while
/// the record is still incomplete in the read buffer: a file's first read is
/// 64 KiB, so it ends right after the `\r` of a first record of 64 KiB - 1 bytes.
/// That record (exactly the limit) is kept and deduplicated; one byte more is
/// oversized and follows `--on-oversized`.
#[test]
fn cr_allowance_of_max_record_bytes_is_exact() {
    let max = (64 << 10) - 1;
    let at = "y".repeat(max);
    let over = "z".repeat(max + 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in");
    std::fs::write(&file, format!("{at}\r\n{over}\r\n{at}\r\nb\n")).unwrap();
    let rf = dir.path().join("rejects");
    let limit = max.to_string();
    let kept = format!("{at}\r\nb\n");
    for (policy, want, rejects, dropped, rejected) in [
        ("emit", format!("{at}\r\n{over}\r\nb\n"), String::new(), 0, 0),
        ("drop", kept.clone(), String::new(), 1, 0),
        ("reject", kept, format!("{over}\r\n"), 0, 1),
    ] {
        let o = oversized_from_file(&limit, policy, &rf, &file, &want);
        assert_eq!(
            ["records_in", "new", "duplicates", "oversized", "dropped", "rejected"]
                .map(|k| o.stat(k)),
            [4, 2, 1, 1, dropped, rejected],
            "{policy}"
        );
        // Opened (and created) only under `reject`.
        let got = std::fs::read_to_string(&rf).unwrap_or_default();
        assert!(got == rejects, "{policy}: reject file");
    }
}

/// A record far over the limit is streamed in parts (a file's reads grow from
/// 64 KiB), and each policy sees every part: written in order, or in the reject
/// file whole.
#[test]
fn oversized_record_in_parts_follows_its_policy_whole() {
    let big: String = (0..100_000).map(|i| format!("{i:07}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in");
    let input = format!("a\n{big}\r\nb\na\n");
    std::fs::write(&file, &input).unwrap();
    let rf = dir.path().join("rejects");
    for (policy, want, rejects) in [
        ("emit", format!("a\n{big}\r\nb\n"), String::new()),
        ("drop", "a\nb\n".to_string(), String::new()),
        ("reject", "a\nb\n".to_string(), format!("{big}\r\n")),
    ] {
        let o = oversized_from_file("1KiB", policy, &rf, &file, &want);
        // Opened (and created) only under `reject`.
        let got = std::fs::read_to_string(&rf).unwrap_or_default();
        assert!(got == rejects, "{policy}: reject file");
        assert_eq!(
            ["records_in", "oversized", "duplicates", "bytes_in"].map(|k| o.stat(k)),
            [4, 1, 1, input.len() as u64],
            "{policy}"
        );
    }
}

/// A 100 MB line passes through with bounded memory (counted, not buffered whole).
#[test]
fn huge_line_is_streamed() {
    let mut input = b"a\n".to_vec();
    input.extend(std::iter::repeat_n(b'z', 100 << 20));
    input.extend_from_slice(b"\na\nb\n");
    let o = TestCommand::new(&["--max-record-bytes", "1MiB"]).stdin(&input).run();
    o.assert_ok();
    assert!(o.stdout.len() == input.len() - 2, "everything but the repeated a");
    assert_eq!((o.stat("oversized"), o.stat("duplicates")), (1, 1));
    let peak = o.stat("peak_rss_bytes");
    assert!(peak < 60 << 20, "peak RSS {peak} B on a 100 MiB line");
}

// ---------------------------------------------------------------------------
// Tiers: every tier combination gives the same answer on exact-sized inputs

#[test]
fn tiers_agree() {
    let input: String =
        (0..3000).map(|i| format!("{{\"id\":\"k{}\",\"n\":{i}}}\n", i % 1000)).collect();
    let want = out(&["--key", ".id"], &input);
    assert_eq!(want.lines().count(), 1000);
    for extra in [
        &["--local-bloom", "on"][..],
        &["--local-bloom", "off"],
        &["--local-bloom", "on", "--fpr", "0.5", "--bloom-initial-capacity", "1"],
        // The bloom alone may drop a unique record at the rate `--fpr`: at the
        // default 1e-4 a run of these 3,000 lookups did so (seeds are random per
        // run), so these two ask for 1e-9, which makes that a 3e-6 chance.
        &["--exact", "none", "--fpr", "1e-9"],
        &["--exact", "none", "--fpr", "1e-9", "--bloom-initial-capacity", "4"],
    ] {
        let mut a = vec!["--key", ".id"];
        a.extend_from_slice(extra);
        assert_eq!(out(&a, &input), want, "{extra:?}");
    }
}

/// The library's `Config` with a time field behaves as the flags do.
#[test]
fn library_and_binary_agree() {
    let input = ev("a", 1) + &ev("a", 12) + &ev("b", 3) + &ev("a", 2);
    let mut c = Config::default();
    c.key = key_spec(&[".id"], None, KeyType::Auto);
    c.window.width_ns = Some(10_000_000_000);
    c.window.retain = 2;
    c.time = Some(TimeConfig { field: key_spec(&[".ts"], None, KeyType::Str), format: None });
    let (lib, _) = crate::util::run_pipeline(c, input.clone().into_bytes(), 3).unwrap();
    let bin =
        out(&["--key", ".id", "--window", "10s", "--retain", "2", "--time-field", ".ts"], &input);
    assert_eq!(String::from_utf8(lib).unwrap(), bin);
    assert_eq!(bin, ev("a", 1) + &ev("b", 3));
}
