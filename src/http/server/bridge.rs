//! The tide side of the edge, the only code that knows tide: the app and its one
//! endpoint, our `Listener` (hyper under tide), and the translation between tide's
//! requests and responses and `service`'s.

use super::engine::{self, Budget, Ctx, IdleOnDrop, Outgoing};
use super::pool::{Lanes, Pool};
use crate::http::refusal::Refusal;
use crate::http::service::{Body, Head, Plan, Request, Response, Service};
use crate::model::metric::Series;
use async_std::channel;
use async_std::io::Read;
use async_std::net::TcpListener;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone)]
pub struct State {
    service: Arc<Service>,
    pool: Arc<Pool>,
}

/// The tide server: every method and path reaches `endpoint`, which hands the request to
/// `service` (routing is the Go router's, in `route`).
pub type App = tide::Server<State>;

pub fn app(service: Arc<Service>, pool: Arc<Pool>) -> App {
    let mut app = tide::with_state(State { service, pool });
    app.at("").all(endpoint);
    app.at("*").all(endpoint);
    app
}

/// What the service wants before the body is read.
pub fn plan(app: &App, head: &Head) -> Plan {
    app.state().service.plan(head)
}

/// The request as `service` sees it, carried through tide in an extension: tide's own
/// request types cannot hold header bytes that are not ASCII, nor methods it does not know.
struct Carried(Option<(Request, Plan, Budget)>);

/// Answers one request through tide and turns the answer into hyper's.
pub async fn respond(
    app: &App,
    head: Head,
    body: Vec<u8>,
    plan: Plan,
    budget: Budget,
    idle: IdleOnDrop,
) -> hyper::Response<Outgoing> {
    // tide routes on this URL; the real path travels with the request (`route` decides).
    // Parsed once: every request would otherwise parse the same constant.
    static URL: std::sync::OnceLock<tide::http::Url> = std::sync::OnceLock::new();
    let url = URL
        .get_or_init(|| tide::http::Url::parse("http://localhost/").expect("a constant URL parses"))
        .clone();
    let method = head.method.parse().unwrap_or(tide::http::Method::Get);
    let mut req = tide::http::Request::new(method, url);
    req.ext_mut()
        .insert(Carried(Some((Request { head, body }, plan, budget))));
    let mut res: tide::http::Response = match app.respond(req).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = tide::http::Response::new(500);
            r.set_body(format!("{e}\n"));
            r
        }
    };
    let mut headers = hyper::HeaderMap::new();
    let ours = res.ext_mut().remove::<Headers>().map(|h| h.0);
    let pairs: Vec<(String, String)> = match ours {
        Some(h) => h.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
        // tide's own answer (none of ours): its headers.
        None => res
            .iter()
            .flat_map(|(n, vs)| {
                vs.iter()
                    .map(|v| (n.to_string(), v.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect(),
    };
    for (name, value) in pairs {
        // Values may hold bytes beyond ASCII (a query copied into `Location`, as Go
        // copies it); hyper takes those. Control bytes cannot be sent: such a header is
        // dropped rather than answered wrongly.
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    // Taken after the headers are read: taking it gives tide's response a default type.
    let body = res.take_body();
    let len = body.len().map(|n| n as u64);
    let mut out = hyper::Response::new(Outgoing::reader(Box::new(body), len, idle));
    *out.status_mut() = hyper::StatusCode::from_u16(res.status().into())
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    *out.headers_mut() = headers;
    out
}

async fn endpoint(mut req: tide::Request<State>) -> tide::Result {
    let Some((request, plan, budget)) = req.ext_mut::<Carried>().and_then(|c| c.0.take()) else {
        return Ok(tide::Response::new(500));
    };
    let state = req.state().clone();
    let response = match plan.lane {
        // Answers that take microseconds and no lock: no thread hop.
        None => {
            let r = state.service.handle_deferred(request);
            drop(budget);
            r
        }
        Some(lane) => {
            let service = state.service.clone();
            let lane = match lane {
                crate::http::service::Lane::Light => Lanes::Light,
                crate::http::service::Lane::Heavy => Lanes::Heavy,
            };
            // The body, and its share of the budget, go with the job and are given back
            // when it is done (or skipped, if its client is gone).
            let job = move || {
                let r = service.handle_deferred(request);
                drop(budget);
                r
            };
            match state.pool.run(lane, job).await {
                Ok(r) => r,
                Err(_) => Refusal::QueueFull.into(),
            }
        }
    };
    // In durable mode a change's answer waits here for the journal, holding no thread.
    let response = state.service.settle(response).await;
    Ok(to_tide(response))
}

/// The service's headers, carried past tide: tide's header type takes ASCII only (and
/// panics on anything else), while a `Location` may hold a client's non-ASCII query.
#[derive(Clone)]
struct Headers(Vec<(&'static str, String)>);

fn to_tide(r: Response) -> tide::Response {
    let mut res = tide::Response::new(r.status);
    let body = match r.body {
        Body::Empty => tide::Body::empty(),
        Body::Bytes(b) => tide::Body::from_bytes(b),
        Body::Pieces(pieces) => {
            let len = pieces.iter().map(|p| p.lines().len()).sum();
            let reader = PieceReader {
                pieces,
                index: 0,
                offset: 0,
            };
            let reader = async_std::io::BufReader::with_capacity(64 * 1024, reader);
            tide::Body::from_reader(reader, Some(len))
        }
    };
    res.set_body(body);
    // Only these reach the client: an answer without a type (empty) has none, as
    // upstream's, whatever tide's body would default to.
    res.insert_ext(Headers(r.headers));
    res
}

/// Streams the scrape's pieces without first copying them into one buffer.
struct PieceReader {
    pieces: Vec<Series>,
    index: usize,
    offset: usize,
}

impl Read for PieceReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        // Fill the whole buffer: series are small, and one read per series is slow.
        let mut n = 0;
        while n < buf.len() {
            let Some(piece) = this.pieces.get(this.index) else {
                break;
            };
            let rest = &piece.lines().as_bytes()[this.offset..];
            let take = rest.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&rest[..take]);
            n += take;
            this.offset += take;
            if this.offset == piece.lines().len() {
                this.index += 1;
                this.offset = 0;
            }
        }
        Poll::Ready(Ok(n))
    }
}

/// hyper under tide: tide's `Listener` extension point, serving our sockets with
/// `engine` instead of tide's own (async-h1) engine.
pub struct Edge {
    listeners: Vec<TcpListener>,
    limits: engine::Limits,
    conns: super::conns::Conns,
    stop: channel::Receiver<()>,
    ctx: Option<Arc<Ctx>>,
}

impl Edge {
    pub fn new(
        listeners: Vec<TcpListener>,
        limits: engine::Limits,
        conns: super::conns::Conns,
        stop: channel::Receiver<()>,
    ) -> Edge {
        Edge {
            listeners,
            limits,
            conns,
            stop,
            ctx: None,
        }
    }
}

impl fmt::Debug for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Edge({} listeners)", self.listeners.len())
    }
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addrs: Vec<String> = self
            .listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .collect();
        write!(f, "http://{}", addrs.join(", http://"))
    }
}

