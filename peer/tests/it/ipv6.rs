//! IPv6: a host on `::1` alone, and a host listening on both families by default (one UDP port
//! for both, a dual-stack front), reached over each.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use peer_testkit::*;

/// Whether this machine has `::1`; the tests say so plainly when it does not.
fn has_ipv6_loopback() -> bool {
    let ok = std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    if !ok {
        eprintln!(
            "skipped: this machine has no ::1 (IPv6 loopback), so IPv6 cannot be tested here"
        );
    }
    ok
}

/// `GET /healthz` on `addr`: whether it answered `ok`.
fn healthz(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200") && text.ends_with("ok\n")
}

#[test]
fn a_host_on_ipv6_loopback_pairs_attaches_and_streams_exactly() {
    if !has_ipv6_loopback() {
        return;
    }
    let mut host = TestHost::start(&["--listen", "::1"]);
    assert!(host.url.starts_with("http://[::1]:"), "{}", host.url);
    let client = TestClient::new();
    pair(&mut host, &client, "v6");
    let hosts = std::fs::read_to_string(client.hosts_file()).expect("hosts.json");
    let hosts: serde_json::Value = serde_json::from_str(&hosts).expect("json");
    let direct: Vec<SocketAddr> = hosts[0]["direct_addrs"]
        .as_array()
        .expect("direct addrs")
        .iter()
        .map(|a| a.as_str().expect("text").parse().expect("socket address"))
        .collect();
    assert!(
        !direct.is_empty() && direct.iter().all(|a| a.ip() == Ipv6Addr::LOCALHOST),
        "{direct:?}"
    );

    let n = 200_000;
    let expected = seq_pty_output(n);
    let mut a = client.spawn(&["attach", "--new", "--", "seq", "1", &n.to_string()]);
    assert_eq!(a.wait_exit(Duration::from_secs(120)), 0, "{}", a.stderr());
    let got = a.out.lock().expect("lock").clone();
    assert_eq!(sha256(&got), sha256(&expected));
    // And through the embedded relay alone, over IPv6 too.
    let out = client.ok(&["--relay-only", "ls"]);
    assert!(out.contains("exited (0)"), "{out}");
}

#[test]
fn by_default_the_host_listens_on_both_families_on_one_port() {
    if !has_ipv6_loopback() {
        return;
    }
    // No --listen: the default (`::`), as a user starts it.
    let mut host = TestHost::start(&["--listen", "::", "--advertise", "127.0.0.1"]);
    let client = TestClient::new();
    pair(&mut host, &client, "both");
    let udp4 = host.udp_addr("127.0.0.1".parse().expect("ip"));
    let udp6 = host.udp_addr("::1".parse().expect("ip"));
    // The host names both families among its direct addresses where it has IPv6 beyond ::1.
    let status = String::from_utf8_lossy(&host.cli(&["status"]).stdout).into_owned();
    eprintln!("{status}");
    let relay_port: u16 = host
        .url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("relay port in the pairing URL");
    // The front answers on both families.
    assert!(healthz(SocketAddr::from(([127, 0, 0, 1], relay_port))));
    assert!(healthz(SocketAddr::from((Ipv6Addr::LOCALHOST, relay_port))));
    // A device that knows only the IPv4 address, then one that knows only the IPv6 one, both
    // get in directly (no relay).
    for only in [udp4, udp6] {
        let path = client.hosts_file();
        let mut hosts: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("hosts.json")).expect("json");
        hosts[0]["relay_urls"] = serde_json::json!([]);
        hosts[0]["direct_addrs"] = serde_json::json!([only.to_string()]);
        hosts[0]["keep_routes"] = serde_json::json!(true);
        std::fs::write(&path, serde_json::to_vec_pretty(&hosts).expect("json")).expect("write");
        let out = client.cli(&["ls"]);
        assert!(
            out.status.success(),
            "no way in over {only}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
