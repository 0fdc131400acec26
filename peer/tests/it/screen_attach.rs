//! Attaching with a picture of the screen (`Attach.screen`, `Repaint`) against an in-process
//! host over a browser socket (the attach logic is the same for native streams): the picture
//! plus the live bytes after it show exactly the screen that the whole byte stream shows, and
//! a client that asks from before the buffer gets a picture instead of a gap.

use std::time::{Duration, Instant};

use peer::proto::{Attach, Frame, Repaint, ScreenRequest, WinSize};
use peer::pty::screen::Screen;
use peer_testkit::browser::{BrowserClient, MessageTransport};
use peer_testkit::{WsBrowser, attach, browser_create_shell, input};

const SIZE: WinSize = WinSize {
    cols: 100,
    rows: 30,
};
const SCROLLBACK: u32 = 1000;

/// The frames of one channel as they come, kept apart from the others.
#[derive(Default)]
struct Chan {
    /// Output bytes, from the channel's first offset.
    out: Vec<u8>,
    /// A picture being joined, and the finished ones.
    parts: Vec<u8>,
    pictures: Vec<(Repaint, Vec<u8>)>,
    gaps: usize,
    attached: bool,
    /// The offset after the last output byte.
    reached: u64,
}

async fn pump<T: MessageTransport>(
    c: &mut BrowserClient<T>,
    chans: &mut [Chan; 5],
    mut done: impl FnMut(&[Chan; 5]) -> bool,
) {
    // Minutes for a big PEER_SCREEN_LINES in a debug build.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut pinged = Instant::now();
    while !done(chans) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (ch, frame) = tokio::time::timeout(left, c.recv())
            .await
            .expect("in time")
            .expect("frame");
        // The host closes a socket it has heard nothing from for 15 s.
        if pinged.elapsed() > Duration::from_secs(3) {
            c.send(0, &Frame::Ping(1)).await.expect("ping");
            pinged = Instant::now();
        }
        let Some(chan) = chans.get_mut(ch as usize) else {
            continue;
        };
        match frame {
            Frame::Output(o) => {
                chan.reached = o.offset + o.data.len() as u64;
                chan.out.extend_from_slice(&o.data);
            }
            Frame::Attached(_) => chan.attached = true,
            Frame::Gap(_) => chan.gaps += 1,
            Frame::Repaint(r) => {
                chan.parts.extend_from_slice(&r.data);
                if !r.more {
                    let data = std::mem::take(&mut chan.parts);
                    chan.pictures.push((r, data));
                }
            }
            _ => {}
        }
    }
}

fn has(b: &[u8], needle: &str) -> bool {
    peer_testkit::contains(b, needle.as_bytes())
}

