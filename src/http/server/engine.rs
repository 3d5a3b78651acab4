//! hyper's HTTP/1 server under our accept loops: per connection, the cap, timeouts and
//! drain; per request, Go's framing rules, the body read within its limits, then tide.

use super::bridge::{self, App};
use super::conns::{Conn, Conns, Timeouts, Verdict};
use super::rt::Io;
use crate::http::refusal::Refusal;
use crate::http::service::Head;
use async_std::channel;
use async_std::io::{ReadExt, WriteExt};
use async_std::net::{TcpListener, TcpStream};
use async_std::task;
use hyper::body::{Body as _, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, CONTENT_TYPE, EXPECT, HOST, HeaderValue, TRANSFER_ENCODING};
use std::convert::Infallible;
use std::future::Future;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The edge's bounds, from the command line.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A request head (request line and headers); beyond it, 431.
    pub max_header_bytes: usize,
    /// A request body as sent; beyond it, 413.
    pub max_body_bytes: usize,
    /// From the first byte of a head to its end.
    pub head_timeout: Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: Duration,
    /// Between requests on a keep-alive connection.
    pub idle_timeout: Duration,
    /// An answer the client takes nothing of for this long is abandoned.
    pub write_timeout: Duration,
    /// Open connections across all listeners.
    pub max_connections: usize,
    /// Request body bytes held at once, across all requests (read, queued or handled).
    pub max_body_bytes_in_flight: usize,
}

/// Connections told to close (to make room) that may still be open before accepting
/// pauses: each holds a descriptor beyond the cap, within the reserve.
const MAX_CLOSING: usize = 16;

/// The largest piece of an answer handed to hyper at once.
const FRAME: usize = 64 * 1024;

/// Go reads and drops up to this much of a body its handler did not read, so that the
/// connection can serve the next request.
const DISCARD_BYTES: u64 = 256 * 1024;

/// hyper's own header count bound (Go has none; its byte bound applies). Each slot costs
/// 32 bytes of a per-request allocation.
const MAX_HEADERS: usize = 1024;
/// How long a closing connection keeps reading what the client still sends, so that it
/// sees our answer rather than a reset (Go's `rstAvoidanceDelay` is 500 ms).
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1 << 20;

pub struct Ctx {
    pub limits: Limits,
    pub conns: Conns,
    pub app: App,
    builder: hyper::server::conn::http1::Builder,
    /// Body bytes held now (see `Limits::max_body_bytes_in_flight`).
    in_flight: AtomicUsize,
}

/// Body bytes reserved against the budget, given back when dropped (after the handler
/// that holds the body is done with it).
pub struct Budget {
    ctx: Arc<Ctx>,
    held: usize,
}

impl Budget {
    fn new(ctx: Arc<Ctx>) -> Budget {
        Budget { ctx, held: 0 }
    }

    /// Reserves `n` more bytes; false if the budget cannot take them.
    fn grow(&mut self, n: usize) -> bool {
        let max = self.ctx.limits.max_body_bytes_in_flight;
        let ok = self
            .ctx
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(n).filter(|&t| t <= max)
            })
            .is_ok();
        if ok {
            self.held += n;
        }
        ok
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        self.ctx.in_flight.fetch_sub(self.held, Ordering::SeqCst);
    }
}

impl Ctx {
    pub fn new(limits: Limits, conns: Conns, app: App) -> Ctx {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            // Our watchdog times heads and idle spells (hyper's timer would count the
            // idle spell before a head as part of it).
            .header_read_timeout(None)
            // Go's MaxHeaderBytes semantics: the bound plus 4 KiB of slack.
            .max_header_size(limits.max_header_bytes + 4096)
            .max_buf_size((limits.max_header_bytes + 4096 + 64 * 1024).max(8192))
            .max_headers(MAX_HEADERS)
            // A client that half-closes after sending a short body still gets its 400.
            .half_close(true);
        Ctx {
            limits,
            conns,
            app,
            builder,
            in_flight: AtomicUsize::new(0),
        }
    }
}

