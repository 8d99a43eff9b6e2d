//! Where and how to connect: the `--exact` URL, the connection (one server or a
//! cluster), sending one command, and the URL as it may be shown.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError, ServerErrorKind, Value,
};

use crate::error::ConfigError;

/// Where to connect, from the `--exact` URL.
pub(super) enum Target {
    /// One server: `redis://`, `rediss://`, `redis+unix://`, `unix://`.
    Single(Box<redis::Client>),
    /// A cluster: the seed nodes' URLs (`redis://h:p`, with credentials and TLS).
    Cluster(Vec<String>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The client's own Debug hides its password.
            Target::Single(c) => f.debug_tuple("Single").field(c).finish(),
            Target::Cluster(nodes) => {
                let shown: Vec<String> = nodes.iter().map(|n| redact(n)).collect();
                f.debug_tuple("Cluster").field(&shown).finish()
            }
        }
    }
}

impl Target {
    pub(super) fn parse(url: &str) -> Result<Target, ConfigError> {
        let bad = |why: String| ConfigError::new("--exact", format!("'{}': {why}", redact(url)));
        let cluster = [("redis+cluster://", "redis://"), ("rediss+cluster://", "rediss://")];
        for (scheme, node_scheme) in cluster {
            let Some(rest) = url.strip_prefix(scheme) else { continue };
            // `[user:pass@]h1:p1,h2:p2[/0]`: the credentials apply to every node;
            // a cluster has only database 0.
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            if !path.is_empty() && path != "0" {
                return Err(bad("a Redis Cluster has only database 0".into()));
            }
            let (userinfo, hosts) = match authority.rsplit_once('@') {
                Some((u, h)) => (format!("{u}@"), h),
                None => (String::new(), authority),
            };
            let nodes: Vec<String> = hosts
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| format!("{node_scheme}{userinfo}{h}"))
                .collect();
            if nodes.is_empty() {
                return Err(
                    bad("no cluster nodes (expected redis+cluster://h1:p1,h2:p2,…)".into()),
                );
            }
            for n in &nodes {
                n.as_str().into_connection_info().map_err(|e| bad(e.to_string()))?;
            }
            return Ok(Target::Cluster(nodes));
        }
        redis::Client::open(url)
            .map(|c| Target::Single(Box::new(c)))
            .map_err(|e| bad(e.to_string()))
    }
}

/// The connection: cloned into each concurrent call (both kinds are handles).
#[derive(Clone)]
pub(super) enum Conn {
    /// Reconnects in the background after a dropped connection; only the calls in
    /// flight fail. (A bare multiplexed connection would stay broken.)
    Single(ConnectionManager),
    /// Routes each call by its first key's slot and follows MOVED/ASK.
    Cluster(ClusterConnection),
}

impl Conn {
    pub(super) async fn open(target: &Target, timeout: Duration) -> redis::RedisResult<Conn> {
        match target {
            Target::Single(client) => {
                // The response timeout is set explicitly: the library's default fired
                // under load with no fault. Reconnect backoff: 25 ms doubling to 1 s.
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(timeout))
                    .set_connection_timeout(Some(timeout))
                    .set_number_of_retries(4)
                    .set_min_delay(Duration::from_millis(25))
                    .set_max_delay(Duration::from_secs(1))
                    .set_exponent_base(2.0);
                let m = ConnectionManager::new_with_config((**client).clone(), config).await?;
                Ok(Conn::Single(m))
            }
            Target::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(500)
                    .build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    pub(super) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> redis::RedisResult<T> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => cmd.query_async(c).await,
        }
    }
}

/// Query parameters whose values are shown as given (the `redis` crate reads
/// `db`, `protocol` and `user`); every other value is hidden, whatever its name
/// or spelling (`pass`, `password`, a percent-encoded name): a secret shown in a
/// log is worse than a setting hidden.
const SHOWN_PARAMS: &[&str] = &["db", "protocol", "user"];

/// The URL with every secret hidden, for messages: the password of the user
/// info (`user:***@`; user info without a `:` is hidden whole) and the value of
/// every query parameter not in [`SHOWN_PARAMS`].
pub fn redact(url: &str) -> String {
    hide(url).0
}

/// The secrets [`redact`] hides, to scrub from messages that may quote them
/// (the client library's errors may name a node's URL as given).
pub(super) fn secrets(url: &str) -> Vec<String> {
    hide(url).1
}