fn screen_attach(session: u64, from_offset: u64, token: u64) -> Frame {
    Frame::Attach(Attach {
        session,
        from_offset,
        client_token: token,
        size: Some(SIZE),
        screen: Some(ScreenRequest {
            scrollback: SCROLLBACK,
        }),
        echo_acks: false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_and_the_bytes_after_it_show_what_the_whole_stream_shows() {
    // Lines of `seq` printed before attaching (PEER_SCREEN_LINES for a bigger history).
    let lines: u64 = std::env::var("PEER_SCREEN_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (_home, host) = peer_testkit::in_process_host_with(|cfg| cfg.buffer_bytes = 1 << 20).await;
    let (_b, mut c) = WsBrowser::pair(&host).await;
    let session = browser_create_shell(&mut c, &mut Vec::new(), 1).await;
    let mut chans: [Chan; 5] = Default::default();

    // Channel 1 follows every byte from the start.
    c.send(1, &attach(session, 0, 11)).await.expect("attach");
    pump(&mut c, &mut chans, |ch| ch[1].attached).await;
    let line = format!(
        "printf '\\033[1;32mgreen\\033[0m \\033]0;the title\\007'; seq 1 {lines}; echo DONE | tr A-Z a-z\r"
    );
    c.send(1, &input(1, line.as_bytes())).await.expect("type");
    let t = Instant::now();
    pump(&mut c, &mut chans, |ch| has(&ch[1].out, "\ndone\r\n")).await;
    let printed = chans[1].out.len();
    eprintln!("printed {printed} bytes in {:?}", t.elapsed(),);
    // The prompt after it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Channel 2 asks for the screen as it is now.
    let t = Instant::now();
    c.send(2, &screen_attach(session, u64::MAX, 22))
        .await
        .expect("attach");
    pump(&mut c, &mut chans, |ch| !ch[2].pictures.is_empty()).await;
    let took = t.elapsed();
    let (pic, data) = chans[2].pictures[0].clone();
    eprintln!(
        "picture of a session with {} bytes of output: {} bytes ({} frames' worth), {:?}",
        pic.offset,
        data.len(),
        data.len().div_ceil(peer::proto::MAX_REPAINT_CHUNK),
        took
    );
    assert_eq!(pic.skipped, 0, "nothing was asked for before now");
    assert_eq!(pic.size, SIZE);
    assert!(data.len() < 400_000, "picture of {} bytes", data.len());
    assert_eq!(chans[2].gaps, 0);

    // Channel 3 asks from offset 0, long gone from the 1 MiB buffer: a picture, no gap.
    c.send(3, &screen_attach(session, 0, 33))
        .await
        .expect("attach");
    pump(&mut c, &mut chans, |ch| !ch[3].pictures.is_empty()).await;
    let (pic3, data3) = chans[3].pictures[0].clone();
    assert_eq!(chans[3].gaps, 0);
    assert!(pic3.offset >= pic.offset);
    assert_eq!(
        pic3.skipped, pic3.offset,
        "everything before the picture was skipped"
    );
    assert!(chans[3].out.is_empty() || pic3.offset > pic.offset);

    // For comparison: the same attach as bytes (the old way), a gap and the whole buffer.
    let t = Instant::now();
    c.send(4, &attach(session, 0, 44)).await.expect("attach");
    pump(&mut c, &mut chans, |ch| ch[4].reached >= pic3.offset).await;
    assert_eq!(chans[4].gaps, 1);
    eprintln!(
        "the same attach as a replay of the 1 MiB buffer: {} bytes, {:?}",
        chans[4].out.len(),
        t.elapsed()
    );

    // Live output after the pictures, through all channels.
    c.send(
        1,
        &input(2, b"printf '\\033[7mrev\\033[0m'; echo HI | tr A-Z a-z\r"),
    )
    .await
    .expect("type");
    pump(&mut c, &mut chans, |ch| {
        ch[1..4].iter().all(|c| has(&c.out, "hi\r\n"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Whatever came after (the prompt) on every channel.
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        pump(&mut c, &mut chans, |_| false),
    )
    .await;

    let mut whole = Screen::new(SIZE, SCROLLBACK as usize);
    whole.feed(&chans[1].out);
    let reference = whole.snapshot(SCROLLBACK as usize);
    assert!(
        whole.text().contains(&format!("{lines}\ndone")),
        "{}",
        whole.text()
    );
    assert_eq!(whole.title(), Some("the title"));
    for (n, data) in [(2, &data), (3, &data3)] {
        let mut s = Screen::new(SIZE, SCROLLBACK as usize);
        s.feed(data);
        s.feed(&chans[n].out);
        assert_eq!(s.text(), whole.text(), "channel {n}");
        assert_eq!(s.cursor(), whole.cursor(), "channel {n}");
        assert_eq!(s.title(), whole.title(), "channel {n}");
        // Scrollback, pens and modes too.
        assert!(
            s.snapshot(SCROLLBACK as usize).data == reference.data,
            "channel {n}: the picture and the bytes after it differ from the whole stream"
        );
    }
    host.shutdown().await;
}

/// Benchmark (docs/benchmarks.md, "Attaching with a picture of the screen"): a real `peer host`
/// process (`PEER_BENCH_PEER`, e.g. a release build; the test's own binary if unset) runs a
/// session that prints `PEER_BENCH_HISTORY_MB` (default 1000) MB of `seq` lines with nobody
/// attached; then a browser asks for the screen with 1000 lines of scrollback. Prints the time
/// to the whole picture and its size, and for comparison the old way: a replay of the buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by hand (docs/benchmarks.md)"]
async fn bench_attach_after_history() {
    use peer::proto::{CreateSession, Reply, Request};
    use peer_testkit::{TestHost, browser_create, browser_request};
    let mb: u64 = std::env::var("PEER_BENCH_HISTORY_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let bin = std::env::var_os("PEER_BENCH_PEER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(peer_testkit::peer_binary);
    let bin = std::fs::canonicalize(&bin).expect("the peer binary");
    let dir = bin.parent().expect("its directory").to_owned();
    let host = TestHost::start_copy(&bin, &dir, tempfile::tempdir().expect("home"), &[]);
    let (_b, mut c) = WsBrowser::pair_url(&host.url).await;

    let bytes = mb * 1_000_000;
    let script = format!(
        "printf '\\033]0;the title\\007'; seq 1 1000000000 | head -c {bytes}; echo; echo DONE | tr A-Z a-z; exec sleep 3600"
    );
    let create = CreateSession {
        name: None,
        command: vec!["sh".into(), "-c".into(), script],
        cwd: None,
        env: vec![],
        size: SIZE,
        hold_output: false,
    };
    let session = browser_create(&mut c, &mut Vec::new(), 1, create).await;

    // Printed with nobody attached: wait for the session's last line (the host's model).
    let t = Instant::now();
    let mut id = 1;
    let info = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        id += 1;
        let Reply::Sessions(list) =
            browser_request(&mut c, &mut Vec::new(), id, Request::ListSessions).await
        else {
            panic!("not a list of sessions");
        };
        let info = list
            .into_iter()
            .find(|s| s.id == session)
            .expect("the session");
        if info.screen.last_line.as_deref() == Some("done") {
            break info;
        }
        assert!(t.elapsed() < Duration::from_secs(1800), "{info:?}");
    };
    let printed = t.elapsed();
    eprintln!(
        "printed {mb} MB of lines ({} bytes through the PTY) in {printed:?}: {:.1} MB/s, host VmRSS {} kB",
        info.output_end,
        info.output_end as f64 / printed.as_secs_f64() / 1e6,
        peer_testkit::vm_rss_kib(host.pid()),
    );

    let mut chans: [Chan; 5] = Default::default();
    let mut end = 0;
    for round in 0..5u64 {
        let ch = 1 + (round % 2) as usize;
        chans[ch] = Chan::default();
        let t = Instant::now();
        c.send(ch as u32, &screen_attach(session, u64::MAX, 100 + round))
            .await
            .expect("attach");
        pump(&mut c, &mut chans, |cs| !cs[ch].pictures.is_empty()).await;
        let took = t.elapsed();
        let (pic, data) = &chans[ch].pictures[0];
        eprintln!(
            "attach {}: the picture of a session with {} bytes of output in {took:?}: {} bytes",
            round + 1,
            pic.offset,
            data.len()
        );
        assert!(pic.offset >= bytes);
        // The issue's bound on what an attach sends, whatever the history.
        assert!(data.len() < 100_000, "a picture of {} bytes", data.len());
        end = pic.offset;
        let mut s = Screen::new(SIZE, SCROLLBACK as usize);
        s.feed(data);
        assert!(s.text().contains("\ndone"), "{}", s.text());
        c.send(ch as u32, &Frame::Detach).await.expect("detach");
    }

    // The old way: a replay of the whole buffer.
    let t = Instant::now();
    c.send(4, &attach(session, 0, 444)).await.expect("attach");
    pump(&mut c, &mut chans, |cs| cs[4].reached >= end).await;
    assert!(has(&chans[4].out, "\ndone\r\n"));
    eprintln!(
        "the same attach as a replay of the buffer: {} bytes in {:?}",
        chans[4].out.len(),
        t.elapsed()
    );
}
