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

/// What a busy connection is doing.
const READING: u8 = 1;
const HANDLING: u8 = 2;
const WRITING: u8 = 3;

/// A busy connection whose client has sent or taken nothing for this long may be closed
/// to make room at the cap: it is not the one to keep when connections run out.
const STALLED_MS: u64 = 1000;

/// One open connection, shared by its task, its socket and the table.
pub struct Conn {
    id: u64,
    state: AtomicU8,
    /// When the current state began, in milliseconds since the table's epoch.
    since: AtomicU64,
    /// Set to make the task close the connection (idle, or busy but stalled).
    evict: AtomicBool,
    /// While busy: reading the body, handling, or writing the answer.
    phase: AtomicU8,
    /// While reading or writing: when bytes last moved, in ms since the epoch.
    progress: AtomicU64,
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
        self.phase.store(HANDLING, Ordering::SeqCst);
        self.set(BUSY);
    }

    /// The request's body is being read.
    pub fn reading(&self) {
        self.progressed();
        self.phase.store(READING, Ordering::SeqCst);
    }

    /// The body is read: the request is being handled.
    pub fn handling(&self) {
        self.phase.store(HANDLING, Ordering::SeqCst);
    }

    /// The answer is being written (hyper took a piece of it).
    pub fn writing(&self) {
        self.progressed();
        self.phase.store(WRITING, Ordering::SeqCst);
    }

    /// Bytes of the body came in, or hyper took more of the answer.
    pub fn progressed(&self) {
        self.progress.store(self.table.now_ms(), Ordering::SeqCst);
    }

    /// How eagerly this connection makes room at the cap: `None` if it must be kept (it
    /// is being handled, or moving bytes); lower first.
    fn eviction_rank(&self, now_ms: u64) -> Option<(u8, u64)> {
        if self.evict.load(Ordering::SeqCst) {
            return None;
        }
        if self.state.load(Ordering::SeqCst) != BUSY {
            return Some((0, self.since.load(Ordering::SeqCst)));
        }
        let phase = self.phase.load(Ordering::SeqCst);
        let progress = self.progress.load(Ordering::SeqCst);
        (phase != HANDLING && now_ms.saturating_sub(progress) >= STALLED_MS)
            .then_some((1, progress))
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
    pub fn verdict(&self, t: &Timeouts) -> Verdict {
        if self.evict.load(Ordering::SeqCst) {
            return Verdict::Close("closed to make room for a new connection");
        }
        let state = self.state.load(Ordering::SeqCst);
        if state == BUSY {
            if self.phase.load(Ordering::SeqCst) != WRITING {
                // Body reads have their own deadline; handlers finish on their own.
                return Verdict::Wait(None);
            }
            let at = self.table.epoch
                + Duration::from_millis(self.progress.load(Ordering::SeqCst))
                + t.write_stall;
            return if Instant::now() >= at {
                Verdict::Close("the client stopped reading its answer")
            } else {
                Verdict::Wait(Some(at))
            };
        }
        let (idle_timeout, head_timeout) = (t.idle, t.head);
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

/// The watchdog's bounds.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Waiting for the next request.
    pub idle: Duration,
    /// From a head's first byte to its end.
    pub head: Duration,
    /// An answer the client takes nothing of.
    pub write_stall: Duration,
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
    /// Sockets outside the table: closing ones that linger, refused ones being told so.
    lingering: std::sync::atomic::AtomicUsize,
    refusing: std::sync::atomic::AtomicUsize,
}

/// At most this many closing sockets linger, and this many refused ones are answered,
/// at once (the rest are closed at once): they hold descriptors outside the cap, within
/// the reserve `http` keeps.
pub const MAX_LINGERING: usize = 16;
pub const MAX_REFUSING: usize = 16;

/// A slot among the lingering or refusing sockets, given back when dropped.
pub struct Slot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn take_slot(count: &std::sync::atomic::AtomicUsize, max: usize) -> Option<Slot<'_>> {
    count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(count))
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
            lingering: Default::default(),
            refusing: Default::default(),
        }))
    }

    /// A slot to linger in, if one is free.
    pub fn linger_slot(&self) -> Option<Slot<'_>> {
        take_slot(&self.0.lingering, MAX_LINGERING)
    }

    /// A slot to answer a refused connection in, if one is free.
    pub fn refuse_slot(&self) -> Option<Slot<'_>> {
        take_slot(&self.0.refusing, MAX_REFUSING)
    }

    pub fn cap(&self) -> usize {
        self.0.cap
    }

    pub fn len(&self) -> usize {
        lock(&self.0.open).len()
    }

    /// Takes a new connection into the table. At the cap, one is told to close to make
    /// room: the one that has waited longest without a request (idle, or still sending a
    /// head), else the one whose client has moved no bytes of its body or answer for
    /// longest (at least a second); if every connection is busy otherwise, `None`: the
    /// new one is refused.
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
            let now = self.0.now_ms();
            let victim = candidates
                .iter()
                .filter_map(|c| Some((c.eviction_rank(now)?, c)))
                .min_by_key(|(rank, _)| *rank)?
                .1;
            victim.evict.store(true, Ordering::SeqCst);
            victim.wake();
        }
        let conn = Arc::new(Conn {
            id: self.0.next.fetch_add(1, Ordering::SeqCst),
            state: AtomicU8::new(IDLE),
            since: AtomicU64::new(self.0.now_ms()),
            evict: AtomicBool::new(false),
            phase: AtomicU8::new(HANDLING),
            progress: AtomicU64::new(0),
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

    fn t(idle: Duration, head: Duration) -> Timeouts {
        Timeouts {
            idle,
            head,
            write_stall: LONG,
        }
    }

    #[test]
    fn beyond_the_cap_the_longest_waiting_idle_connection_makes_room() {
        let conns = Conns::new(2);
        let a = conns.admit().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let b = conns.admit().unwrap();
        b.bytes_arrived();
        let c = conns.admit().unwrap();
        assert_eq!(
            a.verdict(&t(LONG, LONG)),
            Verdict::Close("closed to make room for a new connection")
        );
        assert_eq!(
            b.verdict(&t(LONG, LONG)),
            Verdict::Wait(Some(
                b.table.epoch + Duration::from_millis(b.since.load(Ordering::SeqCst)) + LONG
            ))
        );
        assert!(matches!(c.verdict(&t(LONG, LONG)), Verdict::Wait(Some(_))));
        drop(a);
        assert_eq!(conns.len(), 2);
    }

    #[test]
    fn a_stalled_upload_or_answer_makes_room_but_a_handled_request_never_does() {
        let conns = Conns::new(1);
        let a = conns.admit().unwrap();
        a.busy();
        a.reading();
        // Moving bytes a moment ago: kept.
        assert!(conns.admit().is_none());
        // Stalled for over a second: it goes.
        a.progress.store(0, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(1100));
        let b = conns.admit().unwrap();
        assert_eq!(
            a.verdict(&t(LONG, LONG)),
            Verdict::Close("closed to make room for a new connection")
        );
        // A request being handled is never chosen.
        b.busy();
        assert!(conns.admit().is_none());
        // An answer nobody reads is closed after the write stall bound.
        b.writing();
        let stall = Timeouts {
            idle: LONG,
            head: LONG,
            write_stall: Duration::ZERO,
        };
        assert_eq!(
            b.verdict(&stall),
            Verdict::Close("the client stopped reading its answer")
        );
    }

    #[test]
    fn busy_connections_are_never_evicted_and_a_full_table_refuses() {
        let conns = Conns::new(1);
        let a = conns.admit().unwrap();
        a.busy();
        assert!(conns.admit().is_none());
        assert_eq!(
            a.verdict(&t(Duration::ZERO, Duration::ZERO)),
            Verdict::Wait(None)
        );
        a.idle();
        assert_eq!(
            a.verdict(&t(Duration::ZERO, LONG)),
            Verdict::Close("idle timeout")
        );
        a.bytes_arrived();
        assert_eq!(
            a.verdict(&t(LONG, Duration::ZERO)),
            Verdict::Close("timed out reading a request head")
        );
    }
}
