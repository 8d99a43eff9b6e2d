//! Naming the machine: every report says what it was measured on (cores, CPU
//! model, memory, kernel, virtualisation, huge-page policy, tool versions), so
//! numbers from different machines are never compared by accident.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::report::Machine;
use crate::tools::find_program;

/// First line of a command's combined output, if it ran.
fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    let line = String::from_utf8_lossy(&text).lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// Describes this machine and the versions of the tools, and of `logdedup`.
pub fn describe(logdedup: &Path) -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let hypervisor = cpuinfo.lines().any(|l| l.starts_with("flags") && l.contains(" hypervisor"));
    let mem_bytes = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let kernel =
        fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let thp = fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut tools = BTreeMap::new();
    let probes: [(&str, &[&str]); 7] = [
        ("sort", &["--version"]),
        ("gawk", &["--version"]),
        ("mawk", &["-W", "version"]),
        ("runiq", &["--version"]),
        ("huniq", &["--version"]),
        ("redis-server", &["--version"]),
        ("rustc", &["--version"]),
    ];
    for (name, args) in probes {
        if find_program(name).is_some() {
            if let Some(v) = first_line(name, args) {
                tools.insert(name.to_string(), v);
            }
        }
    }
    if logdedup.is_file() {
        let v = first_line(&logdedup.display().to_string(), &["--version"])
            .unwrap_or_else(|| "unknown".into());
        tools.insert("logdedup".into(), v);
    }
    if let Some(c) = first_line("git", &["rev-parse", "--short", "HEAD"]) {
        tools.insert("git-commit".into(), c);
    }
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        mem_bytes,
        kernel,
        hypervisor,
        thp,
        tools,
    }
}