/// [`redact`] and [`secrets`] at once.
fn hide(url: &str) -> (String, Vec<String>) {
    let (scheme, rest) = url.find("://").map_or(("", url), |i| url.split_at(i + 3));
    let mut shown = scheme.to_string();
    let mut secrets = Vec::new();
    // The user info ends at the last `@`; a password not percent-encoded may
    // hold `/`, `?` or `@`. An `@` after a `?` belongs to the query when a `/`
    // comes before the `?` (a path: `redis+unix:///s?pass=a@b`), else to a
    // password holding a `?`; either way nothing between is shown.
    let q = rest.find('?').unwrap_or(rest.len());
    let at = rest.rfind('@').filter(|&at| at < q || !rest[..q].contains('/'));
    let tail = match at {
        Some(at) => {
            let info = &rest[..at];
            match info.split_once(':') {
                Some((user, pass)) => {
                    shown.push_str(user);
                    shown.push_str(":***@");
                    secrets.push(pass.to_string());
                }
                None => {
                    shown.push_str("***@");
                    secrets.push(info.to_string());
                }
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    let Some((path, query)) = tail.split_once('?') else {
        shown.push_str(tail);
        return (shown, secrets);
    };
    shown.push_str(path);
    shown.push('?');
    for (i, param) in query.split('&').enumerate() {
        if i > 0 {
            shown.push('&');
        }
        match param.split_once('=') {
            Some((k, _)) if SHOWN_PARAMS.contains(&k) => shown.push_str(param),
            Some((k, v)) => {
                shown.push_str(k);
                shown.push_str("=***");
                secrets.push(v.to_string());
            }
            None => {
                shown.push_str("***");
                secrets.push(param.to_string());
            }
        }
    }
    secrets.retain(|s| !s.is_empty());
    (shown, secrets)
}

/// Why connecting failed, for the user (secrets scrubbed): a reply that does not
/// parse as RESP means something other than Redis listens there, where the
/// client's own words are a parser's (`Parse error at 1 Unexpected '84'` for an
/// HTTP server).
pub(super) fn connect_failure(e: &redis::RedisError, secrets: &[String]) -> String {
    match e.kind() {
        redis::ErrorKind::Parse => {
            "the server did not answer as Redis does (is this the address of a Redis server?)"
                .to_string()
        }
        _ => scrub(&e.to_string(), secrets),
    }
}

/// `text` with every one of `secrets` replaced by `***`.
pub(super) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// Sends one command. For `EVALSHA` (`script` is its text) the command is sent
/// again as `EVAL` with the text when the server does not know the script yet
/// (first use, or restarted since); `EVAL` also caches it.
pub(super) async fn send_value(
    conn: &mut Conn,
    cmd: &Cmd,
    script: Option<&'static str>,
) -> redis::RedisResult<Value> {
    match (conn.query::<Value>(cmd).await, script) {
        (Err(e), Some(text)) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(text);
            for a in cmd.args_iter().skip(2) {
                if let redis::Arg::Simple(bytes) = a {
                    eval.arg(bytes);
                }
            }
            conn.query::<Value>(&eval).await
        }
        (r, _) => r,
    }
}

/// Whether a failed call may have failed on the way (and so is worth resending).
pub(super) fn resendable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || e.kind() == ErrorKind::ClusterConnectionNotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(matches!(Target::parse("redis://127.0.0.1:6379/2"), Ok(Target::Single(_))));
        assert!(matches!(Target::parse("redis+unix:///tmp/r.sock"), Ok(Target::Single(_))));
        assert!(matches!(Target::parse("unix:///tmp/r.sock"), Ok(Target::Single(_))));
        assert!(matches!(Target::parse("rediss://h:1/0"), Ok(Target::Single(_))));
        match Target::parse("redis+cluster://u:p@h1:1,h2:2") {
            Ok(Target::Cluster(n)) => assert_eq!(n, ["redis://u:p@h1:1", "redis://u:p@h2:2"]),
            other => panic!("{other:?}"),
        }
        match Target::parse("rediss+cluster://h1:1/0") {
            Ok(Target::Cluster(n)) => assert_eq!(n, ["rediss://h1:1"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(Target::parse("redis+cluster://").unwrap_err().flag, "--exact");
        assert_eq!(Target::parse("redis+cluster://h:1/3").unwrap_err().flag, "--exact");
        assert_eq!(Target::parse("redis://h:notaport").unwrap_err().flag, "--exact");
    }

    #[test]
    fn redaction() {
        let cases = [
            ("redis://u:secret@h:1/0", "redis://u:***@h:1/0"),
            ("redis://:secret@h:1", "redis://:***@h:1"),
            ("redis://secret@h:1", "redis://***@h:1"),
            ("redis+unix:///tmp/x", "redis+unix:///tmp/x"),
            ("redis+unix:///tmp/x?db=2&pass=secret", "redis+unix:///tmp/x?db=2&pass=***"),
            ("unix:///tmp/x?user=u&password=secret", "unix:///tmp/x?user=u&password=***"),
            ("redis+unix:///tmp/x?pass=se@cret", "redis+unix:///tmp/x?pass=***"),
            ("redis+unix:///tmp/x?p%61ss=secret&db=1", "redis+unix:///tmp/x?p%61ss=***&db=1"),
            ("redis+unix:///tmp/x?secret", "redis+unix:///tmp/x?***"),
            ("redis://h:1/0?protocol=resp3&pass=secret", "redis://h:1/0?protocol=resp3&pass=***"),
            ("redis://u:se/cret@h:1/0", "redis://u:***@h:1/0"),
            ("redis://u:se?cret@h:1/0", "redis://u:***@h:1/0"),
            ("redis://u:se@cret@h:1", "redis://u:***@h:1"),
            ("redis+cluster://u:secret@a:1,b:2", "redis+cluster://u:***@a:1,b:2"),
            ("rediss://u:secret@h:1/#insecure", "rediss://u:***@h:1/#insecure"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
            let hidden = secrets(url);
            if url.contains("cret") {
                assert!(!redact(url).contains("cret"), "{url}");
                assert!(hidden.iter().any(|s| s.contains("cret")), "{url}: {hidden:?}");
                assert!(!scrub(&format!("x {url} y"), &hidden).contains("cret"), "{url}");
            } else {
                assert!(hidden.is_empty(), "{url}: {hidden:?}");
            }
        }
        let t = Target::parse("redis+cluster://u:secret@a:1,b:2").unwrap();
        assert!(!format!("{t:?}").contains("secret"));
    }
}
