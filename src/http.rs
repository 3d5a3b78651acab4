//! The HTTP edge, the only module that knows tide: listeners, our own accept loop with
//! TCP_NODELAY, and the translation between tide and `service` requests and responses.

use crate::expose::ProtobufStream;
use crate::metric::Series;
use crate::service::{Body, Request, Response, Service};
use async_std::io::{BufRead, Read};
use async_std::net::{TcpListener, TcpStream};
use async_std::task;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Counts requests being handled, so that shutdown can wait for them.
#[derive(Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    closing: AtomicBool,
}

impl Activity {
    /// Stops taking new connections and waits (up to `limit`) for requests in flight.
    pub async fn drain(&self, limit: Duration) {
        self.closing.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + limit;
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            task::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Binds every address; `:PORT` means all interfaces (IPv6 and IPv4 where possible).
pub async fn bind(addresses: &[String]) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    for a in addresses {
        let listener = match a.strip_prefix(':') {
            Some(port) => match TcpListener::bind(format!("[::]:{port}")).await {
                Ok(l) => Ok(l),
                Err(_) => TcpListener::bind(format!("0.0.0.0:{port}")).await,
            },
            None => TcpListener::bind(a.as_str()).await,
        };
        listeners.push(listener.map_err(|e| format!("listen tcp {a}: {e}"))?);
    }
    Ok(listeners)
}

/// Runs the accept loops until the process ends.
pub fn serve(listeners: Vec<TcpListener>, service: Arc<Service>, activity: Arc<Activity>) {
    let mut app = tide::with_state(State {
        service,
        activity: activity.clone(),
    });
    app.at("").all(endpoint);
    app.at("*").all(endpoint);
    for listener in listeners {
        let app = app.clone();
        let activity = activity.clone();
        task::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        log::warn!("accept failed: {e}");
                        task::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if activity.closing.load(Ordering::SeqCst) {
                    continue;
                }
                task::spawn(connection(app.clone(), stream));
            }
        });
    }
}

async fn connection(app: tide::Server<State>, stream: TcpStream) {
    // Without this every keep-alive response waits for the peer's delayed ACK (~40 ms).
    let _ = stream.set_nodelay(true);
    let remote = stream.peer_addr().ok();
    let result = async_h1::accept(stream, |mut req| {
        let app = app.clone();
        if let Some(addr) = remote {
            req.set_peer_addr(Some(addr));
        }
        async move { app.respond(req).await }
    })
    .await;
    if let Err(e) = result {
        log::debug!("connection error: {e}");
    }
}

#[derive(Clone)]
struct State {
    service: Arc<Service>,
    activity: Arc<Activity>,
}

/// One request being handled, from its arrival until its response body has been written
/// (the guard travels inside the body, which async-h1 drops after sending it). Shutdown
/// waits for these, so that `/-/quit` and requests in flight still get their answers.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct Guarded<R> {
    inner: R,
    _guard: InFlight,
}

impl<R: BufRead + Unpin> Read for Guarded<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<R: BufRead + Unpin> BufRead for Guarded<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.inner).consume(amt)
    }
}

async fn endpoint(mut req: tide::Request<State>) -> tide::Result {
    let guard = InFlight::new(req.state().activity.clone());
    handle(&mut req, guard).await
}

async fn handle(req: &mut tide::Request<State>, guard: InFlight) -> tide::Result {
    let body = match req.body_bytes().await {
        Ok(b) => b,
        Err(e) => {
            let mut res = tide::Response::new(400);
            res.set_body(format!("{e}\n"));
            return Ok(res);
        }
    };
    let url = req.url();
    let request = Request {
        method: req.method().to_string(),
        path: url.path().to_string(),
        query: url.query().map(str::to_string),
        body,
        headers: req
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.last().as_str().to_string(),
                )
            })
            .collect(),
        remote: req.peer_addr().map(str::to_string),
    };
    let service = req.state().service.clone();
    // Handlers are synchronous. Most take microseconds and run in place; a large body (a
    // big push, or one to decompress) runs on the blocking pool instead, so it cannot stall
    // the executor threads that serve every other connection. (Sending every request
    // there costs a thread hop per request and, through per-thread malloc arenas, memory.)
    let response = if request.body.len() > 256 * 1024 || service.may_block(&request) {
        task::spawn_blocking(move || service.handle(request)).await
    } else {
        service.handle(request)
    };
    Ok(to_tide(response, guard))
}

fn to_tide(r: Response, guard: InFlight) -> tide::Response {
    let mut res = tide::Response::new(r.status);
    for (name, value) in &r.headers {
        res.insert_header(*name, value.as_str());
    }
    let empty = matches!(r.body, Body::Empty);
    let body = match r.body {
        Body::Empty => guarded(async_std::io::empty(), guard, Some(0)),
        Body::Bytes(b) => {
            let len = b.len();
            guarded(async_std::io::Cursor::new(b), guard, Some(len))
        }
        Body::Protobuf(stream) => {
            // The length is not known before the last family is encoded: chunked.
            let reader = ProtobufReader {
                stream,
                buf: Vec::new(),
                pos: 0,
            };
            let reader = async_std::io::BufReader::with_capacity(64 * 1024, reader);
            guarded(reader, guard, None)
        }
        Body::Pieces(pieces) => {
            let len = pieces.iter().map(|p| p.lines().len()).sum();
            let reader = PieceReader {
                pieces,
                index: 0,
                offset: 0,
            };
            let reader = async_std::io::BufReader::with_capacity(64 * 1024, reader);
            guarded(reader, guard, Some(len))
        }
    };
    let typed = res.header("content-type").is_some();
    res.set_body(body);
    if !typed && empty {
        // An empty answer has no type (as upstream's); a body's default type is tide's.
        res.remove_header("content-type");
    }
    res
}

fn guarded<R: BufRead + Unpin + Send + Sync + 'static>(
    inner: R,
    guard: InFlight,
    len: Option<usize>,
) -> tide::Body {
    tide::Body::from_reader(
        Guarded {
            inner,
            _guard: guard,
        },
        len,
    )
}

/// Encodes a protobuf scrape one family at a time as the client reads it.
struct ProtobufReader {
    stream: ProtobufStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ProtobufReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        while this.pos == this.buf.len() {
            this.buf.clear();
            this.pos = 0;
            if !this.stream.next_family(&mut this.buf) {
                return Poll::Ready(Ok(0));
            }
        }
        let n = (this.buf.len() - this.pos).min(out.len());
        out[..n].copy_from_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(n))
    }
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
