//! A session's output buffer and attachments, with a real process on a real PTY.

use super::testing::{read_until, shell, spawn};
use super::*;

fn flood(hold_output: bool) -> Arc<PtySession> {
    spawn(
        &["head", "-c", "200000", "/dev/zero"],
        hold_output,
        16 * 1024,
    )
}

/// Reads everything from `offset` on as an attached stream would, until the process ends.
async fn drain(s: &Arc<PtySession>, guard: &AttachGuard, mut offset: u64) -> Vec<u8> {
    let mut rx = s.subscribe();
    let mut got = Vec::new();
    loop {
        match s.read(offset) {
            Slice::Data(d) => {
                offset += d.len() as u64;
                got.extend(d);
                guard.advance(offset);
            }
            Slice::Gap { start } => panic!("output lost before {start}"),
            Slice::Empty if s.exit().is_some() => return got,
            Slice::Empty => {
                let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
            }
        }
    }
}

#[tokio::test]
async fn held_output_waits_for_the_creators_first_attachment() {
    let s = flood(true);
    // Far longer than `head` needs to overflow a 16 KiB buffer, far shorter than LAG_GRACE.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.bounds().0, 0, "the first byte is still held");
    let guard = s.attach_guard(0, 1);
    assert_eq!(drain(&s, &guard, 0).await, vec![0u8; 200_000]);
}

#[tokio::test]
async fn a_parked_place_holds_the_process_and_is_taken_over() {
    // Held until the first attachment, so the flood cannot outrun the attach below.
    let s = flood(true);
    let guard = s.attach_guard(0, 7);
    // The client vanishes at once; its place is kept.
    guard.park(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.bounds().0,
        0,
        "nothing the parked client missed was dropped"
    );
    assert_eq!(s.info().attached, 0, "a parked place is not an attachment");
    assert_eq!(s.parked(), 1);
    // The same client comes back and reads everything.
    let guard = s.attach_guard(0, 7);
    assert_eq!(s.parked(), 0);
    assert_eq!(drain(&s, &guard, 0).await, vec![0u8; 200_000]);
}

#[tokio::test]
async fn a_client_that_moved_to_a_new_stream_leaves_no_place_behind() {
    // Held until the first attachment, so the flood cannot outrun the attach below.
    let s = flood(true);
    let old = s.attach_guard(0, 7);
    // The same client attaches again (a fresh socket) before the old stream ends...
    let new = s.attach_guard(0, 7);
    // ...and the old one then vanishes: nothing is kept for it.
    old.park(Duration::from_secs(60));
    assert_eq!(s.parked(), 0);
    assert_eq!(drain(&s, &new, 0).await, vec![0u8; 200_000]);
}

#[tokio::test]
async fn a_parked_place_expires_and_the_process_runs_on() {
    let s = flood(false);
    let guard = s.attach_guard(0, 7);
    guard.park(Duration::from_millis(300));
    let mut rx = s.subscribe();
    let t0 = std::time::Instant::now();
    while s.exit().is_none() {
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        assert!(t0.elapsed() < Duration::from_secs(20), "still held");
    }
    assert_eq!(s.bounds(), (200_000 - 16 * 1024, 200_000));
    assert_eq!(s.parked(), 0);
}

#[tokio::test]
async fn without_hold_a_detached_session_runs_freely() {
    let s = flood(false);
    let mut rx = s.subscribe();
    while s.exit().is_none() {
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
    assert_eq!(s.bounds(), (200_000 - 16 * 1024, 200_000));
}

/// The guard against thread hops on the keystroke path: each keystroke typed into `cat` is
/// written to the PTY by the task that received it, and its echo is read into the buffer by a
/// task, both on this test's runtime, whose only thread is this one. A change that moves either
/// side to a thread of its own (or queues keystrokes for another task) fails here.
#[tokio::test(flavor = "current_thread")]
async fn a_keystroke_and_its_echo_cross_no_thread() {
    let s = shell("stty raw -echo; printf READY; exec cat");
    let mut offset = 0;
    read_until(&s, &mut offset, b"READY").await;
    let before = std::mem::take(&mut *s.io.probe.lock());
    for seq in 1..=50u64 {
        assert!(s.write_input(1, seq, b"x".to_vec()).await);
        assert_eq!(read_until(&s, &mut offset, b"x").await, b"x");
    }
    let probe = s.io.probe.lock();
    let here = std::thread::current().id();
    assert_eq!(before.queued, 0);
    assert_eq!(
        (probe.direct, probe.queued),
        (50, 0),
        "every keystroke written at once"
    );
    assert_eq!(probe.write_threads, [here].into(), "written on this thread");
    assert_eq!(
        probe.read_threads,
        [here].into(),
        "echo read on this thread"
    );
}

/// Input to a program that does not read it waits (for the PTY, then in a bounded queue, then
/// in `write_input`), keeps its order, and arrives whole once the program reads.
#[tokio::test]
async fn input_waits_for_a_program_that_does_not_read() {
    let s = shell("stty raw -echo; printf READY; sleep 1; head -c 300000 | wc -c");
    let mut offset = 0;
    read_until(&s, &mut offset, b"READY").await;
    let t0 = std::time::Instant::now();
    for seq in 1..=30u64 {
        assert!(s.write_input(1, seq, vec![b'a'; 10_000]).await);
    }
    // 300 kB is far more than the PTY and the queue hold: the last writes waited for `head`.
    assert!(
        t0.elapsed() > Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert!(s.io.probe.lock().queued > 0);
    read_until(&s, &mut offset, b"300000").await;
}

/// A picture taken right after a resize is drawn for the new size, also when no output has
/// come since (a resize is news for the screen model too, which the picture waits for).
#[tokio::test]
async fn a_picture_right_after_a_resize_is_drawn_for_the_new_size() {
    let s = shell("printf READY; sleep 30");
    let mut offset = 0;
    read_until(&s, &mut offset, b"READY").await;
    for i in 0..60u16 {
        let size = WinSize {
            cols: 40 + i,
            rows: 20 + i % 7,
        };
        s.resize(size);
        let (guard, snap) = s.attach_screen(u64::from(i) + 1, 10).expect("a picture");
        assert_eq!(snap.size, size, "resize {i}");
        drop(guard);
    }
}
