//! Real `peer` binaries with their own state directories on loopback.

use std::io::{BufRead, BufReader, Read, Write};

use crate::browser::BrowserClient;
use peer::proto::Frame;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace's binary `name` of `package` in the target directory this test runs from
/// (`target/debug`), built first if it is missing (a test run on its own).
pub fn binary(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/TEST-HASH → target/debug/NAME
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join(name);
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", package, "--bin", name])
            .status()
            .unwrap_or_else(|e| panic!("cargo build {name}: {e}"))
            .success();
        assert!(ok, "building {name} failed");
    }
    bin
}

/// The `peer` binary.
pub fn peer_binary() -> PathBuf {
    static PEER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PEER.get_or_init(|| binary("peer", "peer")).clone()
}

/// The `peer-relay` binary.
pub fn relay_binary() -> PathBuf {
    binary("peer-relay", "peer-relay")
}

/// The scripted ACP agent (`peer-fake-agent`).
pub fn fake_agent_binary() -> PathBuf {
    binary("peer-fake-agent", "peer-testkit")
}

/// The scripted stand-in for a model server (`peer-fake-model`).
pub fn fake_model_binary() -> PathBuf {
    binary("peer-fake-model", "peer-testkit")
}

fn base_cmd(home: &Path) -> Command {
    bin_cmd(&peer_binary(), home)
}

fn bin_cmd(bin: &Path, home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("PEER_HOME", home).env("PEER_KEY_STORE", "file");
    // Client commands log as a user's do (to their log file, nothing on the terminal) unless
    // TEST_RUST_LOG asks for more; hosts log warnings to stderr (see `TestHost::start_in`).
    match std::env::var("TEST_RUST_LOG") {
        Ok(filter) => c.env("RUST_LOG", filter),
        Err(_) => c.env_remove("RUST_LOG"),
    };
    c.env_remove("XDG_STATE_HOME").env_remove("PEER_WEB_ROOT");
    c
}

/// A `peer host` process; SIGTERM and wait on drop.
pub struct TestHost {
    pub home: tempfile::TempDir,
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    new_line: mpsc::Receiver<String>,
    pub url: String,
    args: Vec<String>,
    env: Vec<(String, std::ffi::OsString)>,
    /// The binary and the directory it runs in (`None`: `peer_binary()`, the test's own).
    bin: Option<(PathBuf, PathBuf)>,
}

impl TestHost {
    pub fn start(args: &[&str]) -> TestHost {
        let home = tempfile::tempdir().expect("tempdir");
        Self::start_in(home, args)
    }

    pub fn start_in(home: tempfile::TempDir, args: &[&str]) -> TestHost {
        Self::start_in_env(home, args, &[])
    }