/// Accepts connections until `stop` closes, then drops the listener.
pub async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, stop: channel::Receiver<()>) {
    loop {
        // At the cap every admission tells one connection to close; until enough of
        // them have, new ones wait in the kernel's backlog, where they cost us no
        // descriptor, and the table (which `admit` walks) stays near the cap.
        while ctx.conns.len() > ctx.conns.cap() + MAX_CLOSING {
            if stop.is_closed() {
                return;
            }
            task::sleep(Duration::from_millis(1)).await;
        }
        // The stop signal first: under a flood, accept is always ready.
        let accepted = either(stop.recv(), listener.accept()).await;
        let stream = match accepted {
            Either::Right(Ok((s, _))) => s,
            Either::Right(Err(e)) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept failed: {e}");
                task::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Either::Left(_) => return,
        };
        match ctx.conns.admit() {
            Some(conn) => {
                task::spawn(drive(stream, ctx.clone(), conn));
            }
            None => {
                task::spawn(refuse(stream, ctx.conns.clone()));
            }
        }
        // Under a flood accept is always ready and this loop would never give the
        // executor back: the connections it was told to close would not get to close.
        task::yield_now().await;
    }
}

/// Every connection is answering a request and the table is full: say so and close (at
/// once, without a word, when too many are being refused already).
async fn refuse(mut stream: TcpStream, conns: Conns) {
    let Some(_slot) = conns.refuse_slot() else {
        return;
    };
    let refusal = Refusal::Connections { cap: conns.cap() };
    let msg = format!("{}\n", refusal.message());
    let status = hyper::StatusCode::from_u16(refusal.status())
        .unwrap_or(hyper::StatusCode::SERVICE_UNAVAILABLE);
    let answer = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{msg}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        msg.len()
    );
    let _ = async_std::future::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        linger(&stream).await;
    })
    .await;
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// The first of two futures to finish.
async fn either<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// A timer the watchdog polls.
type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

type Exchange = Pin<Box<dyn Future<Output = Result<hyper::Response<Outgoing>, Infallible>> + Send>>;

/// Drives one connection: hyper parses and writes, our watchdog closes it when idle or
/// slow for too long or when room is needed, and a drain lets its request finish first.
async fn drive(stream: TcpStream, ctx: Arc<Ctx>, conn: Arc<Conn>) {
    // Without this every keep-alive response waits for the peer's delayed ACK (~40 ms).
    let _ = stream.set_nodelay(true);
    let remote = stream.peer_addr().ok();
    let io = Io::new(stream.clone(), conn.clone());
    let (c, x) = (conn.clone(), ctx.clone());
    let service = hyper::service::service_fn(move |req| -> Exchange {
        Box::pin(exchange(req, x.clone(), c.clone(), remote))
    });
    let mut http = ctx.builder.serve_connection(io, service);
    let mut graceful = false;
    let mut timer: Option<(Instant, Sleep)> = None;
    let timeouts = Timeouts {
        idle: ctx.limits.idle_timeout,
        head: ctx.limits.head_timeout,
        write_stall: ctx.limits.write_timeout,
    };
    let end = std::future::poll_fn(|cx| {
        conn.register(cx.waker());
        if ctx.conns.draining() && !graceful {
            // No new request is read; one in flight is answered, then the connection closes.
            graceful = true;
            Pin::new(&mut http).graceful_shutdown();
        }
        // hyper first: the bytes it reads may start a head, which moves the deadline.
        if let Poll::Ready(r) = http.poll_without_shutdown(cx) {
            return Poll::Ready(r.map_err(|_| Closed::Error));
        }
        loop {
            match conn.verdict(&timeouts) {
                Verdict::Close(why) => return Poll::Ready(Err(Closed::Watchdog(why))),
                Verdict::Wait(Some(at)) => {
                    if timer.as_ref().is_none_or(|(t, _)| *t != at) {
                        let wait = at.saturating_duration_since(Instant::now());
                        timer = Some((at, Box::pin(task::sleep(wait))));
                    }
                    if let Some((_, t)) = &mut timer
                        && t.as_mut().poll(cx).is_ready()
                    {
                        timer = None;
                        continue;
                    }
                }
                Verdict::Wait(None) => timer = None,
            }
            return Poll::Pending;
        }
    })
    .await;
    drop(http);
    // Out of the table before lingering: a closing socket is no connection to keep.
    drop(conn);
    match end {
        // hyper is done (its own 400 or 431 included): the client may still be sending.
        Ok(()) | Err(Closed::Error) => {
            if let Some(_slot) = ctx.conns.linger_slot() {
                linger(&stream).await;
            }
        }
        // A head cut short, an idle spell or an eviction: nothing is owed, just close.
        Err(Closed::Watchdog(why)) => log::debug!(
            "closing connection from {}: {why}",
            remote.map_or_else(|| "-".into(), |a| a.to_string())
        ),
    }
}

