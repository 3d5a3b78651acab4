//! When the persistence file is written: upstream's schedule as a function of what is pending, the last write's start and the interval, so that it is tested on a clock the test drives.
//!
//! After a change, a write is due one interval after the start of the previous write (or
//! of the process), at once if that is past: at most one write per interval, none without
//! a change. A write asked for now (SIGHUP, the journal outgrowing its bound) is spaced
//! `MIN_SPACING` from the last one; after a failed write the next is retried sooner than
//! the interval, the wait doubling from `MIN_SPACING` up to the interval; shutdown writes
//! at once.

use std::time::{Duration, Instant};

/// Writes asked for by SIGHUP, the journal or a failure are spaced at least this much.
pub const MIN_SPACING: Duration = Duration::from_secs(1);

/// What asks for a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// The store changed since the last write started.
    pub dirty: bool,
    /// A write is asked for now.
    pub now: bool,
    pub shutdown: bool,
    /// The last write failed: the wait before the next try.
    pub retry: Option<Duration>,
}

/// When the next write is due, or `None` while nothing asks for one.
pub fn due(last_start: Instant, interval: Duration, p: &Pending) -> Option<Instant> {
    if p.shutdown {
        return Some(last_start);
    }
    let wait = match p.retry {
        Some(r) => r.min(interval),
        None if p.now => MIN_SPACING.min(interval),
        None if p.dirty => interval,
        None => return None,
    };
    Some(last_start + wait)
}

/// The wait before the next try after a failed write: doubling, never past the interval
/// (nor below `MIN_SPACING`), and never overflowing however long the disk fails.
pub fn next_retry(last: Option<Duration>, interval: Duration) -> Duration {
    let next = last.map_or(MIN_SPACING, |r| r.saturating_mul(2));
    next.min(interval.max(MIN_SPACING))
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Event {
        Change,
        Hup,
        Shutdown,
        /// Writes fail from now on (or succeed again).
        Failing(bool),
    }

    /// Runs the schedule second by second from the process start (second 0) to `until`,
    /// with `events` at their seconds; returns the seconds writes started at.
    fn simulate(interval: u64, events: &[(u64, Event)], until: u64) -> Vec<u64> {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let interval = Duration::from_secs(interval);
        let (mut last_start, mut p, mut failing) = (t0, Pending::default(), false);
        let mut writes = Vec::new();
        for s in 0..=until {
            for (_, e) in events.iter().filter(|(when, _)| *when == s) {
                match e {
                    Event::Change => p.dirty = true,
                    Event::Hup => p.now = true,
                    Event::Shutdown => p.shutdown = true,
                    Event::Failing(f) => failing = *f,
                }
            }
            if due(last_start, interval, &p).is_some_and(|d| d <= at(s)) {
                writes.push(s);
                last_start = at(s);
                let shutdown = p.shutdown;
                p.dirty = false;
                p.now = false;
                p.retry = failing.then(|| next_retry(p.retry, interval));
                if shutdown {
                    break;
                }
            }
        }
        writes
    }

    #[test]
    fn no_write_without_a_change() {
        assert_eq!(simulate(300, &[], 3600), Vec::<u64>::new());
    }

    #[test]
    fn at_most_one_write_per_interval() {
        let changes: Vec<(u64, Event)> = (1..=360).map(|i| (i * 10, Event::Change)).collect();
        let want: Vec<u64> = (1..=12).map(|i| i * 300).collect();
        assert_eq!(simulate(300, &changes, 3600), want);
    }

    #[test]
    fn the_first_change_after_a_quiet_interval_is_written_at_once() {
        let events = [(10, Event::Change), (1000, Event::Change)];
        assert_eq!(simulate(300, &events, 3600), [300, 1000]);
    }

    #[test]
    fn sighup_writes_spaced_a_second_from_the_last_write() {
        let events = [(100, Event::Hup), (101, Event::Hup), (101, Event::Change)];
        // The second SIGHUP comes a second after the first write: written at once; the
        // change with it is in that write.
        assert_eq!(simulate(300, &events, 3600), [100, 101]);
        let events = [(100, Event::Hup), (100, Event::Change), (100, Event::Hup)];
        assert_eq!(simulate(300, &events, 3600), [100]);
    }

    #[test]
    fn a_write_asked_for_now_waits_a_second_from_the_last_and_no_more() {
        let t = Instant::now();
        let interval = Duration::from_secs(300);
        let now = Pending {
            now: true,
            dirty: true,
            ..Pending::default()
        };
        assert_eq!(due(t, interval, &now), Some(t + Duration::from_secs(1)));
        // Never later than the interval, when that is shorter.
        let short = Duration::from_millis(100);
        assert_eq!(due(t, short, &now), Some(t + short));
        let retry = Pending {
            retry: Some(Duration::from_secs(8)),
            ..now
        };
        assert_eq!(due(t, interval, &retry), Some(t + Duration::from_secs(8)));
    }

    #[test]
    fn shutdown_writes_at_once() {
        let events = [(5, Event::Change), (7, Event::Shutdown)];
        assert_eq!(simulate(300, &events, 3600), [7]);
        // Even with nothing changed: the last write of the process.
        assert_eq!(simulate(300, &[(7, Event::Shutdown)], 3600), [7]);
    }

    #[test]
    fn failed_writes_retry_sooner_doubling_up_to_the_interval() {
        let events = [
            (0, Event::Failing(true)),
            (1, Event::Change),
            (200, Event::Failing(false)),
        ];
        // Due at 60 (the interval), then retried 1, 2, 4, 8, 16, 32 s later, then at the
        // interval; the disk is back at 200, so the try at 243 succeeds and nothing follows.
        assert_eq!(
            simulate(60, &events, 3600),
            [60, 61, 63, 67, 75, 91, 123, 183, 243]
        );
    }

    #[test]
    fn the_retry_wait_never_overflows() {
        let mut r = None;
        for _ in 0..200 {
            r = Some(next_retry(r, Duration::MAX));
        }
        assert_eq!(r, Some(Duration::MAX));
        assert_eq!(
            next_retry(Some(Duration::from_secs(50)), Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}
