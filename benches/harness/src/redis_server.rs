//! Guards that run private Redis servers, for the harness's Redis tools and for
//! logdedup's tests (a dev-dependency): [`RedisServer`] (one server on a unix
//! socket in a temp dir, optionally also on TCP or TLS) and [`RedisCluster`]
//! (three masters on 127.0.0.1). Each runs with persistence off and is killed on
//! `Drop`.
//!
//! Nothing uses a server it did not start: results must not depend on whatever
//! else a shared server holds, and a benchmark must not load someone else's
//! instance.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `redis-server` with `args` in `dir`, its output discarded.
fn spawn_server(args: &[String], dir: &Path) -> Result<Child> {
    Command::new("redis-server")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(Error::program("redis-server"))
}

/// For the tests: a guard that could not start is a failure that says what to install.
fn or_explain<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| {
        panic!(
            "{e}: the Redis tier tests need redis-server and redis-cli on PATH (apt-get install \
             redis-server redis-tools; .ci/run does this)"
        )
    })
}

/// Sends one inline command over a stream and returns the raw reply.
fn ask(mut s: impl Read + Write, cmd: &str) -> std::io::Result<String> {
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::new();
    // Replies here are short: read until a line end arrives.
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.ends_with(b"\r\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// One `redis-server` on a unix socket in its own temp dir (optionally also on
/// TCP or TLS), persistence off, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The unix socket.
    pub sock: PathBuf,
    /// The TCP port, if started with one.
    pub port: Option<u16>,
    extra: Vec<String>,
}

impl RedisServer {
    /// A server on a unix socket and TLS on a free TCP port (`--tls-port`), with a
    /// certificate for 127.0.0.1 signed by a fresh CA; returns the CA's file, for
    /// the client's `SSL_CERT_FILE`.
    pub fn start_tls() -> (RedisServer, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .unwrap_or_else(|e| panic!("openssl ({e}): the TLS test needs it"));
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=logdedup-test-ca",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "s.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "s.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "c.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let port = free_port(false);
        let f = |n: &str| d.join(n).display().to_string();
        let extra = vec![
            "--tls-port".to_string(),
            port.to_string(),
            "--tls-cert-file".into(),
            f("c.pem"),
            "--tls-key-file".into(),
            f("k.pem"),
            "--tls-ca-cert-file".into(),
            f("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let ca = d.join("ca.pem");
        let mut s = RedisServer { child: None, sock: d.join("r.sock"), dir, port: None, extra };
        or_explain(s.spawn());
        s.port = Some(port);
        (s, ca)
    }

    /// A server on a unix socket only (`--port 0`); panics, saying what to
    /// install, if it cannot start (for the tests).
    pub fn start() -> RedisServer {
        or_explain(RedisServer::try_start())
    }

    /// A server on a unix socket only (`--port 0`), or why it could not start.
    pub fn try_start() -> Result<RedisServer> {
        RedisServer::start_with(None, &[])
    }

    /// A server on a unix socket and a free TCP port on 127.0.0.1, with extra
    /// arguments (e.g. `--requirepass`); panics if it cannot start.
    pub fn start_tcp(extra: &[&str]) -> RedisServer {
        or_explain(RedisServer::start_with(Some(free_port(false)), extra))
    }

    fn start_with(port: Option<u16>, extra: &[&str]) -> Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("logdedup-redis")
            .tempdir()
            .map_err(Error::file(std::env::temp_dir()))?;
        let sock = dir.path().join("r.sock");
        let mut s = RedisServer {
            child: None,
            dir,
            sock,
            port,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        s.spawn()?;
        Ok(s)
    }

    /// Starts the process and waits until it answers `PING` on its socket.
    fn spawn(&mut self) -> Result<()> {
        let mut args: Vec<String> = vec![
            "--port".into(),
            if self.extra.iter().any(|a| a == "--tls-port") { 0 } else { self.port.unwrap_or(0) }
                .to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--unixsocket".into(),
            self.sock.display().to_string(),
            "--unixsocketperm".into(),
            "700".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            self.dir.path().display().to_string(),
        ];
        args.extend(self.extra.iter().cloned());
        self.child = Some(spawn_server(&args, self.dir.path())?);
        let start = Instant::now();
        loop {
            let password = self.password();
            let ok = UnixStream::connect(&self.sock).ok().and_then(|s| {
                let cmd = match &password {
                    Some(p) => format!("AUTH {p}\r\nPING"),
                    None => "PING".into(),
                };
                ask(s, &cmd).ok()
            });
            if ok.is_some_and(|r| r.contains("PONG") || r.starts_with("+OK")) {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(Error::RedisStart(START_TIMEOUT));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn password(&self) -> Option<String> {
        let i = self.extra.iter().position(|a| a == "--requirepass")?;
        self.extra.get(i + 1).cloned()
    }

    /// `redis+unix:///…/r.sock`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.sock.display())
    }

    /// Runs `redis-cli -s SOCK ARGS` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut c = Command::new("redis-cli");
        c.arg("-s").arg(&self.sock);
        if let Some(p) = self.password() {
            c.arg("-a").arg(p).arg("--no-auth-warning");
        }
        let out = c.args(args).output().expect("redis-cli (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `INFO memory`'s `used_memory`.
    pub fn used_memory(&self) -> u64 {
        info_field(&self.cli(&["info", "memory"]), "used_memory")
    }

    /// Kills the server at once (SIGKILL: no clean shutdown, no reply to anyone).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same socket (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.sock);
        or_explain(self.spawn());
    }

    fn connection(&self) -> Result<redis::Connection> {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .map_err(Error::redis(self.url()))
    }

    /// Empties the server before a run, so every run starts from nothing.
    pub fn flush(&self) -> Result<()> {
        let mut c = self.connection()?;
        redis::cmd("FLUSHALL").arg("SYNC").query::<()>(&mut c).map_err(Error::redis("FLUSHALL"))
    }

    /// `used_memory` (bytes) and the number of keys, measured after a run.
    pub fn memory_figures(&self) -> Result<BTreeMap<String, f64>> {
        let mut c = self.connection()?;
        let info: String =
            redis::cmd("INFO").arg("memory").query(&mut c).map_err(Error::redis("INFO memory"))?;
        let keys: u64 = redis::cmd("DBSIZE").query(&mut c).map_err(Error::redis("DBSIZE"))?;
        let mut m = BTreeMap::new();
        for line in info.lines() {
            if let Some(v) = line.strip_prefix("used_memory:") {
                m.insert(USED_MEMORY.into(), v.trim().parse().unwrap_or(0.0));
            }
        }
        m.insert("redis_keys".into(), keys as f64);
        Ok(m)
    }
}

/// The extra holding Redis's `used_memory` after a run (bytes).
pub const USED_MEMORY: &str = "redis_used_memory_bytes";
/// The extra holding how much `used_memory` grew over a run, from the flushed
/// server (bytes): what the run's IDs cost Redis.
pub const USED_MEMORY_GROWTH: &str = "redis_used_memory_growth_bytes";

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A field of an `INFO` reply.
pub fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in INFO"))
}

/// A port on 127.0.0.1 that is free now; with `bus`, port + 10000 (the cluster
/// bus) is free too.
fn free_port(bus: bool) -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if !bus {
            return p;
        }
        if p < 55000 && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair found");
}

/// Three Redis Cluster masters on 127.0.0.1 (no replicas), killed on drop.
pub struct RedisCluster {
    nodes: Vec<Child>,
    dirs: Vec<tempfile::TempDir>,
    /// The masters' TCP ports.
    pub ports: Vec<u16>,
}

impl RedisCluster {
    /// Starts three masters, joins them with `redis-cli --cluster create`, and waits
    /// until every node reports `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let mut c = RedisCluster { nodes: Vec::new(), dirs: Vec::new(), ports: Vec::new() };
        for _ in 0..3 {
            let port = loop {
                let p = free_port(true);
                if !c.ports.contains(&p) {
                    break p;
                }
            };
            let dir = tempfile::tempdir().unwrap();
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.path().display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            c.nodes.push(or_explain(spawn_server(&args, dir.path())));
            c.dirs.push(dir);
            c.ports.push(port);
        }
        let start = Instant::now();
        for &p in &c.ports {
            while !TcpStream::connect(("127.0.0.1", p))
                .ok()
                .and_then(|s| ask(s, "PING").ok())
                .is_some_and(|r| r.contains("PONG"))
            {
                assert!(start.elapsed() < START_TIMEOUT, "cluster node {p} did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for p in &c.ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (apt-get install redis-tools)");
        assert!(out.status.success(), "redis-cli --cluster create: {out:?}");
        for &p in &c.ports {
            while !c.cli(p, &["cluster", "info"]).contains("cluster_state:ok") {
                assert!(start.elapsed() < START_TIMEOUT * 3, "cluster never reached state ok");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        c
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Runs `redis-cli -p PORT ARGS` against one node.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .expect("redis-cli (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Keys on each node (the data must spread over the masters).
    pub fn dbsizes(&self) -> Vec<u64> {
        self.ports.iter().map(|&p| self.cli(p, &["dbsize"]).parse().unwrap()).collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
