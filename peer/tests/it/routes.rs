//! Addresses, relays and relay tokens that change after pairing: the host tells every device its
//! current routes on every connection, the device saves them, and so a host restarted on new
//! ports, or with a new relay token, stays reachable without pairing again.

use std::time::Duration;

use peer_testkit::*;

/// The record of the only host in a client's `hosts.json`.
fn record(client: &TestClient) -> serde_json::Value {
    let text = std::fs::read_to_string(client.hosts_file()).expect("hosts.json");
    let hosts: serde_json::Value = serde_json::from_str(&text).expect("hosts.json is json");
    hosts[0].clone()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn host_on_new_ports_is_reached_by_a_device_that_connected_since() {
    let (udp1, relay1) = (free_udp_port(), free_tcp_port());
    let ports = |udp: u16, relay: u16| {
        vec![
            "--port".to_owned(),
            udp.to_string(),
            "--relay-port".to_owned(),
            relay.to_string(),
        ]
    };
    let start = ports(udp1, relay1);
    let mut host = TestHost::start(&args(&start));
    let device = TestClient::new();
    pair(&mut host, &device, "phone");
    // A second device that pairs now and then stays away.
    let stale = TestClient::new();
    host.fresh_url();
    pair(&mut host, &stale, "drawer");
    let r = record(&device);
    assert_eq!(strings(&r["direct_addrs"]), [format!("127.0.0.1:{udp1}")]);
    assert_eq!(
        strings(&r["relay_urls"]),
        [format!("http://127.0.0.1:{relay1}/")]
    );

    // New UDP port: the device reaches the host through the relay, and learns the port.
    let udp2 = free_udp_port();
    let mut host = host.restart_with(&args(&ports(udp2, relay1)));
    device.ok(&["ls"]);
    assert_eq!(
        strings(&record(&device)["direct_addrs"]),
        [format!("127.0.0.1:{udp2}")]
    );

    // New relay port: the device reaches the host directly, and learns the relay.
    let relay2 = free_tcp_port();
    host = host.restart_with(&args(&ports(udp2, relay2)));
    device.ok(&["ls"]);
    assert_eq!(
        strings(&record(&device)["relay_urls"]),
        [format!("http://127.0.0.1:{relay2}/")]
    );

    // Both changed since the first start: the device that kept up still gets in; the one that
    // never connected since pairing knows only the old ports, and says it cannot reach the host.
    let udp3 = free_udp_port();
    host = host.restart_with(&args(&ports(udp3, relay2)));
    device.ok(&["ls"]);
    let out = stale.cli(&["ls"]);
    assert!(
        !out.status.success(),
        "a device with only old routes got in"
    );
    assert!(
        stderr(&out).contains("cannot reach the host"),
        "{}",
        stderr(&out)
    );
    // The file stays private.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(device.hosts_file())
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(host);
}

const OLD: &str = "old-relay-token-0123456789abcdef";
const NEW: &str = "new-relay-token-fedcba9876543210";

#[test]
fn relay_token_rotation_without_pairing_again() {
    let relay = RelayProcess::start_token_mode(&[OLD]);
    let url = relay.https_url.clone().expect("https url");
    let pin = relay.fingerprint.clone().expect("fingerprint");
    let host_args = |token: &'static str| {
        vec![
            "--relay".to_owned(),
            url.clone(),
            "--relay-only".to_owned(),
            "--relay-token".to_owned(),
            token.to_owned(),
            "--relay-cert-sha256".to_owned(),
            pin.clone(),
        ]
    };
    let mut host = TestHost::start(&args(&host_args(OLD)));
    let device = TestClient::new();
    pair_with(&mut host, &device, "phone", &["--relay-only"]);
    let stale = TestClient::new();
    host.fresh_url();
    pair_with(&mut host, &stale, "drawer", &["--relay-only"]);
    assert_eq!(record(&device)["relay_token"], OLD);

    // 1. The relay accepts the new token beside the old one. 2. The host restarts with it.
    relay.set_tokens(&[OLD, NEW]);
    let host = host.restart_with(&args(&host_args(NEW)));
    // 3. Devices learn it on their next connection (made with the old token).
    device.ok(&["--relay-only", "ls"]);
    assert_eq!(record(&device)["relay_token"], NEW);
    // 4. The old token goes.
    relay.set_tokens(&[NEW]);
    let t0 = std::time::Instant::now();
    device.ok(&["--relay-only", "ls"]);
    eprintln!("connected with the new token in {:?}", t0.elapsed());
    // The device that did not connect in between holds only the old token: refused, clearly.
    let out = stale.cli(&["--relay-only", "ls"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("relay token was not accepted"),
        "{}",
        stderr(&out)
    );
    // Neither token is ever printed.
    let listed = device.ok(&["hosts", "--json"]);
    assert!(!listed.contains(OLD) && !listed.contains(NEW), "{listed}");
    drop(host);
    std::thread::sleep(Duration::from_millis(10));
}