    /// [`TestHost::start_in`] with extra environment variables for the host process (and so
    /// for the agents it starts); a restart keeps them.
    pub fn start_in_env(
        home: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, std::ffi::OsString)],
    ) -> TestHost {
        Self::start_binary(None, home, args, env)
    }

    /// `bin host ARGS` run in directory `cwd`, e.g. a copy of the binary alone somewhere.
    pub fn start_copy(bin: &Path, cwd: &Path, home: tempfile::TempDir, args: &[&str]) -> TestHost {
        Self::start_binary(Some((bin.to_owned(), cwd.to_owned())), home, args, &[])
    }

    fn start_binary(
        bin: Option<(PathBuf, PathBuf)>,
        home: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, std::ffi::OsString)],
    ) -> TestHost {
        let mut cmd = match &bin {
            Some((bin, cwd)) => {
                let mut cmd = bin_cmd(bin, home.path());
                cmd.current_dir(cwd);
                cmd
            }
            None => base_cmd(home.path()),
        };
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.env(
            "RUST_LOG",
            std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        );
        cmd.arg("host");
        if !args.contains(&"--listen") {
            cmd.arg("--listen").arg("127.0.0.1");
        }
        cmd.args(args);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null());
        let mut child = spawn(&mut cmd).expect("spawn peer host");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                l2.lock().expect("lock").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut host = TestHost {
            home,
            child,
            lines,
            new_line: rx,
            url: String::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            bin,
        };
        if !args.contains(&"--no-pairing") {
            let line = host.wait_line("pairing URL: ", Duration::from_secs(30));
            host.url = line.trim_start_matches("pairing URL: ").trim().to_string();
        } else {
            host.wait_line("relay: ", Duration::from_secs(30));
        }
        host
    }

    /// Waits for a stdout line containing `needle`.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(l) = self
            .lines
            .lock()
            .expect("lock")
            .iter()
            .find(|l| l.contains(needle))
        {
            return l.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.new_line.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "host never printed {needle:?}; it printed:\n{}",
                    self.lines.lock().expect("lock").join("\n")
                ),
            }
        }
    }

    /// Runs `peer ARGS` with the host's state directory (the CLI on the host machine).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = match &self.bin {
            Some((bin, cwd)) => {
                let mut cmd = bin_cmd(bin, self.home.path());
                cmd.current_dir(cwd);
                cmd
            }
            None => base_cmd(self.home.path()),
        };
        run(cmd.args(args))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, wait, and start again in the same state directory.
    pub fn restart(mut self, extra: &[&str]) -> TestHost {
        self.stop();
        self.start_again(extra)
    }

    /// SIGTERM, wait, run `between` (replace the binary, say), and start again in the same
    /// state directory.
    pub fn stop_then(mut self, between: impl FnOnce(), extra: &[&str]) -> TestHost {
        self.stop();
        between();
        self.start_again(extra)
    }

    /// SIGKILL (no goodbye to anyone), wait, and start again in the same state directory.
    pub fn crash_restart(mut self, extra: &[&str]) -> TestHost {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.start_again(extra)
    }

    /// SIGTERM, wait, and start again in the same state directory with `args` instead of the
    /// ones it had (other ports, other relays, another relay token).
    pub fn restart_with(mut self, args: &[&str]) -> TestHost {
        self.stop();
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.start_again(&[])
    }

    fn start_again(mut self, extra: &[&str]) -> TestHost {
        let home = std::mem::replace(&mut self.home, tempfile::tempdir().expect("tempdir"));
        let mut args: Vec<&str> = self.args.iter().map(|s| s.as_str()).collect();
        args.extend_from_slice(extra);
        let env: Vec<(&str, std::ffi::OsString)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        TestHost::start_binary(self.bin.take(), home, &args, &env)
    }

    /// The UDP address of the host's QUIC socket (from the ports it saved).
    pub fn udp_addr(&self, ip: std::net::IpAddr) -> std::net::SocketAddr {
        let ports: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.home.path().join("host/ports.json")).expect("ports.json"),
        )
        .expect("ports.json is json");
        let port = ports["udp"].as_u64().expect("udp port") as u16;
        std::net::SocketAddr::new(ip, port)
    }

    pub fn stop(&mut self) {
        assert!(
            terminate(&mut self.child, Duration::from_secs(10)),
            "peer host did not stop within 10 s of SIGTERM"
        );
    }

    /// A fresh pairing URL from `peer pair` on the host machine, made the current one.
    pub fn fresh_url(&mut self) -> String {
        let out = self.cli(&["pair", "--no-wait"]);
        self.url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("pairing URL: ").map(str::to_owned))
            .expect("pairing URL from `peer pair` on the host");
        self.url.clone()
    }
}

/// A process's resident memory (`VmRSS`), KiB; 0 if it cannot be read (the process is gone).
pub fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// SIGTERM, then SIGKILL if the process has not exited within `grace`; whether it exited.
fn terminate(child: &mut Child, grace: Duration) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return true;
    }
    signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

impl Drop for TestHost {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// `cmd.spawn()`, waiting out `ETXTBSY`: a binary copied by this test process is briefly held
/// open for writing by children that other test threads fork meanwhile (until they exec).
pub fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match cmd.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn peer");
    wait_output(child, Duration::from_secs(60))
}

fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "command timed out; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A client state directory.
pub struct TestClient {
    pub home: tempfile::TempDir,
}

impl TestClient {
    pub fn new() -> TestClient {
        TestClient {
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        run(base_cmd(self.home.path()).args(args))
    }

    /// `peer ARGS` as a person runs it: without `RUST_LOG`.
    pub fn cli_quiet(&self, args: &[&str]) -> Output {
        run(base_cmd(self.home.path()).env_remove("RUST_LOG").args(args))
    }

    /// `peer ARGS`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "peer {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn hosts_file(&self) -> PathBuf {
        self.home.path().join("client/hosts.json")
    }

    /// Starts `peer ARGS` with piped stdin/stdout for an interactive attach.
    pub fn spawn(&self, args: &[&str]) -> Interactive {
        Interactive::start(self.home.path(), args)
    }

