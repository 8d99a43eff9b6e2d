//! The deployment recipe of the guide, end to end with a real log daemon:
//! `rsyslogd` in the foreground with a private config, pid file and socket in a
//! temp dir hands each message to `logdedup` through `omprog`; `logger` sends
//! messages (duplicates included) to its socket; the file `logdedup` writes holds
//! each message once, in order.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::daemon::{installed, wait_for, Daemon};
use crate::util;

/// The rsyslog configuration of the recipe in GUIDE.md, for a private daemon
/// whose files (work directory, socket, wrapper) are in `dir`.
fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" RateLimit.Interval="0")
module(load="omprog")
template(name="dedup_msg" type="list") {{
    property(name="$!msg" droplastlf="on")
    constant(value="\n")
}}
if $programname == "app" then {{
    set $!msg = ltrim($msg);
    action(type="omprog" binary="{d}/dedup" template="dedup_msg")
}}
"#
    )
}

#[test]
fn rsyslog_hands_messages_to_logdedup_through_omprog() {
    let Some(rsyslogd) = ["rsyslogd", "/usr/sbin/rsyslogd"].into_iter().find(|p| installed(p))
    else {
        eprintln!(
            "skipping rsyslog_hands_messages_to_logdedup_through_omprog: rsyslogd is not \
             installed (apt-get install rsyslog; .ci/test does this)"
        );
        return;
    };
    if !installed("logger") {
        eprintln!("skipping rsyslog_hands_messages_to_logdedup_through_omprog: no logger");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("deduped.log");
    // The wrapper omprog starts: logdedup's stdout goes to the file.
    let wrapper = format!(
        "#!/bin/sh\nexec '{}' --key .req --quiet --stats-json '{}' >> '{}'\n",
        util::bin().display(),
        d.join("stats.json").display(),
        out.display()
    );
    std::fs::write(d.join("dedup"), wrapper).unwrap();
    Command::new("chmod").arg("+x").arg(d.join("dedup")).status().unwrap();
    std::fs::write(d.join("rsyslog.conf"), config(d)).unwrap();

    let mut daemon = Daemon(Some(
        Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(File::create(d.join("rsyslogd.out")).unwrap())
            .stderr(File::create(d.join("rsyslogd.err")).unwrap())
            .spawn()
            .expect("spawn rsyslogd"),
    ));
    let sock = d.join("log.sock");
    wait_for("rsyslogd's socket", Duration::from_secs(30), || sock.exists().then_some(()));

    // Each request logged three times (a retrying client), interleaved.
    let mut messages = Vec::new();
    for round in 0..3 {
        for r in 0..10 {
            messages.push(format!("{{\"req\":\"r{r}\",\"try\":{round}}}"));
        }
    }
    let lines = d.join("messages");
    std::fs::write(&lines, messages.join("\n") + "\n").unwrap();
    let sent = Command::new("logger")
        .arg("--socket-errors=on")
        .arg("-u")
        .arg(&sock)
        .arg("-t")
        .arg("app")
        .arg("-f")
        .arg(&lines)
        .output()
        .unwrap();
    assert!(sent.status.success(), "logger: {}", String::from_utf8_lossy(&sent.stderr));

    let expected: Vec<String> =
        (0..10).map(|r| format!("{{\"req\":\"r{r}\",\"try\":0}}")).collect();
    // logdedup writes what it kept while the daemon runs (it flushes when idle).
    let kept = wait_for("logdedup's file to hold every request", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&out).ok()?;
        let kept: Vec<String> = text.lines().map(str::to_string).collect();
        (kept.len() >= expected.len()).then_some(kept)
    });
    assert_eq!(
        kept,
        expected,
        "rsyslogd stderr: {:?}",
        std::fs::read_to_string(d.join("rsyslogd.err"))
    );

    // A stop closes logdedup's stdin: it ends, and its counters add up.
    let pid = std::fs::read_to_string(d.join("rsyslogd.pid")).unwrap();
    Command::new("kill").arg("-TERM").arg(pid.trim()).status().unwrap();
    assert!(daemon.wait_exit(Duration::from_secs(30)).is_some(), "rsyslogd stops on SIGTERM");
    let stats = wait_for("logdedup's --stats-json at its end", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(d.join("stats.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()
    });
    assert_eq!(stats["records_in"], 30, "{stats}");
    assert_eq!((stats["emitted"].as_u64(), stats["duplicates"].as_u64()), (Some(10), Some(20)));
}
