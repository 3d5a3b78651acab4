//! The Pushgateway as a library: what the `pushgateway` binary runs, and what tests and fuzz targets drive in-process.
//!
//! Each folder is a layer, bottom up: `model`, `store`, `wire`, `persist`, `http`; a
//! module uses its own layer or one below (`tests/it/layers.rs` checks every import).

pub mod cli;
pub mod http;
pub mod logger;
pub(crate) mod model;
pub mod persist;
pub mod store;
pub mod wire;
