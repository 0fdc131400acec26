//! Every way pairing and connecting can be refused, each with a clear message, while the host
//! keeps serving the devices it should.

use std::time::Duration;

use peer_pairing::PairingPayload;
use peer_testkit::*;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn refused(client: &TestClient, args: &[&str], expect: &str) {
    let out = client.cli(args);
    assert!(!out.status.success(), "peer {args:?} should fail");
    let err = stderr_of(&out);
    assert!(
        err.contains(expect),
        "peer {args:?}: expected {expect:?} in {err:?}"
    );
}

fn tamper(url: &str, f: impl FnOnce(&mut PairingPayload)) -> String {
    let (base, _) = url.split_once('#').expect("fragment");
    let mut p = PairingPayload::from_url(url).expect("decode");
    f(&mut p);
    p.to_url(base).expect("encode")
}

#[test]
fn pairing_codes_are_checked() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    let url = host.url.clone();

    refused(
        &client,
        &["pair", "http://127.0.0.1:1/#not-a-code"],
        "not a valid pairing link",
    );
    refused(
        &client,
        &["pair", "http://127.0.0.1:1/"],
        "not a valid pairing link",
    );
    // A different secret: the host's answer cannot be decrypted.
    let wrong_secret = tamper(&url, |p| {
        p.secret = peer_pairing::PairingSecret::generate();
    });
    refused(&client, &["pair", &wrong_secret], "pairing code is unknown");
    // Same pairing id, other host key: the host cannot read message 1.
    let wrong_key = tamper(&url, |p| {
        p.host_noise_key = peer_pairing::NoiseKeypair::generate().public();
    });
    refused(
        &client,
        &["pair", &wrong_key],
        "does not belong to this host",
    );

    // The real code works once...
    pair(&mut host, &client, "first");
    // ...and never again.
    let other = TestClient::new();
    refused(&other, &["pair", &url], "already used");
    assert!(other.ok(&["hosts"]).contains("no paired hosts"));

    // The failed attempts that reached the host are audited, with their reason and no secret.
    let out = host.cli(&["audit", "--json"]);
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["event"] == "pair.failed")
        .filter_map(|r| r["detail"].as_str())
        .collect();
    assert_eq!(failed.len(), 3, "{rows:?}");
    for want in ["unknown", "does not belong", "already used"] {
        assert!(
            failed.iter().any(|d| d.contains(want)),
            "{want}: {failed:?}"
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let fragment = url.split_once('#').expect("fragment").1;
    for link in [fragment, &wrong_secret, &wrong_key] {
        let secret = link.rsplit('#').next().expect("fragment");
        assert!(!text.contains(secret), "the audit log holds a pairing link");
    }

    // An expired code is refused before anything is sent.
    let expired = tamper(&url, |p| p.expires_at = 1);
    refused(&other, &["pair", &expired], "expired");

    // A code from before a restart is unknown to the host.
    let fresh = host.fresh_url();
    let host = host.restart(&["--no-pairing"]);
    refused(&other, &["pair", &fresh], "unknown to the host");
    // The device paired before the restart still gets in.
    assert!(client.ok(&["ls"]).contains("ID"));
    drop(host);
}

#[test]
fn unpaired_and_revoked_devices_are_refused() {
    let mut host = TestHost::start(&[]);
    let client = TestClient::new();
    pair(&mut host, &client, "doomed");

    // A device that copies a host record but never paired.
    let stranger = TestClient::new();
    std::fs::create_dir_all(stranger.home.path().join("client")).expect("mkdir");
    std::fs::copy(client.hosts_file(), stranger.hosts_file()).expect("copy hosts");
    refused(&stranger, &["ls"], "not paired");

    // A live attachment is closed the moment its device is revoked.
    let mut a = client.spawn(&["attach", "--new", "--", "sh"]);
    a.type_str("echo up-$((1+1))\n");
    a.wait_for("up-2", Duration::from_secs(20));
    let devices = host.cli(&["devices", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&devices.stdout).expect("json");
    let id = list[0]["id"].as_str().expect("id").to_string();
    assert_eq!(list[0]["connections"], 1);
    let out = host.cli(&["devices", "revoke", &id[..12]]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("closed 1 connection"));
    let started = std::time::Instant::now();
    assert_eq!(a.wait_exit(Duration::from_secs(10)), 255);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(a.stderr().contains("revoked"), "{}", a.stderr());
    refused(&client, &["ls"], "revoked");
    let devices = String::from_utf8_lossy(&host.cli(&["devices"]).stdout).into_owned();
    assert!(devices.contains("revoked"), "{devices}");

    // Other devices keep working.
    let friend = TestClient::new();
    host.fresh_url();
    pair(&mut host, &friend, "friend");
    assert!(friend.ok(&["ls"]).contains("running"));
}

#[test]
fn viewers_watch_but_cannot_type_or_start() {
    let mut host = TestHost::start(&["--role", "viewer"]);
    let viewer = TestClient::new();
    pair(&mut host, &viewer, "tv");
    refused(&viewer, &["new", "--", "sh"], "viewer");
    assert!(viewer.ok(&["hosts"]).contains("viewer"));
}

#[test]
fn peer_pair_on_the_host_waits_for_the_device_and_shows_its_short_code() {
    let host = TestHost::start(&[]);
    // `peer pair` on the host prints a fresh code and waits.
    let mut cmd = std::process::Command::new(peer_testkit::peer_binary());
    cmd.env("PEER_HOME", host.home.path())
        .env("PEER_KEY_STORE", "file")
        .env("RUST_LOG", "warn")
        .args(["pair", "--ttl", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut waiting = cmd.spawn().expect("spawn peer pair");
    let stdout = waiting.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a pairing URL");
        if let Some(u) = line.strip_prefix("pairing URL: ") {
            break u.to_owned();
        }
    };
    // Abandoned attempts do not count: a device that pairs afterwards is reported.
    let client = TestClient::new();
    let out = client.ok(&["pair", &url, "--name", "laptop"]);
    let code = out
        .lines()
        .find_map(|l| {
            l.split_once("short code ")
                .map(|(_, c)| c.chars().take(7).collect::<String>())
        })
        .unwrap_or_else(|| panic!("no short code in {out:?}"));
    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("`peer pair` reports the device");
        if line.starts_with("paired ") {
            break line;
        }
    };
    assert!(
        line.contains("laptop") && line.contains("as operator"),
        "{line}"
    );
    assert!(line.contains(&code), "{line} does not show {code}");
    let status = waiting.wait().expect("exit");
    assert!(status.success());
}
