//! A private `redis-server` for the Redis tools, on a unix socket in a temporary
//! folder, with persistence off, killed when the guard drops.
//!
//! The harness never uses a server it did not start: results must not depend on
//! whatever else a shared server holds, and a benchmark must not load someone
//! else's instance.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a fresh server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; dropping it kills the process.
pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` (from `PATH`) and waits until it answers `PING`.
    pub fn start() -> Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("logdedup-bench-redis")
            .tempdir()
            .map_err(Error::file(std::env::temp_dir()))?;
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::program("redis-server"))?;
        let server = RedisServer { child, socket, _dir: dir };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if server.socket.exists() && server.connection().is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(Error::RedisStart(START_TIMEOUT));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// The URL clients connect with.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
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
                m.insert("redis_used_memory_bytes".into(), v.trim().parse().unwrap_or(0.0));
            }
        }
        m.insert("redis_keys".into(), keys as f64);
        Ok(m)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
