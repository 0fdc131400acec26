//! Small things several parts of the host and the client need: clocks and ending process
//! groups.

use std::future::Future;
use std::time::Duration;

use nix::sys::signal::Signal;

/// Unix seconds now (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix milliseconds now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How long ago unix second `then` was, in words: `just now`, `5 min ago`, `3 h ago`,
/// `2 days ago`.
pub fn ago(then: u64, now: u64) -> String {
    let d = now.saturating_sub(then);
    match d {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", d / 60),
        3600..86_400 => format!("{} h ago", d / 3600),
        86_400..172_800 => "1 day ago".into(),
        _ => format!("{} days ago", d / 86_400),
    }
}

/// Sends `sig` to process group `pgid` (a session leader's pid is its group id). Errors (the
/// group is gone) are ignored: there is nothing left to signal.
pub fn signal_group(pgid: u32, sig: Signal) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 0
    {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig);
    }
}

/// Ends process group `pgid`: `first` (SIGHUP for a terminal, SIGTERM for an agent), up to
/// `grace` for `exited` to resolve, then SIGKILL and up to `grace` more. Returns whether
/// `exited` resolved.
pub async fn terminate_group<F: Future>(
    pgid: u32,
    first: Signal,
    grace: Duration,
    exited: F,
) -> bool {
    tokio::pin!(exited);
    signal_group(pgid, first);
    if tokio::time::timeout(grace, &mut exited).await.is_ok() {
        return true;
    }
    signal_group(pgid, Signal::SIGKILL);
    tokio::time::timeout(grace, &mut exited).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_words() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(100, 400), "5 min ago");
        assert_eq!(ago(0, 3 * 3600 + 5), "3 h ago");
        assert_eq!(ago(0, 86_400 + 1), "1 day ago");
        assert_eq!(ago(0, 5 * 86_400), "5 days ago");
        assert_eq!(ago(500, 100), "just now");
    }

    #[tokio::test]
    async fn a_group_that_ignores_the_first_signal_is_killed() {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = child.id().expect("pid");
        // Give the shell time to set its trap.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let ended = terminate_group(
            pgid,
            Signal::SIGTERM,
            Duration::from_millis(300),
            child.wait(),
        )
        .await;
        assert!(ended);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
