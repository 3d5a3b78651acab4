//! Every refusal the gateway answers with, at the edge or in a handler, and the one place that gives each its status code and message.
//!
//! The lower layers' errors (`GroupingError`, `wire::Error`, `PushError`,
//! `persist::Error`) come here whole; `status` and `message` are the only code that turns
//! an error into a status code and text, so none is chosen twice. The edge writes them as
//! its own plain answers (`server::engine`), the handlers through `Response::from`.
//! (The bridge's bare 500s are not refusals: tide failing us, which does not happen.)

use crate::model::gospell::go_duration;
use crate::model::grouping::GroupingError;
use crate::persist;
use crate::store::PushError;
use crate::wire;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Refusal {
    // The edge, before a handler runs (each but `QueueFull` closes its connection;
    // `Connections` is answered before HTTP is read at all).
    /// An HTTP/1.1 request without `Host`.
    NoHost,
    /// More than one `Host`.
    ManyHosts,
    /// A transfer coding other than one `chunked`.
    TransferCoding,
    /// An `Expect` other than `100-continue`.
    Expectation,
    /// A body larger than `--push.max-body-bytes` as sent.
    BodyTooLarge {
        max: usize,
    },
    /// A body that ended before its length (hyper's words).
    BodyIncomplete(String),
    /// A body not sent within `--web.read-body-timeout`.
    BodyTimeout(Duration),
    /// Too many body bytes held at once (`--push.max-body-bytes-in-flight`).
    BodiesInFlight,
    /// Every connection is busy and the table is full.
    Connections {
        cap: usize,
    },
    /// The worker pool's queue is full.
    QueueFull,

    // Routing.
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    /// `/-/quit` with a method other than PUT or POST.
    QuitWrongMethod,
    /// A path that cannot be percent-decoded: Go's bare `400 Bad Request`.
    BadPath,
    LifecycleDisabled,
    NoSuchGroup,

    // Handlers.
    Grouping(GroupingError),
    Body(wire::Error),
    /// A refused push, with how many of its errors to list.
    Push(PushError, usize),
    /// A change applied but not made durable.
    NotPersisted(persist::Error),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoHost
            | Refusal::ManyHosts
            | Refusal::BodyIncomplete(_)
            | Refusal::BadPath
            | Refusal::Grouping(_) => 400,
            Refusal::TransferCoding => 501,
            Refusal::Expectation => 417,
            Refusal::BodyTooLarge { .. } | Refusal::Body(wire::Error::TooBig { .. }) => 413,
            Refusal::Body(_) => 400,
            Refusal::BodyTimeout(_) => 408,
            Refusal::BodiesInFlight
            | Refusal::Connections { .. }
            | Refusal::QueueFull
            | Refusal::Push(PushError::Closed, _) => 503,
            Refusal::Push(..) => 400,
            Refusal::NotFound | Refusal::NoSuchGroup => 404,
            Refusal::MethodNotAllowed { .. } | Refusal::QuitWrongMethod => 405,
            Refusal::LifecycleDisabled => 403,
            Refusal::NotPersisted(_) => 500,
        }
    }

    /// The answer's text (without the newline Go's `http.Error` adds).
    pub fn message(&self) -> String {
        match self {
            Refusal::NoHost => "missing required Host header".into(),
            Refusal::ManyHosts => "too many Host headers".into(),
            Refusal::TransferCoding => "Unsupported transfer encoding".into(),
            Refusal::Expectation => "Expectation Failed".into(),
            Refusal::BodyTooLarge { max } => {
                format!("request body too large: more than {max} bytes (--push.max-body-bytes)")
            }
            Refusal::BodyIncomplete(e) => format!(
                "request body incomplete: {e} (shorter than its Content-Length, or a bad chunk)"
            ),
            Refusal::BodyTimeout(d) => format!(
                "timed out reading the request body (--web.read-body-timeout={})",
                go_duration(*d)
            ),
            Refusal::BodiesInFlight => "too many request bodies in flight (--push.max-body-bytes-in-flight); try again shortly".into(),
            Refusal::Connections { cap } => {
                format!("too many open connections (--web.max-connections={cap})")
            }
            Refusal::QueueFull => {
                "too many requests waiting to be handled; try again shortly".into()
            }
            Refusal::NotFound => "404 page not found".into(),
            Refusal::MethodNotAllowed { .. } => "Method Not Allowed".into(),
            Refusal::QuitWrongMethod => "Only POST or PUT requests allowed.".into(),
            Refusal::BadPath => "400 Bad Request".into(),
            Refusal::LifecycleDisabled => "Lifecycle API is not enabled.".into(),
            Refusal::NoSuchGroup => "no such group".into(),
            Refusal::Grouping(e) => e.to_string(),
            Refusal::Body(e) => e.to_string(),
            Refusal::Push(e, max_lines) => e.message(*max_lines),
            Refusal::NotPersisted(e) => format!("applied, but not persisted: {e}"),
        }
    }
}

impl From<GroupingError> for Refusal {
    fn from(e: GroupingError) -> Self {
        Refusal::Grouping(e)
    }
}

impl From<wire::Error> for Refusal {
    fn from(e: wire::Error) -> Self {
        Refusal::Body(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_too_big_once_decompressed_is_a_413_and_a_damaged_one_a_400() {
        let big = Refusal::from(wire::Error::TooBig { limit: 10 });
        assert_eq!(big.status(), 413);
        assert_eq!(
            big.message(),
            "request body too large once decompressed: more than 10 bytes (--push.max-decompressed-bytes)"
        );
        let bad = Refusal::from(wire::Error::Corrupt("gzip: invalid header"));
        assert_eq!(
            (bad.status(), bad.message().as_str()),
            (400, "gzip: invalid header")
        );
    }

    #[test]
    fn a_closed_store_is_a_503_and_a_refused_push_a_400() {
        assert_eq!(Refusal::Push(PushError::Closed, 20).status(), 503);
        assert_eq!(Refusal::Push(PushError::Timestamps, 20).status(), 400);
    }
}
