//! The deployment metadata key: the layout version and the seed every client of
//! one Redis uses, agreed on at start and re-asserted with every round trip.

use std::sync::Arc;

use redis::{Cmd, Value};

use super::conn::Conn;
use super::{GROUPS, SPLIT_LOAD};
use crate::hash::Seed;

/// The deployment metadata key: layout version and seed.
pub const META_KEY: &str = "logdedup:meta";
/// The layout this version writes; [`META_KEY`] must name the same one.
pub(super) const LAYOUT: &str = "logdedup-layout-v2";
/// See `lua/meta.lua`.
pub(super) const ASSERT: &str = include_str!("lua/meta.lua");

/// Reads the deployment metadata, storing ours first if there is none.
pub(super) async fn agree_meta(conn: &mut Conn, local: Option<Seed>) -> redis::RedisResult<String> {
    let get = redis::cmd("GET").arg(META_KEY).clone();
    if let Some(v) = conn.query::<Option<String>>(&get).await? {
        return Ok(v);
    }
    let mine = meta_value(&local.unwrap_or_else(Seed::random));
    // SET NX: of several instances starting together exactly one value wins, and
    // everyone reads that one back.
    let set = redis::cmd("SET").arg(META_KEY).arg(&mine).arg("NX").clone();
    conn.query::<Option<String>>(&set).await?;
    Ok(conn.query::<Option<String>>(&get).await?.unwrap_or(mine))
}

pub(super) fn meta_value(seed: &Seed) -> String {
    let hex: String = seed.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("{LAYOUT} groups={GROUPS} load={SPLIT_LOAD} seed={hex}")
}

/// The seed in a metadata value, if the value names this layout.
pub(super) fn parse_meta(v: &str) -> Option<Seed> {
    let mut parts = v.split_whitespace();
    if parts.next()? != LAYOUT
        || parts.next()? != format!("groups={GROUPS}")
        || parts.next()? != format!("load={SPLIT_LOAD}")
    {
        return None;
    }
    let hex = parts.next()?.strip_prefix("seed=")?;
    if hex.len() != 2 * Seed::LEN || parts.next().is_some() {
        return None;
    }
    let mut b = [0u8; Seed::LEN];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Seed::from_bytes(&b))
}

/// What re-asserting the metadata found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Asserted {
    /// The agreed value.
    Same,
    /// Nothing: the server lost it (a restart without persistence, a flush); it
    /// holds the agreed value again now.
    Restored,
    /// Another value: another deployment took the key meanwhile.
    Foreign(String),
}

/// The re-assertion call for the agreed `value` (routed by the key on a cluster).
pub(super) fn assert_cmd(sha: &str, value: &str) -> Arc<Cmd> {
    Arc::new(redis::cmd("EVALSHA").arg(sha).arg(1).arg(META_KEY).arg(value).clone())
}

/// The reply of [`assert_cmd`]; `None` if it is not one.
pub(super) fn parse_asserted(v: &Value) -> Option<Asserted> {
    match v {
        Value::Int(1) => Some(Asserted::Same),
        Value::Int(0) => Some(Asserted::Restored),
        Value::BulkString(b) => Some(Asserted::Foreign(String::from_utf8_lossy(b).into_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_roundtrip() {
        let s = Seed { bloom: 1, k0: u64::MAX, k1: 0x0123_4567_89ab_cdef };
        let v = meta_value(&s);
        assert!(v.starts_with("logdedup-layout-v2 groups=256 load=200 seed="));
        assert_eq!(parse_meta(&v), Some(s));
        // The layout before integer containers is refused.
        assert_eq!(parse_meta(&v.replace("layout-v2", "layout-v1")), None);
        assert_eq!(parse_meta("logdedup-layout-v2 groups=256 load=200 seed=00"), None);
        assert_eq!(parse_meta(&v.replace("groups=256", "groups=64")), None);
        assert_eq!(parse_meta(&format!("{v} extra")), None);
    }

    #[test]
    fn asserted_replies() {
        assert_eq!(parse_asserted(&Value::Int(1)), Some(Asserted::Same));
        assert_eq!(parse_asserted(&Value::Int(0)), Some(Asserted::Restored));
        assert_eq!(
            parse_asserted(&Value::BulkString(b"x".to_vec())),
            Some(Asserted::Foreign("x".into()))
        );
        assert_eq!(parse_asserted(&Value::Nil), None);
    }
}
