//! The Redis guards the tests use: [`RedisServer`] (one server on a unix socket in
//! a temp dir, optionally also on TCP or TLS) and [`RedisCluster`] (three masters
//! on 127.0.0.1), each killed on `Drop`. They live in the benchmark harness, which
//! starts its own servers the same way. Nothing relies on a server that happens
//! to be running; without `redis-server` the tests fail and say why.

pub use logdedup_bench::redis_server::{RedisCluster, RedisServer};
