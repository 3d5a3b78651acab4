//! The Pushgateway as a library: what the `pushgateway` binary runs, and what tests and fuzz targets drive in-process.

pub mod api;
pub mod base64;
pub mod cli;
pub mod compress;
pub mod datafile;
pub mod expose;
pub mod float;
pub mod gob;
pub mod gospell;
pub mod grouping;
pub mod http;
pub mod journal;
pub mod logger;
pub mod metric;
pub mod names;
pub mod parse;
pub mod persist;
pub mod proto;
pub mod route;
pub mod selfmetrics;
pub mod series;
pub mod service;
pub mod store;
pub mod ui;
