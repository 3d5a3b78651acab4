//! An answer as the handlers give it: status, headers, body, and whether it waits for the disk.

use crate::http::refusal::Refusal;
use crate::model::metric::Series;

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// The scrape: rendered text shared with the store.
    Pieces(Vec<Series>),
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// Durable mode: the answer stands once the changes it covers are on disk
    /// (`Service::settle`); until then it is not sent.
    pub pending: Option<Pending>,
}

/// A change's answer waiting for the journal: the changes after `after` up to `upto`,
/// and what to count once the outcome is known.
pub struct Pending {
    pub(super) after: u64,
    pub(super) upto: u64,
    pub(super) count: Option<(&'static str, String)>,
    pub(super) push: Option<(std::time::Instant, usize)>,
}

impl Response {
    pub(super) fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            pending: None,
        }
    }

    pub(super) fn text(status: u16, msg: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Bytes(msg.as_bytes().to_vec()),
            pending: None,
        }
    }

    pub(super) fn json(body: String) -> Response {
        let mut headers = cors_headers();
        headers.push(("Content-Type", "application/json".into()));
        Response {
            status: 200,
            headers,
            body: Body::Bytes(body.into_bytes()),
            pending: None,
        }
    }
}

pub(super) fn cors_headers() -> Vec<(&'static str, String)> {
    vec![
        (
            "Access-Control-Allow-Headers",
            "Accept, Authorization, Content-Type, Origin".into(),
        ),
        (
            "Access-Control-Allow-Methods",
            "GET, POST, DELETE, OPTIONS".into(),
        ),
        ("Access-Control-Allow-Origin", "*".into()),
        ("Access-Control-Expose-Headers", "Date".into()),
        (
            "Cache-Control",
            "no-cache, no-store, must-revalidate".into(),
        ),
    ]
}

/// A refusal's answer: Go's `http.Error` (plain text, nosniff, the message and a newline),
/// with `Allow` on a 405; a path that cannot be decoded gets Go's bare `400 Bad Request`.
impl From<Refusal> for Response {
    fn from(r: Refusal) -> Response {
        let status = r.status();
        if let Refusal::BadPath = r {
            return Response::text(status, &r.message());
        }
        let mut headers = vec![
            ("Content-Type", "text/plain; charset=utf-8".into()),
            ("X-Content-Type-Options", "nosniff".into()),
        ];
        if let Refusal::MethodNotAllowed { allow } = r {
            headers.push(("Allow", allow.into()));
        }
        Response {
            status,
            headers,
            body: Body::Bytes(format!("{}\n", r.message()).into_bytes()),
            pending: None,
        }
    }
}