/// Why a connection ended other than cleanly.
enum Closed {
    /// hyper gave up on it (a parse error it answered, a reset, a write error).
    Error,
    /// Our watchdog closed it.
    Watchdog(&'static str),
}

/// Half-closes, then reads (and drops) what the client still sends for a moment, so that
/// closing a socket with unread bytes does not reset the connection under our answer.
async fn linger(stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let mut s = stream.clone();
    let _ = async_std::future::timeout(LINGER, async {
        let mut buf = [0u8; 8192];
        let mut seen = 0;
        while seen < LINGER_BYTES {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen += n,
            }
        }
    })
    .await;
}

/// Marks the connection idle again when the response body is dropped: written, or the
/// connection gone.
pub(super) struct IdleOnDrop(Arc<Conn>);

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        self.0.idle();
    }
}

/// One request: checks of the head, the plan from the service, the body, the answer.
async fn exchange(
    req: hyper::Request<Incoming>,
    ctx: Arc<Ctx>,
    conn: Arc<Conn>,
    remote: Option<SocketAddr>,
) -> Result<hyper::Response<Outgoing>, Infallible> {
    conn.busy();
    let idle = IdleOnDrop(conn);
    let (parts, mut incoming) = req.into_parts();
    if let Some(refusal) = framing(&parts) {
        return Ok(plain(refusal, idle));
    }
    let head = Head {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        // Header bytes that are not UTF-8 are kept as replacement characters: every
        // header we read is ASCII, and Go accepts such requests.
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        remote: remote.map(|a| a.to_string()),
    };
    let plan = bridge::plan(&ctx.app, &head);
    let mut budget = Budget::new(ctx.clone());
    let body = if plan.wants_body {
        idle.0.reading();
        match read_body(&mut incoming, &ctx.limits, Some(&mut budget), &idle.0).await {
            Ok(b) => b,
            Err(refusal) => return Ok(plain(refusal, idle)),
        }
    } else {
        // A small body the route does not take is read and dropped, as Go does, so the
        // connection serves the next request; a larger one (or one the client waits for
        // a 100 Continue to send) is not read, and hyper closes after the answer.
        let small = incoming
            .size_hint()
            .exact()
            .is_some_and(|n| n <= DISCARD_BYTES);
        if small && !parts.headers.contains_key(EXPECT) {
            let discard = Limits {
                max_body_bytes: DISCARD_BYTES as usize,
                ..ctx.limits.clone()
            };
            idle.0.reading();
            if let Err(refusal) = read_body(&mut incoming, &discard, None, &idle.0).await {
                return Ok(plain(refusal, idle));
            }
        }
        drop(incoming);
        Vec::new()
    };
    idle.0.handling();
    Ok(bridge::respond(&ctx.app, head, body, plan, budget, idle).await)
}

/// The framing rules where Go's net/http is stricter than hyper; `None` if the head is
/// fine. (hyper itself refuses differing `Content-Length`s, signs, lists, transfer
/// codings other than chunked, and `Transfer-Encoding` in HTTP/1.0, with a 400.)
fn framing(parts: &hyper::http::request::Parts) -> Option<Refusal> {
    let hosts = parts.headers.get_all(HOST).iter().count();
    if parts.version == hyper::Version::HTTP_11 && hosts == 0 {
        return Some(Refusal::NoHost);
    }
    if hosts > 1 {
        return Some(Refusal::ManyHosts);
    }
    let te: Vec<_> = parts.headers.get_all(TRANSFER_ENCODING).iter().collect();
    if !te.is_empty()
        && (te.len() > 1
            || !te[0]
                .as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"chunked"))
    {
        return Some(Refusal::TransferCoding);
    }
    // Go's rule: an Expect header without the 100-continue token is a 417.
    if let Some(e) = parts.headers.get(EXPECT)
        && !e
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"100-continue"))
    {
        return Some(Refusal::Expectation);
    }
    None
}