    /// Starts `peer ARGS` reading `stdin` (a pipe or a terminal the test keeps an end of),
    /// stdout and stderr piped.
    pub fn spawn_reading(&self, args: &[&str], stdin: Stdio) -> Interactive {
        Interactive::start_with(self.home.path(), args, stdin)
    }
}

impl TestHost {
    /// Starts `peer ARGS` with the host's state directory (the CLI on the host machine), with
    /// piped stdin/stdout for an interactive attach.
    pub fn spawn_cli(&self, args: &[&str]) -> Interactive {
        Interactive::start(self.home.path(), args)
    }
}

impl Interactive {
    fn start(home: &Path, args: &[&str]) -> Interactive {
        Interactive::start_with(home, args, Stdio::piped())
    }

    fn start_with(home: &Path, args: &[&str], stdin: Stdio) -> Interactive {
        let mut child = base_cmd(home)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn peer");
        let stdin = child.stdin.take();
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let (mut so, mut se) = (
            child.stdout.take().expect("stdout"),
            child.stderr.take().expect("stderr"),
        );
        let (o2, e2) = (out.clone(), err.clone());
        let readers = vec![
            std::thread::spawn(move || pump(&mut so, &o2)),
            std::thread::spawn(move || pump(&mut se, &e2)),
        ];
        Interactive {
            child,
            stdin,
            out,
            err,
            readers,
        }
    }
}

fn pump(r: &mut impl Read, into: &Mutex<Vec<u8>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => into.lock().expect("lock").extend_from_slice(&buf[..n]),
        }
    }
}

/// An interactive `peer` process.
pub struct Interactive {
    pub child: Child,
    stdin: Option<ChildStdin>,
    pub out: Arc<Mutex<Vec<u8>>>,
    pub err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Interactive {
    /// Sends signal `sig` (`INT`, `TERM`, …) to the process.
    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// Closes its standard input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_err(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "never saw {needle:?} on stderr; stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    pub fn type_str(&mut self, s: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(s.as_bytes()).expect("write stdin");
        stdin.flush().expect("flush");
    }

    pub fn stdout_len(&self) -> usize {
        self.out.lock().expect("lock").len()
    }

