//! What the screen model costs (issue: throughput may drop by at most 10 %, memory per idle
//! session ≤ 1 MB plus scrollback): PTY throughput of a real `peer host` and `peer attach`
//! with and without the model's follower (`PEER_BENCH_NO_SCREEN_MODEL`, a benchmark-only
//! switch), and the host's resident memory with 0, 10 and 50 idle shells. Benchmarks: run
//! with `--ignored --nocapture`; numbers in docs/benchmarks.md.

use std::time::{Duration, Instant};

use peer_testkit::*;

fn host(model: bool) -> (TestHost, TestClient) {
    let env: Vec<(&str, std::ffi::OsString)> = if model {
        vec![]
    } else {
        vec![("PEER_BENCH_NO_SCREEN_MODEL", "1".into())]
    };
    let home = tempfile::tempdir().expect("tempdir");
    let mut host = TestHost::start_in_env(home, &["--listen", "127.0.0.1"], &env);
    let client = TestClient::new();
    pair(&mut host, &client, "bench");
    (host, client)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore]
fn bench_pty_throughput_with_and_without_the_screen_model() {
    let mb: u64 = std::env::var("PEER_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let rounds: usize = std::env::var("PEER_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let hosts = [host(true), host(false)];
    let mut rates = [Vec::new(), Vec::new()];
    let cmd = format!("yes | head -c {}", mb * 1_000_000);
    for _ in 0..rounds {
        for (i, (_, client)) in hosts.iter().enumerate() {
            let t = Instant::now();
            let mut a = client.spawn(&["attach", "--new", "--replay", "0", "--", "sh", "-c", &cmd]);
            assert_eq!(a.wait_exit(Duration::from_secs(600)), 0, "{}", a.stderr());
            let secs = t.elapsed().as_secs_f64();
            let got = a.out.lock().expect("lock").len() as f64;
            // The PTY turns each \n into \r\n.
            assert!(got >= (mb * 1_000_000) as f64, "only {got} bytes");
            rates[i].push(got / secs / 1e6);
        }
    }
    let (with, without) = (median(rates[0].clone()), median(rates[1].clone()));
    eprintln!(
        "PTY throughput, `{cmd}` through `peer attach --new` ({rounds} rounds, medians): \
         with the screen model {with:.1} MB/s {:?}, without {without:.1} MB/s {:?}: {:+.1} %",
        rates[0],
        rates[1],
        (with / without - 1.0) * 100.0
    );
}

#[test]
#[ignore]
fn bench_host_memory_per_idle_session() {
    for model in [true, false] {
        let (host, client) = host(model);
        let mut points = Vec::new();
        let mut n = 0;
        for target in [0, 10, 50] {
            while n < target {
                client.ok(&[
                    "new",
                    "--",
                    "sh",
                    "-c",
                    "printf 'ready\\n$ '; exec sleep 100000",
                ]);
                n += 1;
            }
            std::thread::sleep(Duration::from_secs(3));
            points.push((n, peer_testkit::vm_rss_kib(host.pid())));
        }
        let per = |a: (i32, u64), b: (i32, u64)| (b.1 as f64 - a.1 as f64) / f64::from(b.0 - a.0);
        eprintln!(
            "host RSS, screen model {}: {:?} (sessions, kB); per session 0→10: {:.0} kB, \
             10→50: {:.0} kB",
            if model { "on" } else { "off" },
            points,
            per(points[0], points[1]),
            per(points[1], points[2])
        );
    }
}