/// Reads a body within the size and time bounds: 413 if its `Content-Length` or what
/// arrives exceeds the bound (checked before reading and while reading), 408 when the
/// client is too slow, 400 when it ends early.
async fn read_body(
    body: &mut Incoming,
    limits: &Limits,
    mut budget: Option<&mut Budget>,
    conn: &Conn,
) -> Result<Vec<u8>, Refusal> {
    let max = limits.max_body_bytes;
    let too_large = || Refusal::BodyTooLarge { max };
    let announced = body.size_hint().exact();
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    // Bytes are reserved as they arrive (a body announced but never sent holds nothing).
    // A known length gets its buffer once its bytes start to exceed a first 64 KiB, at
    // its exact size, so that it never doubles. Without a budget, the body is dropped as
    // it comes: nothing is kept.
    let mut out = Vec::new();
    let mut seen = 0usize;
    let read = async {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
        {
            conn.progressed();
            let frame = frame.map_err(|e| Refusal::BodyIncomplete(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > max {
                    return Err(too_large());
                }
                if let Some(b) = budget.as_deref_mut() {
                    if !b.grow(data.len()) {
                        return Err(Refusal::BodiesInFlight);
                    }
                    if out.capacity() < seen {
                        let want = match announced {
                            Some(n) if seen > 64 * 1024 => n as usize,
                            Some(n) => (n as usize).min(64 * 1024),
                            None => seen,
                        };
                        out.reserve_exact(want.max(seen) - out.len());
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
        Ok(())
    };
    match async_std::future::timeout(limits.body_timeout, read).await {
        Ok(Ok(())) => Ok(out),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Refusal::BodyTimeout(limits.body_timeout)),
    }
}

/// A short plain-text refusal that closes the connection (the rest of the request may
/// still be on its way, and cannot be trusted to frame the next one).
fn plain(refusal: Refusal, idle: IdleOnDrop) -> hyper::Response<Outgoing> {
    let msg = refusal.message();
    let mut res = hyper::Response::new(Outgoing::bytes(format!("{msg}\n").into_bytes(), idle));
    *res.status_mut() =
        hyper::StatusCode::from_u16(refusal.status()).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    res
}

/// A response body as hyper sends it: read from tide's body, or bytes of our own.
pub struct Outgoing {
    source: Source,
    len: Option<u64>,
    _idle: IdleOnDrop,
}

enum Source {
    Reader(Box<dyn async_std::io::BufRead + Unpin + Send + Sync>),
    Bytes(Option<Bytes>),
}

impl Outgoing {
    fn bytes(b: Vec<u8>, idle: IdleOnDrop) -> Outgoing {
        Outgoing {
            len: Some(b.len() as u64),
            source: Source::Bytes(Some(Bytes::from(b))),
            _idle: idle,
        }
    }

    pub(super) fn reader(
        r: Box<dyn async_std::io::BufRead + Unpin + Send + Sync>,
        len: Option<u64>,
        idle: IdleOnDrop,
    ) -> Outgoing {
        Outgoing {
            source: Source::Reader(r),
            len,
            _idle: idle,
        }
    }
}

impl hyper::body::Body for Outgoing {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        // hyper asks for more only when it has written what it had: progress.
        this._idle.0.writing();
        match &mut this.source {
            Source::Bytes(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Source::Reader(r) => {
                let chunk = match Pin::new(&mut **r).poll_fill_buf(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok([])) => return Poll::Ready(None),
                    // At most 64 KiB a frame: an answer held in memory whole would go to
                    // hyper in one piece, copied twice, and its progress seen only once.
                    Poll::Ready(Ok(buf)) => Bytes::copy_from_slice(&buf[..buf.len().min(FRAME)]),
                };
                Pin::new(&mut **r).consume(chunk.len());
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
