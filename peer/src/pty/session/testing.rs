//! Sessions on real PTYs for tests here and elsewhere in the crate.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::{PtySession, SessionConfig};
use crate::proto::{CreateSession, WinSize};
use crate::pty::Slice;

/// `sh -c script` on a PTY, with a 64 KiB buffer.
pub(crate) fn shell(script: &str) -> Arc<PtySession> {
    spawn(&["sh", "-c", script], false, 64 * 1024)
}

/// `command` on a PTY in `/`, with 100 lines of scrollback.
pub(crate) fn spawn(command: &[&str], hold_output: bool, buffer_bytes: usize) -> Arc<PtySession> {
    let req = CreateSession {
        name: None,
        command: command.iter().map(|a| a.to_string()).collect(),
        cwd: Some("/".into()),
        env: vec![],
        size: WinSize::default(),
        hold_output,
    };
    let config = SessionConfig {
        buffer_bytes,
        scrollback: 100,
        events: broadcast::channel(16).0,
    };
    PtySession::spawn(1, &req, &config).expect("spawn")
}

/// Reads output from `offset` on until it holds `needle` (20 s at most); returns what it read
/// and moves `offset` past it.
pub(crate) async fn read_until(s: &PtySession, offset: &mut u64, needle: &[u8]) -> Vec<u8> {
    let mut rx = s.subscribe();
    let mut got = Vec::new();
    let t0 = std::time::Instant::now();
    while !got.windows(needle.len()).any(|w| w == needle) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no {needle:?} in {got:?}"
        );
        match s.read(*offset) {
            Slice::Data(d) => {
                *offset += d.len() as u64;
                got.extend(d);
            }
            _ => {
                let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
            }
        }
    }
    got
}
