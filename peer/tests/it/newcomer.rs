//! The newcomer's path: a fresh clone, the README's one-line run command, a phone's scan.
//!
//! The `peer` binary this test run built (from this tree, as the README's command builds it) is
//! copied alone into an empty directory — as `cargo install` or a copy to another machine
//! leaves it — and started there with the README's arguments: the web app that pairing links
//! open must come from inside the binary. Then a phone's first requests (the page, a script,
//! the manifest) and its pairing go to the pairing URL's origin. The same for `peer-relay`:
//! alone, it serves the app too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use peer_pairing::{NoiseKeypair, PairingPayload};
use peer_testkit::browser::{BrowserClient, WsTransport};
use peer_testkit::http::{HttpResponse, http_get};
use peer_testkit::*;

/// The command of the README's "Run it" block: its one line, split after `--`.
fn readme_run_args() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n## Run it\n")
        .nth(1)
        .expect("README has a \"## Run it\" section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("\"Run it\" starts with a ```sh block");
    let lines: Vec<&str> = block
        .lines()
        .map(|l| l.split(" #").next().unwrap_or(l).trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "\"Run it\" is one command: {lines:?}");
    let args = lines[0]
        .strip_prefix("cargo run --release -p peer -- ")
        .unwrap_or_else(|| panic!("\"Run it\" runs peer with cargo: {:?}", lines[0]));
    args.split_whitespace().map(str::to_owned).collect()
}

/// A copy of `bin` in a new empty directory, with nothing else beside it.
fn lone_copy(bin: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = bin.file_name().expect("file name");
    let copy = dir.path().join(name);
    std::fs::copy(bin, &copy).expect("copy the binary");
    (dir, copy)
}

