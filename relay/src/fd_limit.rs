//! The process's file-descriptor limit (`RLIMIT_NOFILE`): reading it, raising the soft limit
//! to the hard one, and counting open descriptors.
//!
//! Every relay client holds one TCP connection, and every connection one descriptor, so the
//! soft limit (often 1024) caps a relay at about a thousand clients long before memory or CPU
//! do. `peer-relay` raises it to the hard limit at start ([`raise_soft_limit`]); a process
//! embedding the relay decides for itself. The front server keeps a reserve below the limit
//! whatever it is (`Limits::fd_reserve`).

use std::io;

/// The soft and hard `RLIMIT_NOFILE` of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The limit in force: descriptors numbered at or above it cannot be opened.
    pub soft: u64,
    /// How far an unprivileged process may raise `soft`.
    pub hard: u64,
}

/// What [`raise_soft_limit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The limits before.
    pub before: FdLimit,
    /// The limits now.
    pub after: FdLimit,
}

/// The current limits.
///
/// # Errors
///
/// If the operating system refuses to tell, or (not on Unix) always.
pub fn current() -> io::Result<FdLimit> {
    imp::current()
}

/// Raises the soft limit to the hard limit (where the hard limit is "unlimited", as on macOS, to
/// the largest value the system accepts, trying 1 048 576 then 10 240). Does nothing if the soft
/// limit is already there.
///
/// The limit is per process: call it at start, before opening many descriptors.
///
/// # Errors
///
/// If the limits cannot be read or no higher soft limit is accepted.
pub fn raise_soft_limit() -> io::Result<Raised> {
    imp::raise_soft_limit()
}

/// How many descriptors this process has open, if the system can tell (Linux: `/proc/self/fd`,
/// macOS: `/dev/fd`). Takes time proportional to the count: for metrics, not per request.
pub fn open_fds() -> Option<usize> {
    let dir = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    // The directory handle is itself one of the entries while it is read.
    let entries = std::fs::read_dir(dir).ok()?.count();
    Some(entries.saturating_sub(1))
}

#[cfg(unix)]
mod imp {
    use std::io;

    use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};

    use super::{FdLimit, Raised};

    /// Soft limits to try when the hard limit is "unlimited" (macOS refuses an unlimited soft
    /// limit for descriptors).
    const FALLBACKS: [u64; 2] = [1 << 20, 10_240];

    #[allow(clippy::useless_conversion)] // `rlim_t` is `u64` on 64-bit targets only.
    fn to_u64(value: rlim_t) -> u64 {
        u64::from(value)
    }

    fn to_rlim(value: u64) -> rlim_t {
        rlim_t::try_from(value).unwrap_or(rlim_t::MAX)
    }

    pub(super) fn current() -> io::Result<FdLimit> {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
        Ok(FdLimit {
            soft: to_u64(soft),
            hard: to_u64(hard),
        })
    }

    pub(super) fn raise_soft_limit() -> io::Result<Raised> {
        let before = current()?;
        if before.soft >= before.hard {
            return Ok(Raised {
                before,
                after: before,
            });
        }
        let unlimited = to_u64(nix::sys::resource::RLIM_INFINITY);
        let targets: Vec<u64> = if before.hard == unlimited {
            FALLBACKS.to_vec()
        } else {
            vec![before.hard]
        };
        let mut last_err = io::Error::other("no higher limit to try");
        for target in targets.into_iter().filter(|t| *t > before.soft) {
            match setrlimit(
                Resource::RLIMIT_NOFILE,
                to_rlim(target),
                to_rlim(before.hard),
            ) {
                Ok(()) => {
                    return Ok(Raised {
                        before,
                        after: current()?,
                    });
                }
                Err(errno) => last_err = io::Error::from(errno),
            }
        }
        Err(last_err)
    }
}

#[cfg(not(unix))]
mod imp {
    use std::io;

    use super::{FdLimit, Raised};

    pub(super) fn current() -> io::Result<FdLimit> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no descriptor limit on this platform",
        ))
    }

    pub(super) fn raise_soft_limit() -> io::Result<Raised> {
        current().map(|limit| Raised {
            before: limit,
            after: limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn raising_reaches_the_hard_limit_and_is_idempotent() -> io::Result<()> {
        let raised = raise_soft_limit()?;
        assert!(raised.after.soft >= raised.before.soft);
        assert_eq!(raised.after.hard, raised.before.hard);
        let again = raise_soft_limit()?;
        assert_eq!(again.before, again.after);
        assert_eq!(current()?, again.after);
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn open_descriptors_are_counted() -> io::Result<()> {
        let before = open_fds().ok_or_else(|| io::Error::other("cannot count"))?;
        let files: Vec<_> = (0..8)
            .map(|_| std::fs::File::open("/dev/null"))
            .collect::<Result<_, _>>()?;
        let during = open_fds().ok_or_else(|| io::Error::other("cannot count"))?;
        drop(files);
        // Other tests of this binary open and close descriptors concurrently: allow slack.
        assert!(during + 4 >= before + 8, "{before} -> {during}");
        Ok(())
    }
}
