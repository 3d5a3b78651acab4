//! The data model every layer shares: metric types and values, label blocks, rendered series, grouping keys, and Go's spellings of names, floats, base64, JSON strings and times.

pub(crate) mod base64;
pub(crate) mod float;
pub(crate) mod gospell;
pub(crate) mod grouping;
pub(crate) mod metric;
pub(crate) mod names;
pub(crate) mod series;
