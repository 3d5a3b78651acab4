//! Why a change could not be made durable or the file not written: the persistence layer's one error type.

use crate::model::grouping::GroupingError;
use crate::store::PushError;
use crate::wire;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A failure of the persistence layer. The `io::Error` is kept (shared, so that every
/// change a failure decides can carry it).
#[derive(Debug, Clone)]
pub enum Error {
    /// The persistence file could not be written at start, so no journal follows it yet.
    NotAnchored,
    /// The journal could not be started.
    Start(Arc<io::Error>),
    /// A journal write failed.
    Write(Arc<io::Error>),
    /// A snapshot could not be written to this file.
    Snapshot(PathBuf, Arc<io::Error>),
    /// The journal stopped before deciding the change.
    Closed,
    /// A failure while an earlier one was being healed: the first, then the second.
    Then(Box<Error>, Box<Error>),
    /// A recorded group's key is not a grouping key.
    Key(GroupingError),
    /// A recorded family (named) does not decode.
    Family(String, wire::Error),
    /// A recorded group is inconsistent with itself or the store.
    Refused(PushError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotAnchored => f.write_str("the persistence file could not be written at start"),
            Error::Start(e) => write!(f, "could not start the persistence journal: {e}"),
            Error::Write(e) => write!(f, "could not write the persistence journal: {e}"),
            Error::Snapshot(path, e) => write!(f, "could not write {}: {e}", path.display()),
            Error::Closed => f.write_str("the journal is closed"),
            Error::Then(first, then) => write!(f, "{first}; then {then}"),
            Error::Key(e) => e.fmt(f),
            Error::Family(name, e) => write!(f, "family {name:?}: {e}"),
            Error::Refused(PushError::Inconsistent(errors)) => f.write_str(&errors.join("; ")),
            Error::Refused(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

/// Two failures are the same when they read the same (`io::Error` has no equality): the
/// journal merges the ranges of changes that failed for the same reason.
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.to_string() == other.to_string()
    }
}
