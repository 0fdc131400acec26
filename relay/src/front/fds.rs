//! The descriptor reserve: how close a new connection is to the process's descriptor limit,
//! and log lines that cannot flood when it is reached.
//!
//! POSIX hands out the lowest free descriptor number, so when `accept` returns descriptor `n`,
//! every number below `n` is in use. A connection numbered in the top `reserve` numbers below
//! the limit therefore means the relay is (nearly) full: such a connection is still served for
//! health checks, metrics and static files, but not as a relay client or a route (which would
//! hold it for hours). In the last quarter of the reserve it is closed at once, keeping a few
//! descriptors for the process itself (files, DNS, reloading the tokens file).
//! This costs no system call per connection.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// Where a new connection's descriptor lies relative to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Headroom {
    /// Below the reserve: serve it fully.
    Normal,
    /// In the reserve: serve health, metrics and static files; refuse relay and routes.
    Reserve,
    /// In the last quarter of the reserve: close it right after `accept`.
    Exhausted,
}

/// The descriptor limit at start and the reserve kept below it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdBudget {
    /// The soft limit read when the server started; `None` where unknown (no reserve then).
    limit: Option<u64>,
    /// Clamped to half the limit, so a tiny limit still serves something.
    reserve: u64,
}

impl FdBudget {
    /// Reads the current soft limit.
    pub(crate) fn new(reserve: usize) -> Self {
        let limit = crate::fd_limit::current().ok().map(|l| l.soft);
        Self::with_limit(limit, reserve)
    }

    pub(crate) fn with_limit(limit: Option<u64>, reserve: usize) -> Self {
        let reserve = u64::try_from(reserve).unwrap_or(u64::MAX);
        Self {
            limit,
            reserve: limit.map_or(0, |limit| reserve.min(limit / 2)),
        }
    }

    /// The soft limit the reserve is computed from.
    pub(crate) fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// The reserve, in descriptors.
    pub(crate) fn reserve(&self) -> u64 {
        self.reserve
    }

    /// Classifies the connection that got descriptor number `fd`.
    pub(crate) fn classify(&self, fd: u64) -> Headroom {
        let Some(limit) = self.limit else {
            return Headroom::Normal;
        };
        let last_quarter = self.reserve.div_ceil(4);
        if fd.saturating_add(last_quarter) >= limit {
            Headroom::Exhausted
        } else if fd.saturating_add(self.reserve) >= limit {
            Headroom::Reserve
        } else {
            Headroom::Normal
        }
    }

    /// Classifies an accepted connection by its descriptor number.
    pub(crate) fn classify_stream(&self, stream: &tokio::net::TcpStream) -> Headroom {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd as _;
            match u64::try_from(stream.as_raw_fd()) {
                Ok(fd) => self.classify(fd),
                Err(_) => Headroom::Normal,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            Headroom::Normal
        }
    }
}

/// At most one log line per period for a recurring event, with the number of events since the
/// previous line.
#[derive(Debug)]
pub(crate) struct Throttled {
    period: Duration,
    /// When the last line was logged, and events since then.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttled {
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one event. Returns `Some(n)` when a line should be logged now, `n` being the
    /// events since the previous line, this one included.
    pub(crate) fn hit(&self) -> Option<u64> {
        self.hit_at(Instant::now())
    }

    fn hit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, count) = &mut *state;
        *count += 1;
        let due = last.is_none_or(|at| now.saturating_duration_since(at) >= self.period);
        if !due {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_and_last_quarter() {
        let budget = FdBudget::with_limit(Some(1024), 64);
        assert_eq!(budget.classify(0), Headroom::Normal);
        assert_eq!(budget.classify(959), Headroom::Normal);
        assert_eq!(budget.classify(960), Headroom::Reserve);
        assert_eq!(budget.classify(1007), Headroom::Reserve);
        assert_eq!(budget.classify(1008), Headroom::Exhausted);
        assert_eq!(budget.classify(1023), Headroom::Exhausted);
    }

    #[test]
    fn tiny_limits_and_unknown_limits() {
        // The reserve never takes more than half.
        let tiny = FdBudget::with_limit(Some(40), 64);
        assert_eq!(tiny.reserve(), 20);
        assert_eq!(tiny.classify(19), Headroom::Normal);
        assert_eq!(tiny.classify(20), Headroom::Reserve);
        assert_eq!(tiny.classify(35), Headroom::Exhausted);
        let unknown = FdBudget::with_limit(None, 64);
        assert_eq!(unknown.classify(u64::MAX), Headroom::Normal);
        let none = FdBudget::with_limit(Some(1024), 0);
        assert_eq!(none.classify(1023), Headroom::Normal);
    }

    #[test]
    fn throttled_logs_once_per_period_with_a_count() {
        let log = Throttled::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(log.hit_at(start), Some(1));
        for ms in 1..=5 {
            assert_eq!(log.hit_at(start + Duration::from_millis(ms)), None);
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(log.hit_at(later), Some(6));
        assert_eq!(log.hit_at(later), None);
    }
}
