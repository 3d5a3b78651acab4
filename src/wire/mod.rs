//! Bytes in and out: push bodies (text format, protobuf, gzip and snappy) to the model's families, and the store's series to scrape bytes.

pub mod compress;
pub(crate) mod expose;
pub mod parse;
pub mod proto;
