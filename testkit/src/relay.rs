//! A real `peer-relay` process on loopback: its addresses from what it prints, its metrics, and
//! ways to end it (SIGKILL for a relay that dies, SIGHUP to reload its tokens).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{relay_binary, signal};

/// A `peer-relay` process; killed on drop.
pub struct RelayProcess {
    child: Child,
    /// Where its plain-HTTP listener is.
    pub http_addr: std::net::SocketAddr,
    /// Its HTTPS URL, when it serves HTTPS (`--dev-tls`).
    pub https_url: Option<String>,
    /// The SHA-256 fingerprint of its self-signed certificate, when `--dev-tls`.
    pub fingerprint: Option<String>,
    /// A directory of its own (tokens file, dev certificate), kept while it runs.
    pub dir: tempfile::TempDir,
}

impl RelayProcess {
    /// `peer-relay --http-bind 127.0.0.1:0 ARGS…` (plain HTTP, open access unless `args` say
    /// otherwise).
    pub fn start(args: &[&str]) -> RelayProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, args)
    }

    /// [`Self::start`] in token mode with `tokens` in its tokens file, HTTPS with a self-signed
    /// certificate (kept in its directory) beside the plain-HTTP listener.
    pub fn start_token_mode(tokens: &[&str]) -> RelayProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        write_tokens(&dir.path().join("tokens"), tokens);
        let tokens_file = dir.path().join("tokens").display().to_string();
        let tls_dir = dir.path().join("tls").display().to_string();
        Self::start_in(
            dir,
            &[
                "--https-bind",
                "127.0.0.1:0",
                "--dev-tls",
                "--dev-tls-dir",
                &tls_dir,
                "--quic-bind",
                "off",
                "--access",
                "token",
                "--tokens-file",
                &tokens_file,
            ],
        )
    }

    fn start_in(dir: tempfile::TempDir, args: &[&str]) -> RelayProcess {
        let mut child = Command::new(relay_binary())
            .args(["--http-bind", "127.0.0.1:0", "--allow-root"])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn peer-relay");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let https = args.contains(&"--dev-tls");
        let (mut http_addr, mut https_url, mut fingerprint) = (None, None, None);
        while http_addr.is_none() || (https && (https_url.is_none() || fingerprint.is_none())) {
            let line = lines
                .next()
                .expect("peer-relay printed its addresses")
                .expect("line");
            if let Some(u) = line.strip_prefix("relay URL: ") {
                match u.trim().strip_prefix("http://") {
                    Some(rest) => {
                        http_addr = Some(
                            rest.trim_end_matches('/')
                                .parse()
                                .expect("http address of the relay"),
                        )
                    }
                    None => https_url = Some(u.trim().to_owned()),
                }
            }
            if let Some(f) = line.strip_prefix("self-signed certificate, SHA-256 fingerprint: ") {
                fingerprint = Some(f.trim().to_owned());
            }
        }
        // Keep draining stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        RelayProcess {
            child,
            http_addr: http_addr.expect("http address"),
            https_url,
            fingerprint,
            dir,
        }
    }

    /// Its plain-HTTP relay URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.http_addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and wait: the relay dies with every connection, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Replaces the tokens in its tokens file and reloads (SIGHUP); waits until the reload
    /// took effect (the relay logs nothing we can wait for, so a short pause).
    pub fn set_tokens(&self, tokens: &[&str]) {
        write_tokens(&self.tokens_file(), tokens);
        signal(self.pid(), "HUP");
        std::thread::sleep(Duration::from_millis(500));
    }

    /// The tokens file of a relay started with [`Self::start_token_mode`].
    pub fn tokens_file(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// Its Prometheus text (loopback may read it).
    pub fn metrics(&self) -> String {
        let mut s = std::net::TcpStream::connect(self.http_addr).expect("connect metrics");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    }

    /// One metric's value (0 if absent).
    pub fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn write_tokens(path: &Path, tokens: &[&str]) {
    let mut text = String::new();
    for t in tokens {
        text.push_str(t);
        text.push('\n');
    }
    std::fs::write(path, text).expect("tokens file");
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
