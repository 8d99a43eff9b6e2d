//! `--generate`: the man page renders with `man -l` (or `groff`), and bash's own
//! completion machinery, given the generated script, completes `--ex` to `--exact`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::daemon::installed;
use crate::util::TestCommand;

fn generate(what: &str) -> String {
    let o = TestCommand::raw(&["--generate", what]).run();
    assert_eq!(o.code, 0, "--generate {what}: {}", o.stderr);
    o.stdout_str()
}

#[test]
fn the_man_page_renders() {
    let page = generate("man");
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "not roff: {}", &page[..80.min(page.len())]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logdedup.1");
    std::fs::write(&file, &page).unwrap();
    let rendered = if installed("man") {
        Command::new("man").arg("-l").arg(&file).env("MANPAGER", "cat").env("MANWIDTH", "100").output()
    } else if installed("groff") {
        Command::new("groff").args(["-man", "-Tutf8"]).arg(&file).output()
    } else {
        eprintln!("skipping the_man_page_renders: neither man nor groff is installed (apt-get install man-db)");
        return;
    }
    .unwrap();
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let text = String::from_utf8_lossy(&rendered.stdout);
    // Rendered text, not roff source; with the flags and their help.
    for want in ["NAME", "SYNOPSIS", "OPTIONS", "--window", "--stats-every", "--metrics"] {
        assert!(text.contains(want), "man page lacks {want}:\n{text}");
    }
    assert!(!text.contains(".TP"), "roff left unrendered:\n{text}");
}

/// Completions bash would offer for the command line `words` (cursor on the last).
fn bash_complete(script: &str, words: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logdedup.bash");
    std::fs::write(&file, script).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    // What bash does on TAB: the function `complete -p` names for the command,
    // called with COMP_WORDS/COMP_CWORD set, fills COMPREPLY.
    let driver = format!(
        "source '{}'\n\
         spec=$(complete -p logdedup) || exit 3\n\
         func=$(printf '%s\\n' \"$spec\" | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         \"$func\" logdedup \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        file.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let mut child = Command::new("bash")
        .arg("--norc")
        .arg("--noprofile")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    child.stdin.take().unwrap().write_all(driver.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn bash_completes_ex_to_exact() {
    let script = generate("complete-bash");
    let got = bash_complete(&script, &["logdedup", "--ex"]);
    assert!(got.contains(&"--exact".to_string()), "{got:?}");
    assert!(got.iter().all(|w| w.starts_with("--ex")), "{got:?}");
    // Values of an enum flag complete too.
    let got = bash_complete(&script, &["logdedup", "--emit", "d"]);
    assert_eq!(got, ["dups"]);
}

#[test]
fn zsh_and_fish_scripts_name_every_flag() {
    for (what, marker) in
        [("complete-zsh", "#compdef logdedup"), ("complete-fish", "complete -c logdedup")]
    {
        let script = generate(what);
        assert!(script.contains(marker), "{what}");
        for flag in ["exact", "window", "metrics", "stats-every"] {
            assert!(script.contains(flag), "{what} lacks {flag}");
        }
    }
    let o = TestCommand::raw(&["--generate", "complete-tcsh"]).run();
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("--generate"), "{}", o.stderr);
    // It is a command of its own: it takes no other flag.
    assert_eq!(TestCommand::raw(&["--generate", "man", "--key", ".id"]).run().code, 1);
}