    /// Waits until at least `n` bytes of stdout arrived.
    pub fn wait_len(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.stdout_len() < n {
            assert!(
                Instant::now() < deadline,
                "stream never reached {n} bytes: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().expect("lock")).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().expect("lock")).into_owned()
    }

    /// Waits until stdout contains `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        self.wait_for_after(0, needle, timeout);
    }

    /// Waits until stdout's bytes from offset `from` on contain `needle`.
    pub fn wait_for_after(&self, from: usize, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let out = self.out.lock().expect("lock");
            if out
                .get(from..)
                .is_some_and(|o| crate::proxy::contains(o, needle.as_bytes()))
            {
                return;
            }
            drop(out);
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = self.out.lock().expect("lock");
        panic!(
            "never saw {needle:?}; stdout{}:\n{}\nstderr:\n{}",
            if from > 0 {
                format!(" from byte {from}")
            } else {
                String::new()
            },
            String::from_utf8_lossy(out.get(from..).unwrap_or_default()),
            self.stderr()
        );
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "peer did not exit; stdout tail:\n{}\nstderr:\n{}",
                    self.stdout()
                        .chars()
                        .rev()
                        .take(500)
                        .collect::<String>()
                        .chars()
                        .rev()
                        .collect::<String>(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pairs `client` with `host`, checks both show the same short code, returns it.
pub fn pair(host: &mut TestHost, client: &TestClient, name: &str) -> String {
    pair_with(host, client, name, &[])
}

/// [`pair`] with global flags for the client (e.g. `--relay-only`).
pub fn pair_with(host: &mut TestHost, client: &TestClient, name: &str, flags: &[&str]) -> String {
    let url = host.url.clone();
    let mut args = flags.to_vec();
    args.extend_from_slice(&["pair", &url, "--name", name]);
    let out = client.ok(&args);
    let code = short_code(&out).unwrap_or_else(|| panic!("no short code in {out:?}"));
    let line = host.wait_line(&format!("paired {name} "), Duration::from_secs(10));
    assert_eq!(
        short_code(&line).as_deref(),
        Some(code.as_str()),
        "host line: {line}"
    );
    code
}

/// The "NNN NNN" after "short code " in a line.
pub fn short_code(s: &str) -> Option<String> {
    let i = s.find("short code ")? + "short code ".len();
    let code: String = s[i..].chars().take(7).collect();
    let ok = code.len() == 7
        && code
            .chars()
            .enumerate()
            .all(|(j, c)| if j == 3 { c == ' ' } else { c.is_ascii_digit() });
    ok.then_some(code)
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free TCP port")
        .port()
}

/// `seq 1 n` as a PTY shows it (newlines become CR LF).
pub fn seq_pty_output(n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 1..=n {
        v.extend_from_slice(i.to_string().as_bytes());
        v.extend_from_slice(b"\r\n");
    }
    v
}

pub fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Reads frames until `pred` is true, collecting output on the way; `pred` sees the channel
/// and frame just read (`None` after output) and all output so far. Returns the last
/// non-output frame read, if any.
pub async fn until<T: crate::browser::MessageTransport>(
    c: &mut BrowserClient<T>,
    out: &mut Vec<u8>,
    mut pred: impl FnMut(Option<(u32, &Frame)>, &[u8]) -> bool,
) -> Option<(u32, Frame)> {
    loop {
        let (channel, frame) = tokio::time::timeout(Duration::from_secs(20), c.recv())
            .await
            .expect("timely message")
            .expect("message");
        match frame {
            Frame::Output(o) => {
                out.extend_from_slice(&o.data);
                if pred(None, out) {
                    return None;
                }
            }
            frame => {
                if pred(Some((channel, &frame)), out) {
                    return Some((channel, frame));
                }
            }
        }
    }
}

/// A request frame.
pub fn request(id: u32, request: peer::proto::Request) -> Frame {
    Frame::Request(peer::proto::RequestFrame { id, request })
}

/// Keystrokes.
pub fn input(seq: u64, data: &[u8]) -> Frame {
    Frame::Input(peer::proto::Input {
        seq,
        data: data.to_vec(),
    })
}

/// An attach frame with no size.
pub fn attach(session: u64, from_offset: u64, client_token: u64) -> Frame {
    Frame::Attach(peer::proto::Attach {
        session,
        from_offset,
        client_token,
        size: None,
        screen: None,
        echo_acks: false,
    })
}

/// Whether a frame is the host's hello.
pub fn is_hello(m: Option<(u32, &Frame)>) -> bool {
    matches!(m, Some((0, Frame::HostHello(_))))
}

/// Sends `req` on channel 0 as request `id` and returns its reply (panics on an error).
pub async fn browser_request<T: crate::browser::MessageTransport>(
    c: &mut BrowserClient<T>,
    out: &mut Vec<u8>,
    id: u32,
    req: peer::proto::Request,
) -> peer::proto::Reply {
    use peer::proto::ResponseFrame;
    c.send(0, &request(id, req)).await.expect("send request");
    let answer = until(
        c,
        out,
        |m, _| matches!(m, Some((0, Frame::Response(r))) if r.id == id),
    )
    .await;
    match answer {
        Some((_, Frame::Response(ResponseFrame { result: Ok(r), .. }))) => r,
        other => panic!("request {id} failed: {other:?}"),
    }
}

/// Creates a session of `create` and returns its id.
pub async fn browser_create<T: crate::browser::MessageTransport>(
    c: &mut BrowserClient<T>,
    out: &mut Vec<u8>,
    id: u32,
    create: peer::proto::CreateSession,
) -> u64 {
    use peer::proto::{Reply, Request};
    match browser_request(c, out, id, Request::CreateSession(create)).await {
        Reply::Created(info) => info.id,
        other => panic!("create failed: {other:?}"),
    }
}

/// Creates a `sh` session (100×30, output held for the first attach) and returns its id.
pub async fn browser_create_shell<T: crate::browser::MessageTransport>(
    c: &mut BrowserClient<T>,
    out: &mut Vec<u8>,
    id: u32,
) -> u64 {
    use peer::proto::{CreateSession, WinSize};
    let create = CreateSession {
        name: None,
        command: vec!["sh".into()],
        cwd: None,
        env: vec![],
        size: WinSize {
            cols: 100,
            rows: 30,
        },
        hold_output: true,
    };
    browser_create(c, out, id, create).await
}

/// Attaches channel 1 to `session` with `token` and proves the shell live: `marker`, typed
/// through `tr A-Z a-z`, comes back in lower case (so the echo of the typing does not count).
pub async fn browser_attach_and_echo<T: crate::browser::MessageTransport>(
    b: &mut BrowserClient<T>,
    out: &mut Vec<u8>,
    session: u64,
    token: u64,
    marker: &str,
) {
    b.send(1, &attach(session, 0, token)).await.expect("attach");
    until(b, out, |m, _| matches!(m, Some((1, Frame::Attached(_))))).await;
    let line = format!("echo {marker} | tr A-Z a-z\r");
    b.send(1, &input(1, line.as_bytes())).await.expect("type");
    let want = marker.to_lowercase().into_bytes();
    until(b, out, |_, o| crate::proxy::contains(o, &want)).await;
}

/// Starts `peer host` in this process (file keys, loopback) in a fresh state directory.
pub async fn in_process_host() -> (tempfile::TempDir, peer::host::Host) {
    in_process_host_with(|_| {}).await
}

/// [`in_process_host`], with the config adjusted by `f` first.
pub async fn in_process_host_with(
    f: impl FnOnce(&mut peer::host::HostConfig),
) -> (tempfile::TempDir, peer::host::Host) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut cfg = peer::host::HostConfig::new(peer::paths::Paths::at(home.path().to_path_buf()));
    cfg.listen = "127.0.0.1".parse().expect("ip");
    cfg.file_keys = true;
    f(&mut cfg);
    let host = peer::host::Host::start(cfg).await.expect("host");
    (home, host)
}

/// A fresh endpoint (new key, no relay) on a loopback port, for tests that speak to a host's
/// ALPNs directly.
pub async fn loopback_endpoint() -> iroh::Endpoint {
    peer::net::bind_endpoint(peer::net::EndpointOptions {
        secret: iroh::SecretKey::generate(),
        relays: vec![],
        bind: Some("127.0.0.1:0".parse().expect("addr")),
        relay_only: false,
        alpns: vec![],
    })
    .await
    .expect("endpoint")
}

/// Dials the in-process `host` directly on `alpn` from a fresh [`loopback_endpoint`].
pub async fn dial_direct(
    host: &peer::host::Host,
    alpn: &[u8],
) -> (iroh::Endpoint, iroh::endpoint::Connection) {
    let endpoint = loopback_endpoint().await;
    let addrs: Vec<_> = host
        .status()
        .direct_addrs
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let addr = peer::net::dial_addr(host.endpoint_id(), &[], &addrs, false);
    let conn = endpoint.connect(addr, alpn).await.expect("connect");
    (endpoint, conn)
}

/// A browser paired over the host's own front (WebSocket), able to open new sockets.
pub struct WsBrowser {
    pub payload: peer_pairing::PairingPayload,
    pub key: peer_pairing::NoiseKeypair,
    pub psk: [u8; 32],
    pub url: String,
}

impl WsBrowser {
    /// Pairs a new browser with `host` and reads its hello.
    pub async fn pair(
        host: &peer::host::Host,
    ) -> (WsBrowser, BrowserClient<crate::browser::WsTransport>) {
        let (pairing_url, _) = host
            .pairing_url(peer::proto::Role::Operator, Duration::from_secs(60))
            .expect("url");
        Self::pair_url(&pairing_url).await
    }

    /// Pairs a new browser through the pairing URL of a host (a `peer host` process's, say).
    pub async fn pair_url(
        pairing_url: &str,
    ) -> (WsBrowser, BrowserClient<crate::browser::WsTransport>) {
        let payload = peer_pairing::PairingPayload::from_url(pairing_url).expect("payload");
        let base = pairing_url.split('#').next().expect("base");
        let url = format!(
            "{}bridge/{}",
            base.replacen("http://", "ws://", 1),
            hex::encode(payload.host_id)
        );
        let key = peer_pairing::NoiseKeypair::generate();
        let t = crate::browser::WsTransport::connect(&url)
            .await
            .expect("ws");
        let (mut c, paired) = BrowserClient::pair(t, &payload, &key, "phone")
            .await
            .expect("pair");
        until(&mut c, &mut Vec::new(), |m, _| is_hello(m)).await;
        let b = WsBrowser {
            payload,
            key,
            psk: paired.device_psk,
            url,
        };
        (b, c)
    }

    /// A new socket of this paired browser, past its hello.
    pub async fn connect(&self) -> BrowserClient<crate::browser::WsTransport> {
        let t = crate::browser::WsTransport::connect(&self.url)
            .await
            .expect("ws");
        let mut c = BrowserClient::connect(
            t,
            &self.payload.host_id,
            &self.payload.host_noise_key,
            &self.key,
            &self.psk,
        )
        .await
        .expect("connect");
        until(&mut c, &mut Vec::new(), |m, _| is_hello(m)).await;
        c
    }
}
