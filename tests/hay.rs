//! Small inline corpora (STYLE 12), each run through every path: the binary, and
//! the pipeline in process with read sizes of 1 B, 7 B and 64 KiB (and short
//! reads), as given and with every `\n` turned into `\r\n` — all must give the
//! same bytes.

use logdedup::{Config, KeyType};

use crate::util::{key_spec, run_pipeline, TestCommand};

/// One corpus: keys (`--key` values), input, the expected stdout under `--emit new`.
struct Hay {
    name: &'static str,
    keys: &'static [&'static str],
    delimiter: Option<u8>,
    input: &'static [u8],
    want: &'static [u8],
}

fn crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 8);
    for &c in b {
        if c == b'\n' {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

fn show(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// Runs one corpus through every path.
fn every_path(h: &Hay) {
    for (variant, input, want) in
        [("as given", h.input.to_vec(), h.want.to_vec()), ("crlf", crlf(h.input), crlf(h.want))]
    {
        if variant == "crlf" && h.input.contains(&b'\r') {
            continue; // the corpus is about `\r` itself
        }
        let mut args: Vec<String> = Vec::new();
        for k in h.keys {
            args.extend(["--key".into(), k.to_string()]);
        }
        if let Some(d) = h.delimiter {
            args.extend(["--delimiter".into(), (d as char).to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = TestCommand::new(&args).stdin(&input).run();
        o.assert_ok();
        assert!(
            o.stdout == want,
            "{} ({variant}), binary:\n got  {}\n want {}",
            h.name,
            show(&o.stdout),
            show(&want)
        );
        for (chunk, max_read) in [(1, 1), (7, 7), (7, 3), (64 << 10, 64 << 10), (64 << 10, 5)] {
            let mut c = Config::default();
            c.key = key_spec(h.keys, h.delimiter, KeyType::Auto);
            c.framing.chunk_bytes = chunk;
            let (got, stats) = run_pipeline(c, input.clone(), max_read).unwrap();
            assert!(
                got == want,
                "{} ({variant}), chunk {chunk}, reads of {max_read}:\n got  {}\n want {}",
                h.name,
                show(&got),
                show(&want)
            );
            assert_eq!(stats.records_in, o.stat("records_in"), "{}", h.name);
        }
    }
}

const HAYS: &[Hay] = &[
    Hay { name: "empty input", keys: &["line"], delimiter: None, input: b"", want: b"" },
    Hay { name: "one newline", keys: &["line"], delimiter: None, input: b"\n", want: b"\n" },
    Hay {
        name: "whole lines",
        keys: &["line"],
        delimiter: None,
        input: b"b\na\nb\nc\na\n",
        want: b"b\na\nc\n",
    },
    Hay {
        name: "no trailing newline, last is new",
        keys: &["line"],
        delimiter: None,
        input: b"a\nb\na\nc",
        want: b"a\nb\nc",
    },
    Hay {
        name: "no trailing newline, last is a duplicate",
        keys: &["line"],
        delimiter: None,
        input: b"a\nb\nb",
        want: b"a\nb\n",
    },
    Hay {
        name: "mixed CRLF and LF are the same key",
        keys: &["line"],
        delimiter: None,
        input: b"a\r\na\nb\nb\r\nc\r",
        want: b"a\r\nb\nc\r",
    },
    Hay {
        name: "lone CR inside and at the end",
        keys: &["line"],
        delimiter: None,
        input: b"\r\n\r\r\n\r\na\rb\na\rb\r\n\r",
        // The last `\r` (no `\n`) is content `\r`: the same as `\r\r\n`'s.
        want: b"\r\n\r\r\na\rb\n",
    },
    Hay {
        name: "non-UTF-8 whole lines",
        keys: &["line"],
        delimiter: None,
        input: b"\xff\xfe\x00\n\x80\n\xff\xfe\x00\n\xc3\x28\n\x80",
        want: b"\xff\xfe\x00\n\x80\n\xc3\x28\n",
    },
    Hay {
        name: "non-UTF-8 fields",
        keys: &["field:2"],
        delimiter: None,
        input: b"a \xff\xfe z\nb \xff\xfe y\nc \xfe\n",
        want: b"a \xff\xfe z\nc \xfe\n",
    },
    Hay {
        name: "non-UTF-8 bytes under a byte regex",
        keys: &[r"regex:(?-u)id=(\S+)"],
        delimiter: None,
        input: b"id=\xff\x80 a\nid=\xff\x80 b\nid=\xfe c\n",
        want: b"id=\xff\x80 a\nid=\xfe c\n",
    },
    Hay {
        // JSON is UTF-8: such a record is not JSON, so it is unkeyed, and written.
        name: "non-UTF-8 inside a JSON string",
        keys: &[".id"],
        delimiter: None,
        input: b"{\"id\":\"\xff\xfe\"}\n{\"id\":\"\xff\xfe\",\"n\":2}\n{\"id\":\"\xc3\xa9\"}\n{\"id\":\"\xc3\xa9\"}\n",
        want: b"{\"id\":\"\xff\xfe\"}\n{\"id\":\"\xff\xfe\",\"n\":2}\n{\"id\":\"\xc3\xa9\"}\n",
    },
    Hay {
        name: "JSON lines",
        keys: &[".request_id"],
        delimiter: None,
        input: br#"{"ts":1,"request_id":"r1","msg":"a"}
{"ts":2,"request_id":"r2","msg":"b"}
{"ts":3,"request_id":"r1","msg":"retry"}
{ "request_id" : "r3" }
{"request_id":"r3","extra":[1,2,{"request_id":"r9"}]}
{"nested":{"request_id":"r4"}}
{"nested":{"request_id":"r4"},"request_id":"r4"}
"#,
        want: br#"{"ts":1,"request_id":"r1","msg":"a"}
{"ts":2,"request_id":"r2","msg":"b"}
{ "request_id" : "r3" }
{"nested":{"request_id":"r4"}}
{"nested":{"request_id":"r4"},"request_id":"r4"}
"#,
    },
    Hay {
        name: "dotted JSON names",
        keys: &[r#"."id.orig_h""#],
        delimiter: None,
        input: br#"{"id.orig_h":"10.0.0.1","id.orig_p":1}
{"id.orig_p":2,"id.orig_h":"10.0.0.1"}
{"id":{"orig_h":"10.0.0.1"}}
{"id.orig_h":"10.0.0.2"}
"#,
        want: br#"{"id.orig_h":"10.0.0.1","id.orig_p":1}
{"id":{"orig_h":"10.0.0.1"}}
{"id.orig_h":"10.0.0.2"}
"#,
    },
    Hay {
        name: "nested path",
        keys: &[".http.request.id"],
        delimiter: None,
        input: br#"{"http":{"request":{"id":7}}}
{"http":{"method":"GET","request":{"x":"}","id":"7"}}}
{"http":{"request":{"id":8}}}
{"http":{"request":"id"}}
"#,
        want: br#"{"http":{"request":{"id":7}}}
{"http":{"request":{"id":8}}}
{"http":{"request":"id"}}
"#,
    },
    Hay {
        name: "escaped quotes inside JSON strings",
        keys: &[".id"],
        delimiter: None,
        input: br#"{"msg":"\"id\":\"fake\"","id":"real"}
{"msg":"\\","id":"real"}
{"id":"say \"hi\""}
{"id":"say \u0022hi\u0022"}
{"id":"say \\\"hi\\\""}
{"msg":"{\"id\":1}"}
"#,
        want: br#"{"msg":"\"id\":\"fake\"","id":"real"}
{"id":"say \"hi\""}
{"id":"say \\\"hi\\\""}
{"msg":"{\"id\":1}"}
"#,
    },
    Hay {
        name: "invalid JSON is unkeyed and emitted",
        keys: &[".id"],
        delimiter: None,
        input: b"{\"id\":\n{\"id\"\nnot json\n[\"id\",1]\n{\"id\":\"unterminated\n{\"id\":1}\n{\"id\":1}\n",
        want: b"{\"id\":\n{\"id\"\nnot json\n[\"id\",1]\n{\"id\":\"unterminated\n{\"id\":1}\n",
    },
    Hay {
        name: "pipe-delimited composite",
        keys: &["field:2", "field:3"],
        delimiter: Some(b'|'),
        input: b"t1|svc|ok|x\nt2|svc|ok|y\nt3|svc|fail\nt4|sv|cok\nt5|svcok\n",
        want: b"t1|svc|ok|x\nt3|svc|fail\nt4|sv|cok\nt5|svcok\n",
    },
    Hay {
        name: "awk fields with padding",
        keys: &["field:3", "field:4"],
        delimiter: None,
        input: b"03-17 16:13:38.811  1702  2395 D\n03-17 16:13:38.812  1702  2395 I\n03-17 16:13:38.813  1702  8671 D\n",
        want: b"03-17 16:13:38.811  1702  2395 D\n03-17 16:13:38.813  1702  8671 D\n",
    },
];

#[test]
fn hays_every_path() {
    for h in HAYS {
        every_path(h);
    }
}

/// Blank-only and empty records under a field key are unkeyed, not errors.
#[test]
fn blank_records_under_field_keys() {
    let o = TestCommand::new(&["--key", "field:1"]).stdin("\n \n\t\n\n").run();
    o.assert_ok();
    assert_eq!(o.stdout_str(), "\n \n\t\n\n");
    assert_eq!(o.stat("unkeyed"), 4);
}
