//! The tools under test, as data.
//!
//! Each [`Tool`] is a shell pipeline that reads the dataset (`$DATA`) through a
//! pipe, as a user's shipper would feed it, and writes the records it keeps to
//! stdout. The runner sets the environment: `$DATA`, `$LOGDEDUP` (the binary under
//! test), `$BENCH` (this harness, for the `setnx` client), `$REDIS_URL` and
//! `$STATS` (where logdedup writes `--stats-json`). A tool whose program is not
//! installed is listed as skipped with the reason, never silently left out.

use std::path::{Path, PathBuf};

use crate::report::Expect;
use crate::spec::GenConfig;

/// Who a tool belongs to, for grouping in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `cat | wc -l`: the speed of the pipe itself.
    Floor,
    /// A tool a user would pick today.
    Peer,
    /// logdedup in one of its modes.
    Logdedup,
    /// A Redis `SET NX EX` client.
    Redis,
}

impl Family {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Floor => "floor",
            Family::Peer => "peer",
            Family::Logdedup => "logdedup",
            Family::Redis => "redis",
        }
    }
}

/// What a tool's stdout holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The kept records, one per line.
    Records,
    /// A single number (`wc -l`).
    Count,
}

/// One tool: a command and what its output must equal.
#[derive(Clone, Debug)]
pub struct Tool {
    /// Short name (file names, chart labels).
    pub slug: String,
    /// Label for the reader.
    pub label: String,
    /// Group.
    pub family: Family,
    /// `sh -c` command.
    pub command: String,
    /// What stdout holds.
    pub output: Output,
    /// The truth to compare against.
    pub expect: Expect,
    /// Programs (names on `PATH` or paths) that must exist to run it.
    pub needs: Vec<String>,
    /// Needs a fresh Redis (flushed before each run).
    pub redis: bool,
    /// Writes logdedup's `--stats-json` to `$STATS`.
    pub stats: bool,
}

/// What the tool list depends on.
#[derive(Clone, Debug)]
pub struct Context {
    /// The dataset's knobs (key fields, format, truth window).
    pub spec: GenConfig,
    /// The logdedup binary.
    pub logdedup: PathBuf,
    /// Whether a Redis server is available to this run.
    pub redis: bool,
}

impl Tool {
    fn new(slug: &str, label: &str, family: Family, command: String, expect: Expect) -> Tool {
        Tool {
            slug: slug.into(),
            label: label.into(),
            family,
            command,
            output: Output::Records,
            expect,
            needs: Vec::new(),
            redis: false,
            stats: false,
        }
    }

    fn needs(mut self, program: &str) -> Tool {
        self.needs.push(program.into());
        self
    }

    fn logdedup(mut self, ctx: &Context) -> Tool {
        self.needs.push(ctx.logdedup.display().to_string());
        self.stats = true;
        self
    }

    /// The first missing program, if any.
    pub fn missing(&self) -> Option<String> {
        self.needs.iter().find(|p| find_program(p).is_none()).cloned()
    }
}

