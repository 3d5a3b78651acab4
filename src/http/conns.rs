//! The table of open connections: the cap, which connection makes room beyond it, each
//! one's state and deadlines, and the signal that drains them all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Waiting for a request: nothing of the next head has arrived.
const IDLE: u8 = 0;
/// Some of a request head has arrived, not all of it.
const HEAD: u8 = 1;
/// A request is being answered (its body read, handled, or its response written).
const BUSY: u8 = 2;

/// One open connection, shared by its task, its socket and the table.
pub struct Conn {
    id: u64,
    state: AtomicU8,
    /// When the current state began, in milliseconds since the table's epoch.
    since: AtomicU64,
    /// Set to make the task close the connection if it is not answering a request.
    evict: AtomicBool,
    waker: Mutex<Option<Waker>>,
    table: Arc<Inner>,
}

/// Why a connection's task should stop driving it now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep going; `Some` is the instant to look again.
    Wait(Option<Instant>),
    /// Close it without an answer: an idle keep-alive or a head timed out, or room was
    /// needed for a new connection.
    Close(&'static str),
}

impl Conn {
    fn set(&self, state: u8) {
        self.since.store(self.table.now_ms(), Ordering::SeqCst);
        self.state.store(state, Ordering::SeqCst);
    }

    /// A request head is complete and is being answered.
    pub fn busy(&self) {
        self.set(BUSY);
    }

    /// The last response is written: waiting for the next request.
    pub fn idle(&self) {
        self.set(IDLE);
        self.wake();
    }

    /// Bytes came in: if the connection was idle, a head has started.
    pub fn bytes_arrived(&self) {
        if self
            .state
            .compare_exchange(IDLE, HEAD, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.since.store(self.table.now_ms(), Ordering::SeqCst);
        }
    }

    /// Registers the task to be woken by `idle`, an eviction or a drain.
    pub fn register(&self, waker: &Waker) {
        let mut w = lock(&self.waker);
        if !w.as_ref().is_some_and(|old| old.will_wake(waker)) {
            *w = Some(waker.clone());
        }
    }

    fn wake(&self) {
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    /// What the connection's task should do now, given the timeouts.
    pub fn verdict(&self, idle_timeout: Duration, head_timeout: Duration) -> Verdict {
        let state = self.state.load(Ordering::SeqCst);
        if state == BUSY {
            // Body reads have their own deadline; handlers finish on their own.
            return Verdict::Wait(None);
        }
        if self.evict.load(Ordering::SeqCst) {
            return Verdict::Close("closed to make room for a new connection");
        }
        let (limit, why) = if state == IDLE {
            (idle_timeout, "idle timeout")
        } else {
            (head_timeout, "timed out reading a request head")
        };
        let since = self.table.epoch + Duration::from_millis(self.since.load(Ordering::SeqCst));
        let deadline = since + limit;
        if Instant::now() >= deadline {
            Verdict::Close(why)
        } else {
            Verdict::Wait(Some(deadline))
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        lock(&self.table.open).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner {
    epoch: Instant,
    cap: usize,
    next: AtomicU64,
    /// Weak handles: a connection leaves the table when its task drops it.
    open: Mutex<HashMap<u64, std::sync::Weak<Conn>>>,
    draining: AtomicBool,
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// All open connections, across every listener.
#[derive(Clone)]
pub struct Conns(Arc<Inner>);

impl Conns {
    pub fn new(cap: usize) -> Conns {
        Conns(Arc::new(Inner {
            epoch: Instant::now(),
            cap: cap.max(1),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
        }))
    }

    pub fn cap(&self) -> usize {
        self.0.cap
    }

    pub fn len(&self) -> usize {
        lock(&self.0.open).len()
    }

    /// Takes a new connection into the table. At the cap, the connection that has waited
    /// longest without a request in flight (idle, or still sending a head) is told to
    /// close to make room; if every connection is answering a request, `None`: the new
    /// one is refused.
    pub fn admit(&self) -> Option<Arc<Conn>> {
        // Handles are upgraded under the lock but dropped after it: a connection whose
        // last handle goes here removes itself from the table, which takes the lock.
        let candidates: Vec<Arc<Conn>> = {
            let open = lock(&self.0.open);
            if open.len() >= self.0.cap {
                open.values().filter_map(std::sync::Weak::upgrade).collect()
            } else {
                Vec::new()
            }
        };
        if !candidates.is_empty() {
            let victim = candidates
                .iter()
                .filter(|c| {
                    c.state.load(Ordering::SeqCst) != BUSY && !c.evict.load(Ordering::SeqCst)
                })
                .min_by_key(|c| c.since.load(Ordering::SeqCst))?;
            victim.evict.store(true, Ordering::SeqCst);
            victim.wake();
        }
        let conn = Arc::new(Conn {
            id: self.0.next.fetch_add(1, Ordering::SeqCst),
            state: AtomicU8::new(IDLE),
            since: AtomicU64::new(self.0.now_ms()),
            evict: AtomicBool::new(false),
            waker: Mutex::new(None),
            table: self.0.clone(),
        });
        lock(&self.0.open).insert(conn.id, Arc::downgrade(&conn));
        Some(conn)
    }

    /// Stops every connection from reading new requests: idle ones close, the ones
    /// answering a request close after it.
    pub fn drain(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
        let open: Vec<_> = lock(&self.0.open)
            .values()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        for c in open {
            c.wake();
        }
    }

    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn beyond_the_cap_the_longest_waiting_idle_connection_makes_room() {
        let conns = Conns::new(2);
        let a = conns.admit().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let b = conns.admit().unwrap();
        b.bytes_arrived();
        let c = conns.admit().unwrap();
        assert_eq!(
            a.verdict(LONG, LONG),
            Verdict::Close("closed to make room for a new connection")
        );
        assert_eq!(
            b.verdict(LONG, LONG),
            Verdict::Wait(Some(
                b.table.epoch + Duration::from_millis(b.since.load(Ordering::SeqCst)) + LONG
            ))
        );
        assert!(matches!(c.verdict(LONG, LONG), Verdict::Wait(Some(_))));
        drop(a);
        assert_eq!(conns.len(), 2);
    }

    #[test]
    fn busy_connections_are_never_evicted_and_a_full_table_refuses() {
        let conns = Conns::new(1);
        let a = conns.admit().unwrap();
        a.busy();
        assert!(conns.admit().is_none());
        assert_eq!(
            a.verdict(Duration::ZERO, Duration::ZERO),
            Verdict::Wait(None)
        );
        a.idle();
        assert_eq!(
            a.verdict(Duration::ZERO, LONG),
            Verdict::Close("idle timeout")
        );
        a.bytes_arrived();
        assert_eq!(
            a.verdict(LONG, Duration::ZERO),
            Verdict::Close("timed out reading a request head")
        );
    }
}