type IoFuture<'a> = Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + 'a>>;

// The trait is declared with `#[async_trait]`; these are the signatures it expands to.

// Written out rather than with `#[async_trait]` (what tide uses), to need no macro crate.
impl tide::listener::Listener<State> for Edge {
    fn bind<'s, 'a>(&'s mut self, app: App) -> IoFuture<'a>
    where
        's: 'a,
        Self: 'a,
    {
        let ctx = Ctx::new(self.limits.clone(), self.conns.clone(), app);
        self.ctx = Some(Arc::new(ctx));
        Box::pin(async { Ok(()) })
    }

    fn accept<'s, 'a>(&'s mut self) -> IoFuture<'a>
    where
        's: 'a,
        Self: 'a,
    {
        Box::pin(async move {
            let ctx = self
                .ctx
                .clone()
                .ok_or_else(|| std::io::Error::other("accept before bind"))?;
            let loops: Vec<_> = self
                .listeners
                .drain(..)
                .map(|l| {
                    async_std::task::spawn(engine::accept_loop(l, ctx.clone(), self.stop.clone()))
                })
                .collect();
            for l in loops {
                l.await;
            }
            Ok(())
        })
    }

    fn info(&self) -> Vec<tide::listener::ListenInfo> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| tide::listener::ListenInfo::new(format!("http://{a}"), "tcp".into(), false))
            .collect()
    }
}

impl tide::listener::ToListener<State> for Edge {
    type Listener = Edge;

    fn to_listener(self) -> std::io::Result<Edge> {
        Ok(self)
    }
}