/// Looks a program up like the shell does (a name with a `/` is a path).
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = Path::new(name);
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// An awk program that keeps the first record of each key. A JSON path is found
/// with `index()` (a plain substring search: fast in both gawk and mawk, where a
/// regex `match()` made gawk ten times slower) and its value runs to the next `,`
/// or `}`; the key is the value's raw text, so the quotes of a string stay part
/// of it. Fields use awk's own whitespace splitting.
pub fn awk_keyed_program(keys: &[String]) -> String {
    let mut parts = Vec::new();
    let mut fields = Vec::new();
    for k in keys {
        if let Some(n) = k.strip_prefix("field:") {
            fields.push(format!("${n}"));
        } else {
            let needle = format!("\"{}\":", k.trim_start_matches('.'));
            let len = needle.len();
            let needle = needle.replace('"', "\\\"");
            parts.push(format!(
                "i = index($0, \"{needle}\"); if (i) {{ s = substr($0, i + {len}); j = index(s, \",\"); if (!j) j = index(s, \"}}\"); k = k substr(s, 1, j - 1) }} k = k SUBSEP;"
            ));
        }
    }
    if !fields.is_empty() {
        return format!("!seen[{}]++", fields.join(" SUBSEP "));
    }
    format!("{{ k = \"\"; {} }} !seen[k]++", parts.join(" "))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The standard line-up for one dataset, in the order they run.
pub fn standard(ctx: &Context) -> Vec<Tool> {
    let mut v = peers(ctx);
    v.extend(logdedup_tools(ctx));
    if ctx.redis {
        v.extend(redis_tools(ctx));
    }
    v
}

/// ` --key K` for each key of the dataset.
fn key_flags(ctx: &Context) -> String {
    ctx.spec.key_specs().iter().map(|k| format!(" --key {k}")).collect()
}

/// logdedup reading the dataset and writing its counters, before its own flags.
const LOGDEDUP: &str = r#"cat "$DATA" | "$LOGDEDUP" --stats-json "$STATS""#;

/// The floor (`cat | wc -l`) and the other tools: sort, awk, runiq, huniq.
fn peers(ctx: &Context) -> Vec<Tool> {
    let key_flags = key_flags(ctx);
    let awk_keyed = quote(&awk_keyed_program(&ctx.spec.key_specs()));
    let mut v = vec![
        Tool {
            output: Output::Count,
            ..Tool::new(
                "floor",
                "cat | wc -l (floor)",
                Family::Floor,
                r#"cat "$DATA" | wc -l"#.into(),
                Expect::Records,
            )
        },
        Tool::new(
            "sort-u",
            "LC_ALL=C sort -u",
            Family::Peer,
            r#"cat "$DATA" | LC_ALL=C sort -u"#.into(),
            Expect::UniqueLines,
        )
        .needs("sort"),
    ];
    for awk in ["gawk", "mawk"] {
        v.push(
            Tool::new(
                awk,
                &format!("{awk} '!seen[$0]++'"),
                Family::Peer,
                format!(r#"cat "$DATA" | {awk} '!seen[$0]++'"#),
                Expect::UniqueLines,
            )
            .needs(awk),
        );
        v.push(
            Tool::new(
                &format!("{awk}-keyed"),
                &format!("{awk} keyed on{}", key_flags.replace(" --key", "")),
                Family::Peer,
                format!(r#"cat "$DATA" | {awk} {awk_keyed}"#),
                Expect::UniqueIds,
            )
            .needs(awk),
        );
    }
    v.push(
        Tool::new(
            "runiq",
            "runiq",
            Family::Peer,
            r#"cat "$DATA" | runiq -"#.into(),
            Expect::UniqueLines,
        )
        .needs("runiq"),
    );
    v.push(
        Tool::new(
            "huniq",
            "huniq",
            Family::Peer,
            r#"cat "$DATA" | huniq"#.into(),
            Expect::UniqueLines,
        )
        .needs("huniq"),
    );
    v
}

/// logdedup on the whole line, keyed in memory, keyed with `--exact none`, and
/// windowed on event time when the dataset has one.
fn logdedup_tools(ctx: &Context) -> Vec<Tool> {
    let key_flags = key_flags(ctx);
    let ld = LOGDEDUP;
    let mut v = vec![
        Tool::new(
            "logdedup-line",
            "logdedup (whole line)",
            Family::Logdedup,
            ld.into(),
            Expect::UniqueLines,
        )
        .logdedup(ctx),
        Tool::new(
            "logdedup-memory",
            &format!("logdedup{key_flags} --exact memory"),
            Family::Logdedup,
            format!("{ld}{key_flags} --exact memory"),
            Expect::UniqueIds,
        )
        .logdedup(ctx),
        Tool::new(
            "logdedup-none",
            &format!("logdedup{key_flags} --exact none"),
            Family::Logdedup,
            format!("{ld}{key_flags} --exact none"),
            Expect::AtMostUniqueIds,
        )
        .logdedup(ctx),
    ];
    if let Some(tf) = ctx.spec.time_field() {
        let w = ctx.spec.window;
        v.push(
            Tool::new(
                "logdedup-window",
                &format!("logdedup{key_flags} --window {w} --time-field {tf}"),
                Family::Logdedup,
                format!("{ld}{key_flags} --window {w} --time-field {tf}"),
                Expect::Windowed,
            )
            .logdedup(ctx),
        );
    }
    v
}

/// logdedup with a Redis exact tier, and Redis `SET NX EX` as a user would
/// pipeline it, both on the harness's own server.
fn redis_tools(ctx: &Context) -> Vec<Tool> {
    let key_flags = key_flags(ctx);
    let setnx_keys: Vec<String> =
        ctx.spec.key_specs().iter().map(|k| k.trim_start_matches('.').to_string()).collect();
    let mut tools = vec![
        Tool::new(
            "logdedup-redis",
            &format!("logdedup{key_flags} --exact redis+unix"),
            Family::Logdedup,
            format!(r#"{LOGDEDUP}{key_flags} --exact "$REDIS_URL""#),
            Expect::UniqueIds,
        )
        .logdedup(ctx),
        Tool::new(
            "redis-setnx",
            "Redis SET NX EX, pipelined 1000",
            Family::Redis,
            format!(
                r#"cat "$DATA" | "$BENCH" setnx --redis "$REDIS_URL" --key {} --batch 1000"#,
                setnx_keys.join(",")
            ),
            Expect::UniqueIds,
        ),
    ];
    for t in &mut tools {
        t.redis = true;
    }
    tools
}

/// logdedup keyed, windowed with `window`: one point of the rotation experiment.
pub fn windowed(ctx: &Context, window: crate::spec::Dur) -> Tool {
    let key_flags = key_flags(ctx);
    let tf = ctx.spec.time_field().unwrap_or_else(|| ".ts".into());
    Tool::new(
        &format!("logdedup-window-{window}"),
        &format!("logdedup --window {window}"),
        Family::Logdedup,
        format!("{LOGDEDUP}{key_flags} --window {window} --time-field {tf}"),
        Expect::Windowed,
    )
    .logdedup(ctx)
}

/// logdedup keyed with `--exact none --fpr fpr`: one point of the fpr experiment.
pub fn exact_none(ctx: &Context, fpr: f64) -> Tool {
    let key_flags = key_flags(ctx);
    Tool::new(
        &format!("logdedup-none-fpr-{fpr:e}"),
        &format!("logdedup --exact none --fpr {fpr:e}"),
        Family::Logdedup,
        format!("{LOGDEDUP}{key_flags} --exact none --fpr {fpr:e}"),
        Expect::AtMostUniqueIds,
    )
    .logdedup(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Format, IdKind};

    fn ctx(spec: GenConfig) -> Context {
        Context { spec, logdedup: "/nonexistent/logdedup".into(), redis: true }
    }

    #[test]
    fn lineup_covers_every_family() {
        let tools = standard(&ctx(GenConfig::default()));
        for f in [Family::Floor, Family::Peer, Family::Logdedup, Family::Redis] {
            assert!(tools.iter().any(|t| t.family == f), "{f:?}");
        }
        let ld = tools.iter().find(|t| t.slug == "logdedup-memory").unwrap();
        assert_eq!(ld.missing().as_deref(), Some("/nonexistent/logdedup"));
        assert!(tools.iter().find(|t| t.slug == "floor").unwrap().missing().is_none());
    }

    #[test]
    fn plain_data_has_no_windowed_tool() {
        let spec = GenConfig { format: Format::Plain, ..Default::default() };
        assert!(!standard(&ctx(spec)).iter().any(|t| t.slug == "logdedup-window"));
    }

    #[test]
    fn awk_programs() {
        assert_eq!(awk_keyed_program(&["field:3".into()]), "!seen[$3]++");
        let p = awk_keyed_program(
            &GenConfig { id_kind: IdKind::Composite, ..Default::default() }.key_specs(),
        );
        assert_eq!(p.matches("index($0").count(), 3);
        assert!(p.contains(r#"index($0, "\"user\":")"#), "{p}");
    }
}
