//! Request handling without a web framework: a plain request in, a plain response out.

use crate::api;
use crate::expose;
use crate::grouping::{GroupingError, GroupingKey};
use crate::metric::Series;
use crate::parse;
use crate::route::{self, Resolved, Route, RouteConfig};
use crate::selfmetrics;
use crate::store::{Mode, Store};
use std::sync::Arc;
use std::time::SystemTime;

pub struct Request {
    pub method: String,
    /// Still percent-encoded, as sent.
    pub path: String,
    pub query: Option<String>,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub remote: Option<String>,
}

/// Whether a `Content-Type` selects delimited protobuf, by the Go gateway's rule: the media
/// type (any case) with `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`.
fn is_protobuf(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    let params: Vec<(&str, &str)> = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    media.eq_ignore_ascii_case("application/vnd.google.protobuf")
        && params.contains(&("proto", "io.prometheus.client.MetricFamily"))
        && params.contains(&("encoding", "delimited"))
}

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
}

impl Response {
    fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// Go's `http.Error`: plain text, nosniff, message plus newline.
    fn error(status: u16, msg: &str) -> Response {
        Response {
            status,
            headers: vec![
                ("Content-Type", "text/plain; charset=utf-8".into()),
                ("X-Content-Type-Options", "nosniff".into()),
            ],
            body: Body::Bytes(format!("{msg}\n").into_bytes()),
        }
    }

    fn text(status: u16, msg: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Bytes(msg.as_bytes().to_vec()),
        }
    }

    fn json(body: String) -> Response {
        let mut headers = cors_headers();
        headers.push(("Content-Type", "application/json".into()));
        Response {
            status: 200,
            headers,
            body: Body::Bytes(body.into_bytes()),
        }
    }
}

fn cors_headers() -> Vec<(&'static str, String)> {
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

/// Settings the handlers need, taken from the command line.
pub struct Settings {
    pub routes: RouteConfig,
    pub disable_consistency_check: bool,
    /// Flag name (without `--`) and value, for `/api/v1/status`.
    pub flags: Vec<(String, String)>,
}

pub struct Service {
    pub store: Arc<Store>,
    settings: Settings,
    start: SystemTime,
    quit: Box<dyn Fn() + Send + Sync>,
}

impl Service {
    pub fn new(
        store: Arc<Store>,
        settings: Settings,
        quit: Box<dyn Fn() + Send + Sync>,
    ) -> Service {
        Service {
            store,
            settings,
            start: SystemTime::now(),
            quit,
        }
    }

    pub fn handle(&self, req: Request) -> Response {
        let resolved = route::resolve(
            &req.method,
            &req.path,
            req.query.as_deref(),
            &self.settings.routes,
        );
        match resolved {
            Resolved::Route(r) => self.route(r, req),
            Resolved::Redirect { status, location } => Response {
                status,
                headers: vec![("Location", location)],
                body: Body::Empty,
            },
            Resolved::Options(allow) => Response {
                status: 200,
                headers: vec![("Allow", allow.into())],
                body: Body::Empty,
            },
            Resolved::MethodNotAllowed { allow } => {
                let mut r = Response::error(405, "Method Not Allowed");
                r.headers.push(("Allow", allow.into()));
                r
            }
            Resolved::QuitWrongMethod => Response::error(405, "Only POST or PUT requests allowed."),
            Resolved::NotFound => Response::error(404, "404 page not found"),
            Resolved::BadRequest => Response {
                status: 400,
                headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
                body: Body::Bytes(b"400 Bad Request".to_vec()),
            },
        }
    }

    fn route(&self, route: Route, req: Request) -> Response {
        match route {
            Route::Push {
                job,
                job_base64,
                rest,
            } => self.push(&req, &job, job_base64, &rest),
            Route::Scrape => {
                let chunks = self.store.expose(selfmetrics::gather());
                Response {
                    status: 200,
                    headers: vec![("Content-Type", expose::TEXT_CONTENT_TYPE.into())],
                    body: Body::Pieces(chunks),
                }
            }
            Route::Healthy | Route::Ready => Response::text(200, "OK"),
            Route::ApiMetrics => Response::json(api::metrics_json(&self.store.groups())),
            Route::ApiStatus => {
                let build = vec![
                    ("branch", "HEAD".to_string()),
                    ("buildDate", String::new()),
                    ("buildUser", String::new()),
                    ("goVersion", "rust".to_string()),
                    (
                        "revision",
                        option_env!("PUSHGATEWAY_REVISION")
                            .unwrap_or("unknown")
                            .to_string(),
                    ),
                    ("version", selfmetrics::VERSION.to_string()),
                ];
                Response::json(api::status_json(&build, &self.settings.flags, self.start))
            }
            Route::ApiOptions => Response {
                status: 200,
                headers: cors_headers(),
                body: Body::Empty,
            },
            Route::Wipe => {
                self.store.wipe();
                Response::empty(202)
            }
            Route::Quit if self.settings.routes.enable_lifecycle => {
                (self.quit)();
                Response::text(200, "Requesting termination... Goodbye!")
            }
            Route::Quit => Response::error(403, "Lifecycle API is not enabled."),
        }
    }

    fn push(&self, req: &Request, job: &[u8], job_base64: bool, rest: &[u8]) -> Response {
        let now = SystemTime::now();
        let key = match GroupingKey::parse(job, job_base64, rest) {
            Ok(k) => k,
            // No group can have such a key, so there is nothing to delete (as in Go).
            Err(GroupingError::NotUtf8 { .. }) if req.method == "DELETE" => {
                return Response::empty(202);
            }
            Err(e) => {
                log::debug!("bad grouping key in {} {}: {e}", req.method, req.path);
                return Response::error(400, &e.to_string());
            }
        };
        if req.method == "DELETE" {
            self.store.delete(&key);
            return Response::empty(202);
        }
        // Refuse what we cannot read yet rather than storing it as text by mistake.
        if req.content_encoding.as_deref() == Some("gzip") {
            return Response::error(400, "gzip-compressed push bodies are not supported yet");
        }
        if req.content_type.as_deref().is_some_and(is_protobuf) {
            return Response::error(400, "protobuf push bodies are not supported yet");
        }
        let families = match parse::parse_text(&req.body) {
            Ok(f) => f,
            Err(e) => {
                log::debug!(
                    "failed to parse text: {e} (source {})",
                    req.remote.as_deref().unwrap_or("-")
                );
                return Response::error(400, &e.to_string());
            }
        };
        let mode = if req.method == "PUT" {
            Mode::Replace
        } else {
            Mode::Add
        };
        let result = self.store.push(&key, families, mode, now);
        if let Err(e) = &result {
            log::error!(
                "push rejected: method={} source={} err={e}",
                req.method,
                req.remote.as_deref().unwrap_or("-")
            );
        }
        match (result, self.settings.disable_consistency_check) {
            // Without the check the Go gateway acknowledges before applying, so the
            // outcome never reaches the client.
            (_, true) => Response::empty(202),
            (Ok(()), false) => Response::empty(200),
            (Err(e), false) => Response::error(400, &e.to_string()),
        }
    }
}
