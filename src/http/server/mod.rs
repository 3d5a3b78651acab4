//! The HTTP edge: sockets, hyper's HTTP/1 engine under tide, the connection table, the
//! worker pool, and the limits and timeouts that bound every request.
//!
//! Nothing outside this module knows tide or hyper: `service` takes and returns plain
//! values.

mod bridge;
mod conns;
mod engine;
mod pool;
mod rt;
mod socket;

pub use engine::Limits;
pub use socket::{bind, raise_nofile_limit, systemd_listeners};

use crate::http::service::Service;
use async_std::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Descriptors kept out of the connection cap: listeners, the persistence file, its
/// temporary and journal files, `/proc` reads for the self-metrics, signal pipes, stdio.
const RESERVED_FDS: u64 = 64;

/// The running edge, to drain at shutdown.
pub struct Server {
    conns: conns::Conns,
    stop: channel::Sender<()>,
}

impl Server {
    /// Serves `listeners` until `drain`. The connection cap is the smaller of the flag
    /// and what the descriptor limit leaves after the reserve.
    pub fn start(
        listeners: Vec<std::net::TcpListener>,
        service: Arc<Service>,
        mut limits: Limits,
        nofile: u64,
    ) -> Server {
        let by_fds = nofile.saturating_sub(RESERVED_FDS).max(1);
        if (limits.max_connections as u64) > by_fds {
            log::warn!(
                "the descriptor limit ({nofile}) caps open connections at {by_fds}, below --web.max-connections={}",
                limits.max_connections
            );
            limits.max_connections = by_fds as usize;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Heavy work gets a thread per core. Small changes get their own lane: one thread
        // (they serialise on the store's lock anyway, and more threads allocating at once
        // cost musl's single-lock malloc a third of its push throughput: 4,134 against
        // 4,885 req/s with one, measured). In durable mode their answers wait for the
        // journal's fsync as futures (`Service::settle`), not on these threads.
        let pool = Arc::new(pool::Pool::new(1, cores, 1024));
        let conns = conns::Conns::new(limits.max_connections);
        let (stop, stopped) = channel::bounded(1);
        let listeners: Vec<_> = listeners
            .into_iter()
            .map(|l| {
                // A blocking listener would hold an executor thread in accept.
                if let Err(e) = l.set_nonblocking(true) {
                    log::error!("cannot make a listener non-blocking: {e}");
                }
                async_std::net::TcpListener::from(l)
            })
            .collect();
        let edge = bridge::Edge::new(listeners, limits, conns.clone(), stopped);
        let app = bridge::app(service, pool);
        async_std::task::spawn(async move {
            if let Err(e) = app.listen(edge).await {
                log::error!("HTTP server stopped: {e}");
            }
        });
        Server { conns, stop }
    }

    /// Stops accepting, lets every connection finish the request it is answering (idle
    /// ones close at once), and waits for them all to close, at most `limit`.
    pub async fn drain(&self, limit: Duration) {
        self.stop.close();
        self.conns.drain();
        let deadline = Instant::now() + limit;
        while self.conns.len() > 0 && Instant::now() < deadline {
            async_std::task::sleep(Duration::from_millis(5)).await;
        }
        let left = self.conns.len();
        if left > 0 {
            log::warn!("{left} connections still open after {limit:?}; closing them");
        }
    }
}
