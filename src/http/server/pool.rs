//! A bounded pool of worker threads, so that handlers, which may parse, compress, take
//! the store's locks or wait for the disk, never run on (and stall) the executor threads.
//!
//! Two lanes, each with its own threads and a bounded queue: `light` for small pushes
//! and deletes, `heavy` for scrapes, the JSON views and large or compressed bodies. Heavy
//! requests can then fill only their own lane, and a small push keeps its threads.

use async_std::channel;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send>;

struct Lane {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    max_queued: usize,
}

impl Lane {
    fn start(name: &str, threads: usize, max_queued: usize) -> Arc<Lane> {
        let lane = Arc::new(Lane {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            max_queued,
        });
        for i in 0..threads.max(1) {
            let l = lane.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || l.work());
            if let Err(e) = spawned {
                log::error!("cannot start a worker thread: {e}");
            }
        }
        lane
    }

    fn work(&self) {
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(job) = q.pop_front() {
                        break job;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            job();
        }
    }
}

/// Which lane a request runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    Light,
    Heavy,
}

/// The queue of a lane is full.
#[derive(Debug)]
pub struct Busy;

pub struct Pool {
    light: Arc<Lane>,
    heavy: Arc<Lane>,
}

impl Pool {
    /// `light` and `heavy` threads, each lane queueing at most `max_queued` jobs.
    pub fn new(light: usize, heavy: usize, max_queued: usize) -> Pool {
        Pool {
            light: Lane::start("light", light, max_queued),
            heavy: Lane::start("heavy", heavy, max_queued),
        }
    }

    /// Runs `f` on a worker of `lane` and waits for its result without blocking the
    /// executor; `Busy` at once if the lane's queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        lane: Lanes,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let lane = match lane {
            Lanes::Light => &self.light,
            Lanes::Heavy => &self.heavy,
        };
        let (tx, rx) = channel::bounded(1);
        {
            let mut q = lane.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() >= lane.max_queued {
                return Err(Busy);
            }
            q.push_back(Box::new(move || {
                // Its client gone (the request's future dropped): not worth doing, and
                // dropping `f` frees what it holds.
                if !tx.is_closed() {
                    let _ = tx.try_send(f());
                }
            }));
        }
        lane.ready.notify_one();
        rx.recv().await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_off_the_caller_and_refuses_beyond_the_queue() {
        let pool = Pool::new(1, 1, 1);
        let here = std::thread::current().id();
        let there =
            async_std::task::block_on(pool.run(Lanes::Light, move || std::thread::current().id()))
                .unwrap();
        assert_ne!(here, there);
        // One job holds the only heavy worker, one waits in the queue: a third is refused.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let pool = Arc::new(pool);
        let p = pool.clone();
        let first = async_std::task::spawn(async move {
            p.run(Lanes::Heavy, move || {
                let _ = started_tx.send(());
                let _ = hold_rx.recv();
            })
            .await
        });
        started_rx.recv().unwrap();
        let p = pool.clone();
        let second = async_std::task::spawn(async move { p.run(Lanes::Heavy, || 2).await });
        while pool.heavy.queue.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        let third = async_std::task::block_on(pool.run(Lanes::Heavy, || 3));
        assert!(third.is_err());
        // The light lane is not held up by the heavy one.
        assert_eq!(
            async_std::task::block_on(pool.run(Lanes::Light, || 4)).unwrap(),
            4
        );
        hold_tx.send(()).unwrap();
        async_std::task::block_on(first).unwrap();
        assert_eq!(async_std::task::block_on(second).unwrap(), 2);
    }
}
