//! Helpers shared by the integration tests: a raw HTTP/1.1 client (paths are sent exactly as
//! given), TLS client configs, relay-only iroh endpoints.

#![allow(dead_code)]

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use iroh::{
    Endpoint, EndpointAddr, RelayConfig, RelayMap, RelayMode, RelayUrl, Watcher as _,
    endpoint::presets, tls::CaTlsConfig,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
    time::timeout,
};

pub const STEP: Duration = Duration::from_secs(20);
pub const ALPN: &[u8] = b"peer-relay/test/0";

pub fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

pub fn any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A TCP connection to `server` from the loopback address `from` (127.0.0.x: each is a distinct
/// client IP for the server's per-IP limits).
pub async fn connect_from(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn parse_response(raw: &[u8]) -> anyhow::Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no end of headers in {:?}", String::from_utf8_lossy(raw)))?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .context("no status code")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end])?.trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Sends `request` as is and reads the response until the server closes.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> anyhow::Result<HttpResponse> {
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    timeout(STEP, stream.read_to_end(&mut raw))
        .await
        .context("response timed out")??;
    parse_response(&raw)
}

fn request(method: &str, path: &str, extra_headers: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n{extra_headers}\r\n"
    )
}

/// `GET path` over plain HTTP from 127.0.0.1.
pub async fn get(server: SocketAddr, path: &str) -> anyhow::Result<HttpResponse> {
    send(server, "GET", path, "").await
}

/// Any request over plain HTTP from 127.0.0.1.
pub async fn send(
    server: SocketAddr,
    method: &str,
    path: &str,
    extra_headers: &str,
) -> anyhow::Result<HttpResponse> {
    let stream = TcpStream::connect(server).await?;
    exchange(stream, &request(method, path, extra_headers)).await
}

/// `GET path` over plain HTTP from the loopback address `from`.
pub async fn get_from(
    from: IpAddr,
    server: SocketAddr,
    path: &str,
) -> anyhow::Result<HttpResponse> {
    let stream = connect_from(from, server).await?;
    exchange(stream, &request("GET", path, "")).await
}

/// A rustls client trusting only `root`.
pub fn tls_connector(root: &CertificateDer<'static>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// `GET path` over HTTPS (server name 127.0.0.1), trusting only `root`.
pub async fn get_tls(
    server: SocketAddr,
    path: &str,
    root: &CertificateDer<'static>,
) -> anyhow::Result<HttpResponse> {
    let tcp = TcpStream::connect(server).await?;
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let tls = tls_connector(root)?.connect(name, tcp).await?;
    exchange(tls, &request("GET", path, "")).await
}

/// Whether the server closed `stream` without answering (read gives EOF or a reset).
pub async fn closed_without_answer(mut stream: TcpStream) -> anyhow::Result<bool> {
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: relay.test\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    match timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Err(_) => bail!("neither answered nor closed"),
        Ok(Ok(0)) | Ok(Err(_)) => Ok(true),
        Ok(Ok(_)) => Ok(false),
    }
}

/// Connects from `from` and reports whether the server closed the connection without an
/// answer (a reset can already surface from `connect`).
pub async fn refused_from(from: IpAddr, server: SocketAddr) -> anyhow::Result<bool> {
    match connect_from(from, server).await {
        Ok(stream) => closed_without_answer(stream).await,
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => Ok(true),
        Err(err) => Err(err.into()),
    }
}

/// Waits until the peer closes `stream` (EOF or reset); fails after `limit`.
pub async fn wait_closed(stream: &mut TcpStream, limit: Duration) -> anyhow::Result<()> {
    let mut buf = [0u8; 1024];
    timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .context("connection still open")
}

/// A relay-only iroh endpoint whose only relay is `relay`.
pub async fn relay_endpoint(
    relay: &RelayUrl,
    token: Option<&str>,
    roots: Option<Vec<CertificateDer<'static>>>,
    alpns: Vec<Vec<u8>>,
) -> anyhow::Result<Endpoint> {
    relay_endpoint_ca(relay, token, roots.map(CaTlsConfig::custom_roots), alpns).await
}

/// A relay-only iroh endpoint whose only relay is `relay`, verifying its TLS certificate with
/// `ca` (iroh's default if `None`).
pub async fn relay_endpoint_ca(
    relay: &RelayUrl,
    token: Option<&str>,
    ca: Option<CaTlsConfig>,
    alpns: Vec<Vec<u8>>,
) -> anyhow::Result<Endpoint> {
    // `quic: None`: these relays have no QUIC address discovery to probe.
    let mut config = RelayConfig::new(relay.clone(), None);
    if let Some(token) = token {
        config = config.with_auth_token(token);
    }
    let mut builder = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Custom(RelayMap::from(config)))
        .clear_ip_transports()
        .alpns(alpns);
    if let Some(ca) = ca {
        builder = builder.ca_tls_config(ca);
    }
    Ok(builder.bind().await?)
}

/// Waits until `endpoint` reports an error for its home relay; returns the denial reason if the
/// relay refused it by access control, else the error text.
pub async fn wait_relay_error(endpoint: &Endpoint, limit: Duration) -> anyhow::Result<String> {
    let mut status = endpoint.home_relay_status();
    timeout(limit, async {
        loop {
            for relay in status.get() {
                assert!(!relay.is_connected(), "relay admitted the endpoint");
                if let Some(reason) = relay.auth_denied_reason() {
                    return format!("denied: {reason}");
                }
                if let Some(err) = relay.last_error() {
                    return format!("error: {err:#}");
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .context("no relay error reported")
}

/// Waits until `endpoint` reports no connected home relay.
pub async fn wait_disconnected(endpoint: &Endpoint, limit: Duration) -> anyhow::Result<()> {
    let mut status = endpoint.home_relay_status();
    timeout(limit, async {
        while status.get().iter().any(|relay| relay.is_connected()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .context("endpoint still connected to its relay")
}

/// Sends `ping` from `client` to `server` through `relay` and checks the echo.
pub async fn ping_through(
    client: &Endpoint,
    server: &Endpoint,
    relay: &RelayUrl,
) -> anyhow::Result<()> {
    timeout(STEP, server.online())
        .await
        .context("server never came online")?;
    let accept = tokio::spawn({
        let server = server.clone();
        async move {
            let incoming = server.accept().await.context("endpoint closed")?;
            let conn = incoming.await?;
            let (mut send, mut recv) = conn.accept_bi().await?;
            let request = recv.read_to_end(1024).await?;
            send.write_all(&request).await?;
            send.finish()?;
            let _ = conn.closed().await;
            anyhow::Ok(())
        }
    });
    let addr = EndpointAddr::new(server.id()).with_relay_url(relay.clone());
    let conn = timeout(STEP, client.connect(addr, ALPN))
        .await
        .context("connect timed out")??;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(b"ping").await?;
    send.finish()?;
    let reply = timeout(STEP, recv.read_to_end(1024))
        .await
        .context("reply timed out")??;
    anyhow::ensure!(reply == b"ping", "echo mismatch: {reply:?}");
    anyhow::ensure!(
        conn.paths().iter().all(|p| p.is_relay()),
        "only relayed paths expected"
    );
    conn.close(0u32.into(), b"done");
    timeout(STEP, accept)
        .await
        .context("server task hung")???;
    Ok(())
}

/// The value of a metric sample line `name` (with labels, exactly as printed).
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.rsplit_once(' ').filter(|(n, _)| *n == name))
        .and_then(|(_, v)| v.parse().ok())
}
