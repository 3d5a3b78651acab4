//! Request handling without a web framework: a plain request in, a plain response out.

mod negotiate;
mod request;
mod response;

use negotiate::*;
pub use request::*;
pub use response::*;

use crate::http::api;
use crate::http::refusal::Refusal;
use crate::http::route::{self, Resolved, Route, RouteConfig};
use crate::http::ui;
use crate::model::grouping::{GroupingError, GroupingKey};
use crate::model::names::Escaping;
use crate::persist;
use crate::store::selfmetrics::{self, Instruments};
use crate::store::{Mode, PushError, Store};
use crate::wire;
use crate::wire::compress;
use crate::wire::expose;
use crate::wire::parse;
use crate::wire::proto;
use std::sync::Arc;
use std::time::SystemTime;

/// Bodies larger than this, or compressed, or of unknown length go to the heavy lane.
const LIGHT_BODY: u64 = 64 * 1024;

/// Settings the handlers need, taken from the command line.
pub struct Settings {
    pub routes: RouteConfig,
    pub disable_consistency_check: bool,
    /// `--push.enable-utf8-names`.
    pub utf8_names: bool,
    /// Flag name (without `--`) and value, for `/api/v1/status`.
    pub flags: Vec<(String, String)>,
    pub limits: PushLimits,
}

/// Bounds on what one push may hold and what its refusal may say.
#[derive(Clone, Copy, Debug)]
pub struct PushLimits {
    /// Bytes of a body once decompressed (`--push.max-decompressed-bytes`).
    pub max_decompressed: usize,
    /// Series in one push (`--push.max-series`).
    pub max_series: usize,
    /// Error lines in one answer (`--push.max-error-lines`).
    pub max_error_lines: usize,
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits {
            max_decompressed: compress::MAX_DECOMPRESSED,
            max_series: 100_000,
            max_error_lines: 20,
        }
    }
}

pub struct Service {
    pub store: Arc<Store>,
    settings: Settings,
    start: SystemTime,
    quit: Box<dyn Fn() + Send + Sync>,
    instruments: Instruments,
    settle: Option<Settle>,
}

pub use crate::persist::journal::{DurableFuture, Settle};

/// The `handler` label the Go gateway counts a route's requests under, if it counts them.
fn handler_label(route: &Route, method: &str) -> Option<&'static str> {
    Some(match route {
        Route::Push { .. } if method == "DELETE" => "delete",
        Route::Push { .. } => "push",
        Route::Healthy => "healthy",
        Route::Ready => "ready",
        Route::ApiMetrics => "api/v1/metrics",
        Route::ApiStatus => "api/v1/status",
        Route::ApiOptions => "api/v1/options",
        Route::Wipe => "wipe",
        Route::Scrape | Route::Quit => return None,
        Route::Ui => "status",
        Route::UiGroups | Route::UiGroup { .. } => return None,
    })
}

