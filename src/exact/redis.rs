//! The Redis exact tier (`--exact redis://…`): not built yet.

use super::ExactTier;
use crate::config::RedisConfig;
use crate::error::{ConfigError, Result};
use crate::hash::Seed;

/// Connects to Redis and agrees on the deployment seed.
pub fn connect(cfg: &RedisConfig, _local: Option<Seed>) -> Result<(Box<dyn ExactTier>, Seed)> {
    Err(ConfigError::new(
        "--exact",
        format!("'{}': the Redis tier is not available in this build", cfg.url),
    )
    .into())
}