fn get(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_get(url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// `attr="…"` of the first tag in `html` that contains `marker`.
fn attr_of_tag(html: &str, marker: &str, attr: &str) -> String {
    let tag = html
        .split('<')
        .find(|t| t.contains(marker))
        .unwrap_or_else(|| panic!("no tag with {marker} in:\n{html}"));
    let value = tag
        .split(&format!("{attr}=\""))
        .nth(1)
        .and_then(|v| v.split('"').next())
        .unwrap_or_else(|| panic!("no {attr} in <{tag}"));
    value.trim_start_matches("./").to_owned()
}

/// The page, its module script and its manifest from `origin` (`http://ip:port/`), checked as a
/// browser uses them.
fn check_app(origin: &str) {
    let index = get(origin, &[]);
    assert_eq!(index.status, 200, "{}", index.text());
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        index.header("content-security-policy"),
        Some(peer_relay::CSP)
    );
    assert_eq!(index.header("cache-control"), Some("no-cache"));
    let html = index.text();
    assert!(html.contains("<title>peer</title>"), "{html}");

    let script = attr_of_tag(&html, "type=\"module\"", "src");
    assert!(script.ends_with(".js"), "{script}");
    let js = get(&format!("{origin}{script}"), &[]);
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(
        js.body.len() > 10_000,
        "the app's code: {} bytes",
        js.body.len()
    );
    // Compressed for browsers, which all take gzip; same ETag on revalidation.
    let packed = get(&format!("{origin}{script}"), &[("accept-encoding", "gzip")]);
    assert_eq!(packed.header("content-encoding"), Some("gzip"));
    assert_eq!(&packed.body[..2], &[0x1f, 0x8b]);
    assert!(packed.body.len() < js.body.len() / 2);
    let etag = packed.header("etag").expect("etag");
    let again = get(
        &format!("{origin}{script}"),
        &[("accept-encoding", "gzip"), ("if-none-match", etag)],
    );
    assert_eq!(again.status, 304);

    let manifest_path = attr_of_tag(&html, "rel=\"manifest\"", "href");
    let manifest = get(&format!("{origin}{manifest_path}"), &[]);
    assert_eq!(manifest.status, 200);
    assert_eq!(
        manifest.header("content-type"),
        Some("application/manifest+json")
    );
    let json: serde_json::Value = serde_json::from_slice(&manifest.body).expect("manifest JSON");
    assert!(json["name"].is_string(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_command_serves_the_app_from_a_lone_binary_and_a_phone_pairs() {
    let args = readme_run_args();
    assert_eq!(args.first().map(String::as_str), Some("host"), "{args:?}");
    let (dir, peer) = lone_copy(&peer_binary());
    let mut argv: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    argv.extend(["--listen", "127.0.0.1"]);
    let home = tempfile::tempdir().expect("tempdir");
    let mut host =
        tokio::task::block_in_place(|| TestHost::start_copy(&peer, dir.path(), home, &argv));
    let note = host.wait_line("web app: ", Duration::from_secs(5));
    assert_eq!(
        note, "web app: built in",
        "the binary was built without the app"
    );

    // What the phone's camera opens: the pairing URL's origin.
    let origin = host.url.split('#').next().expect("origin").to_owned();
    assert!(origin.starts_with("http://127.0.0.1:"), "{origin}");
    tokio::task::block_in_place(|| check_app(&origin));

    // The app then pairs through the same origin's bridge, and opens a shell.
    let payload = PairingPayload::from_url(&host.url).expect("payload");
    let bridge = format!(
        "{}bridge/{}",
        origin.replacen("http://", "ws://", 1),
        hex::encode(payload.host_id)
    );
    let key = NoiseKeypair::generate();
    let (mut phone, paired) = BrowserClient::pair(
        WsTransport::connect(&bridge).await.expect("ws"),
        &payload,
        &key,
        "phone",
    )
    .await
    .expect("pair through the host's own bridge");
    let line =
        tokio::task::block_in_place(|| host.wait_line("paired phone ", Duration::from_secs(10)));
    assert_eq!(short_code(&line), Some(paired.code.clone()), "{line}");
    let mut out = Vec::new();
    until(&mut phone, &mut out, |m, _| is_hello(m)).await;
    let session = browser_create_shell(&mut phone, &mut out, 1).await;
    phone.send(1, &attach(session, 0, 7)).await.expect("attach");
    phone
        .send(1, &input(1, b"echo NEWCOMER-$((6*7))\r"))
        .await
        .expect("type");
    until(&mut phone, &mut out, |_, o| contains(o, b"NEWCOMER-42")).await;

    // Nothing was written beside the binary: it brought the app with it.
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("peer")]);
}

#[test]
fn a_lone_relay_binary_serves_the_app() {
    let (dir, relay) = lone_copy(&relay_binary());
    let mut child = spawn(
        std::process::Command::new(&relay)
            .args(["--http-bind", "127.0.0.1:0", "--allow-root"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .env_remove("PEER_RELAY_WEB_ROOT")
            .env_remove("PEER_RELAY_CONFIG")
            .env_remove("PEER_RELAY_NO_WEB_APP")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit()),
    )
    .expect("spawn peer-relay");
    let out = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
    let mut printed = Vec::new();
    let origin = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("peer-relay exited; it printed {printed:?}"))
            .expect("line");
        printed.push(line.clone());
        if let Some(url) = line.strip_prefix("relay URL: ") {
            break url.trim().to_owned();
        }
    };
    let note = loop {
        let line = lines.next().expect("more lines").expect("line");
        if let Some(note) = line.strip_prefix("web app: ") {
            break note.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    assert_eq!(note, "built in");
    check_app(&origin);
    let health = get(&format!("{origin}healthz"), &[]);
    assert_eq!(health.text(), "ok\n");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bash_loads_the_completions_and_the_manual_page_renders() {
    let peer = peer_binary();
    let script = format!(
        "source <('{}' completions bash) && complete -p peer",
        peer.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" peer"), "bash registered: {stdout}");
    for (shell, marker) in [("zsh", "#compdef peer"), ("fish", "complete -c peer")] {
        let out = std::process::Command::new(&peer)
            .args(["completions", shell])
            .output()
            .expect("run peer");
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{shell}"
        );
    }
    let bad = std::process::Command::new(&peer)
        .args(["completions", "tcsh"])
        .output()
        .expect("run peer");
    assert_eq!(bad.status.code(), Some(2));

    let man = std::process::Command::new(&peer)
        .arg("man")
        .output()
        .expect("run peer man");
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH peer 1"), "{page}");
    assert!(page.contains("completions"));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(&peer)
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .expect("run peer man --out-dir");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in ["peer.1", "peer-host.1", "peer-agent-new.1"] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
    // Rendered by man itself where it is installed (it is on Debian).
    match std::process::Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(dir.path().join("peer-host.1"))
        .env("MANWIDTH", "100")
        .output()
    {
        Ok(rendered) => {
            let text = String::from_utf8_lossy(&rendered.stdout);
            assert!(rendered.status.success(), "man: {rendered:?}");
            assert!(text.contains("--web-root"), "{text}");
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "man: {e}"),
    }
}