/// The Go client's approximate request size: URL, method, protocol, headers (without
/// `Host`), host and `Content-Length`.
fn approximate_size(req: &Request) -> usize {
    let url = req.path.len() + req.query.as_ref().map_or(0, |q| q.len() + 1);
    let headers: usize = req
        .headers
        .iter()
        .filter(|(n, _)| n != "host")
        .map(|(n, v)| n.len() + v.len())
        .sum();
    let host = req.header("host").map_or(0, str::len);
    url + req.method.len() + "HTTP/1.1".len() + headers + host + req.body.len()
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
            instruments: Instruments::default(),
            settle: None,
        }
    }

    /// Changes are answered only once `settle` says they are durable.
    pub fn with_settle(mut self, settle: Option<Settle>) -> Service {
        self.settle = settle;
        self
    }

    /// Decides from the head alone whether the body is read and where the handler runs:
    /// the route and method are resolved before any body byte is read.
    pub fn plan(&self, head: &Head) -> Plan {
        let route = route::resolve(
            &head.method,
            &head.path,
            head.query.as_deref(),
            &self.settings.routes,
        );
        let encoded = matches!(head.header("content-encoding"), Some("gzip" | "snappy"));
        let length = head
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let change = matches!(head.method.as_str(), "PUT" | "POST");
        let (wants_body, lane) = match &route {
            Resolved::Route(Route::Push { .. }) if head.method == "DELETE" => {
                (false, Some(Lane::Light))
            }
            Resolved::Route(Route::Push { .. }) => {
                let small = length.is_some_and(|n| n <= LIGHT_BODY) && !encoded;
                (change, Some(if small { Lane::Light } else { Lane::Heavy }))
            }
            Resolved::Route(
                Route::Scrape
                | Route::ApiMetrics
                | Route::UiGroups
                | Route::UiGroup { .. }
                | Route::Wipe,
            ) => (false, Some(Lane::Heavy)),
            _ => (false, None),
        };
        // As Go, a compressed body is decompressed before routing (outside the JSON API),
        // so one that cannot be is a 400 whatever the route: it must be read for that.
        let api = format!("{}/api/v1", self.settings.routes.prefix);
        if encoded && !wants_body && !head.path.starts_with(&api) {
            return Plan {
                wants_body: true,
                lane: Some(Lane::Heavy),
            };
        }
        Plan { wants_body, lane }
    }

    /// `ok`, to be sent once the changes made since change `before` are durable (see
    /// `settle`).
    fn settled(&self, before: u64, mut ok: Response) -> Response {
        if self.settle.is_some() {
            ok.pending = Some(Pending {
                after: before,
                upto: self.store.seq(),
                count: None,
                push: None,
            });
        }
        ok
    }

    /// What a pending answer becomes: itself once its changes are durable, a 500 naming
    /// the problem if they could not be made so (they are applied, and the next snapshot
    /// will hold them).
    fn outcome(&self, mut r: Response, result: Result<(), persist::Error>) -> Response {
        let Some(p) = r.pending.take() else {
            return r;
        };
        if let Err(e) = result {
            r = Refusal::NotPersisted(e).into();
        }
        if let Some((h, method)) = &p.count {
            self.instruments.request(h, method, r.status);
        }
        if let Some((started, size)) = p.push {
            let method = p.count.as_ref().map_or("", |(_, m)| m.as_str());
            self.instruments
                .push(method, started.elapsed().as_secs_f64(), size);
        }
        r
    }

    /// The final answer to a request whose answer may be pending (`handle_deferred`),
    /// waiting without holding a thread.
    pub fn settle(self: &Arc<Self>, r: Response) -> impl std::future::Future<Output = Response> {
        let wait = match (&r.pending, &self.settle) {
            (Some(p), Some(s)) => Some(s(p.after, p.upto)),
            _ => None,
        };
        let service = self.clone();
        async move {
            let result = match wait {
                Some(w) => w.await,
                None => Ok(()),
            };
            service.outcome(r, result)
        }
    }

    /// Answers a request; in durable mode a change's answer comes back pending, to be
    /// finished by `settle` once the journal has it on disk.
    pub fn handle_deferred(&self, mut req: Request) -> Response {
        // Like the Go gateway, decompress a body before routing (outside the JSON API),
        // so a body that cannot be decompressed is a 400 whatever the route.
        let api = format!("{}/api/v1", self.settings.routes.prefix);
        if !req.path.starts_with(&api) {
            let decoded = match req.header("content-encoding") {
                Some("gzip") => Some(compress::gunzip(
                    &req.body,
                    self.settings.limits.max_decompressed,
                )),
                Some("snappy") => Some(compress::unsnappy(
                    &req.body,
                    self.settings.limits.max_decompressed,
                )),
                _ => None,
            };
            match decoded {
                Some(Ok(body)) => req.body = body,
                Some(Err(e)) => return Refusal::Body(e).into(),
                None => {}
            }
        }
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
                pending: None,
            },
            Resolved::Options(allow) => Response {
                status: 200,
                headers: vec![("Allow", allow.into())],
                body: Body::Empty,
                pending: None,
            },
            Resolved::MethodNotAllowed { allow } => Refusal::MethodNotAllowed { allow }.into(),
            Resolved::QuitWrongMethod => Refusal::QuitWrongMethod.into(),
            Resolved::NotFound => Refusal::NotFound.into(),
            Resolved::BadRequest => Refusal::BadPath.into(),
        }
    }

    /// Answers a resolved route, counting it as the Go gateway's instrumentation does.
    fn route(&self, route: Route, req: Request) -> Response {
        let started = std::time::Instant::now();
        let handler = handler_label(&route, &req.method);
        let is_push = handler == Some("push");
        let size = if is_push { approximate_size(&req) } else { 0 };
        let method = req.method.clone();
        let mut response = self.answer(route, req).unwrap_or_else(Response::from);
        // A pending answer is counted once its outcome is known (`outcome`).
        if let Some(p) = &mut response.pending {
            p.count = handler.map(|h| (h, method));
            p.push = is_push.then_some((started, size));
            return response;
        }
        if let Some(h) = handler {
            self.instruments.request(h, &method, response.status);
        }
        if is_push {
            self.instruments
                .push(&method, started.elapsed().as_secs_f64(), size);
        }
        response
    }

    fn answer(&self, route: Route, req: Request) -> Result<Response, Refusal> {
        Ok(match route {
            Route::Push {
                job,
                job_base64,
                rest,
            } => self.push(&req, &job, job_base64, &rest)?,
            Route::Scrape => self.scrape(&req),
            Route::Healthy | Route::Ready => Response::text(200, "OK"),
            Route::ApiMetrics => Response::json(api::metrics_json(
                &self.store.groups(),
                self.settings.utf8_names,
            )),
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
                pending: None,
            },
            Route::Wipe => {
                let before = if self.settle.is_some() {
                    self.store.seq()
                } else {
                    0
                };
                self.store.wipe().map_err(|e| self.refused(e))?;
                self.settled(before, Response::empty(202))
            }
            Route::Quit if self.settings.routes.enable_lifecycle => {
                (self.quit)();
                Response::text(200, "Requesting termination... Goodbye!")
            }
            Route::Quit => return Err(Refusal::LifecycleDisabled),
            Route::Ui => Response {
                status: 200,
                headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
                body: Body::Bytes(ui::PAGE.as_bytes().to_vec()),
                pending: None,
            },
            Route::UiGroups => Response::json(ui::groups_json(
                &self.store.groups(),
                self.settings.utf8_names,
            )),
            Route::UiGroup {
                job,
                job_base64,
                rest,
            } => {
                let utf8 = self.settings.utf8_names;
                let group = GroupingKey::parse(&job, job_base64, &rest, utf8)
                    .ok()
                    .and_then(|k| self.store.group(&k));
                let group = group.ok_or(Refusal::NoSuchGroup)?;
                Response::json(ui::group_json(&group, utf8))
            }
        })
    }

    /// A refused push, listing as many of its errors as the flag allows (a DELETE or
    /// wipe is only ever refused by a closed store: 503).
    fn refused(&self, e: PushError) -> Refusal {
        Refusal::Push(e, self.settings.limits.max_error_lines)
    }

    fn scrape(&self, req: &Request) -> Response {
        let (own, pushed) = (selfmetrics::gather(&self.instruments), self.store.scrape());
        let (protobuf, asked) = negotiate(req.header("accept"));
        let content_type = if protobuf {
            proto::CONTENT_TYPE
        } else {
            expose::TEXT_CONTENT_TYPE
        };
        // With UTF-8 names on, names are escaped as asked (underscores by default) and
        // the scheme is named in the Content-Type, as upstream 1.11 does; without, the
        // answer is 1.5.1's.
        let escaping = self
            .settings
            .utf8_names
            .then(|| asked.unwrap_or(Escaping::Underscores));
        let content_type = match escaping {
            Some(s) => format!("{content_type}; escaping={}", s.as_str()),
            None => content_type.to_string(),
        };
        let mut headers = vec![("Content-Type", content_type)];
        let gzip = accepts_gzip(req.header("accept-encoding"));
        let body = match (protobuf, gzip) {
            // Encoded here, on a worker thread, rather than family by family while it is
            // sent, which would be CPU work on the executor.
            (true, false) => {
                let mut stream = expose::protobuf(own, pushed, escaping);
                let mut out = Vec::new();
                while stream.next_family(&mut out) {}
                Body::Bytes(out)
            }
            (false, false) => Body::Pieces(expose::text(own, pushed, escaping)),
            (true, true) => {
                let mut stream = expose::protobuf(own, pushed, escaping);
                Body::Bytes(compress::gzip_from(|buf| stream.next_family(buf)))
            }
            (false, true) => {
                let pieces = expose::text(own, pushed, escaping);
                Body::Bytes(compress::gzip_pieces(
                    pieces.iter().map(|p| p.lines().as_bytes()),
                ))
            }
        };
        if gzip {
            headers.push(("Content-Encoding", "gzip".into()));
        }
        Response {
            status: 200,
            headers,
            body,
            pending: None,
        }
    }

    fn push(
        &self,
        req: &Request,
        job: &[u8],
        job_base64: bool,
        rest: &[u8],
    ) -> Result<Response, Refusal> {
        let now = SystemTime::now();
        let key = match GroupingKey::parse(job, job_base64, rest, self.settings.utf8_names) {
            Ok(k) => k,
            // No group can have such a key, so there is nothing to delete (as in Go).
            Err(GroupingError::NotUtf8 { .. }) if req.method == "DELETE" => {
                return Ok(Response::empty(202));
            }
            Err(e) => {
                log::debug!("bad grouping key in {} {}: {e}", req.method, req.path);
                return Err(e.into());
            }
        };
        // Only read in durable mode: the number of the last change before this one.
        let before = if self.settle.is_some() {
            self.store.seq()
        } else {
            0
        };
        if req.method == "DELETE" {
            self.store.delete(&key).map_err(|e| self.refused(e))?;
            return Ok(self.settled(before, Response::empty(202)));
        }
        let parsed = if req.header("content-type").is_some_and(is_protobuf) {
            match proto::decode_delimited_limited(
                &req.body,
                self.settings.utf8_names,
                self.settings.limits.max_series,
            ) {
                Ok(d) if d.invalid.is_empty() => Ok(d.families),
                Ok(d) => Err(self.store.refuse(&key, d.invalid, now)),
                Err(e) => return Err(wire::Error::from(e).into()),
            }
        } else {
            match parse::parse_text_limited(
                &req.body,
                self.settings.utf8_names,
                self.settings.limits.max_series,
            ) {
                Ok(f) => Ok(f),
                Err(e) => {
                    log::debug!(
                        "failed to parse text: {e} (source {})",
                        req.remote.as_deref().unwrap_or("-")
                    );
                    return Err(wire::Error::from(e).into());
                }
            }
        };
        let mode = if req.method == "PUT" {
            Mode::Replace
        } else {
            Mode::Add
        };
        let result = parsed.and_then(|families| self.store.push(&key, families, mode, now));
        if let Err(e) = &result
            && *e != PushError::Closed
        {
            log::error!(
                "push rejected: method={} source={} err={}",
                req.method,
                req.remote.as_deref().unwrap_or("-"),
                e.message(self.settings.limits.max_error_lines)
            );
        }
        let response = match (result, self.settings.disable_consistency_check) {
            (Err(PushError::Closed), _) => return Err(self.refused(PushError::Closed)),
            // Without the check the Go gateway acknowledges before applying, so the
            // outcome never reaches the client.
            (_, true) => Response::empty(202),
            (Ok(()), false) => Response::empty(200),
            (Err(e), false) => self.refused(e).into(),
        };
        Ok(self.settled(before, response))
    }
}
