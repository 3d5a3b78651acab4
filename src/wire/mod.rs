//! Bytes in and out: push bodies (text format, protobuf, gzip and snappy) to the model's families, and the store's series to scrape bytes.

pub mod compress;
pub(crate) mod expose;
pub mod parse;
pub mod proto;

use std::fmt;

/// Why a push body could not be read: the wire layer's one error type.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A text body that is not the text format (where and why).
    Text(parse::ParseError),
    /// A protobuf body that does not decode (where and why).
    Protobuf(proto::DecodeError),
    /// A gzip or snappy body that does not decompress, in Go's words.
    Corrupt(&'static str),
    /// A gzip or snappy body larger than `limit` bytes once decompressed.
    TooBig { limit: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Text(e) => e.fmt(f),
            Error::Protobuf(e) => e.fmt(f),
            Error::Corrupt(why) => f.write_str(why),
            Error::TooBig { limit } => write!(
                f,
                "request body too large once decompressed: more than {limit} bytes (--push.max-decompressed-bytes)"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<parse::ParseError> for Error {
    fn from(e: parse::ParseError) -> Self {
        Error::Text(e)
    }
}

impl From<proto::DecodeError> for Error {
    fn from(e: proto::DecodeError) -> Self {
        Error::Protobuf(e)
    }
}
