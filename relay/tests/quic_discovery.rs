//! `peer-relay` with HTTPS also runs QUIC address discovery: an iroh endpoint that is told the
//! relay's QUIC port learns its own address from it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::presets;
use iroh::tls::CaTlsConfig;
use iroh::{Endpoint, RelayConfig, RelayMode, Watcher};
use iroh_relay::RelayQuicConfig;
use peer_relay::pin::Fingerprint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_relay_tells_endpoints_their_address() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_peer-relay"))
        .args(["--dev-tls", "--dev-tls-dir"])
        .arg(dir.path())
        .args([
            "--https-bind",
            "127.0.0.1:0",
            "--http-bind",
            "off",
            "--quic-bind",
            "127.0.0.1:0",
            "--advertise",
            "127.0.0.1",
            "--allow-root",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut url, mut quic, mut fingerprint) = (None, None, None);
    while url.is_none() || quic.is_none() || fingerprint.is_none() {
        let line = lines.next().expect("peer-relay printed its summary")?;
        if let Some(u) = line.strip_prefix("relay URL: ") {
            url = Some(u.trim().to_owned());
        } else if let Some(q) = line.strip_prefix("QUIC address discovery on ") {
            quic = Some(
                q.trim_end_matches(" (UDP)")
                    .parse::<std::net::SocketAddr>()?,
            );
        } else if let Some(f) = line.strip_prefix("self-signed certificate, SHA-256 fingerprint: ")
        {
            fingerprint = Some(Fingerprint::parse(f.trim())?);
        }
    }
    let (url, quic, pin) = (
        url.expect("url"),
        quic.expect("quic"),
        fingerprint.expect("fp"),
    );
    let relay = RelayConfig::new(url.parse()?, Some(RelayQuicConfig::new(quic.port())));
    let endpoint = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Custom([relay].into_iter().collect()))
        .ca_tls_config(CaTlsConfig::custom_server_cert_verifier(Arc::new(
            move |provider| Ok(peer_relay::pin::verifier(pin, provider)),
        )))
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?
        .bind()
        .await?;
    let own = endpoint.bound_sockets()[0];
    let mut reports = endpoint.net_report();
    let learned = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(report) = reports.get()
                && let Some(addr) = report.global_v4
            {
                return addr;
            }
            if reports.updated().await.is_err() {
                panic!("net report watcher closed");
            }
        }
    })
    .await
    .expect("the relay's QUIC service reported our address");
    assert_eq!(std::net::SocketAddr::V4(learned), own);
    endpoint.close().await;
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
