//! Sending push requests: the HTTP client (reqwest on rustls with ring, which the host already
//! has through iroh) and one message's delivery with retries.
//!
//! The endpoint comes from a paired device, so the client is careful where it goes: https only
//! (loopback http only behind the test switch), no redirects, no proxy, names that resolve to
//! private, loopback or link-local addresses refused, timeouts on everything, at most
//! [`MAX_ANSWER`] bytes of an answer read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::PushConfig;
use crate::util::now_secs;
use crate::webpush::{self, Message, Subscription, VapidKey};

/// Attempts per message at most.
pub const ATTEMPTS: u32 = 5;
/// The first retry's wait; each next one waits four times longer (1 s, 4 s, 16 s, 64 s).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait a push service's `Retry-After` gets.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// The most of an answer's body read (for an error message).
pub const MAX_ANSWER: usize = 1024;
/// One request, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Builds the client. `cfg.extra_roots` are trusted besides the web PKI roots (tests).
pub fn client(cfg: &PushConfig) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in &cfg.extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("extra root: {e}"))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("peer/", env!("CARGO_PKG_VERSION")));
    if !cfg.allow_loopback_http {
        b = b.https_only(true).dns_resolver(PublicOnly);
    }
    b.build().map_err(|e| e.to_string())
}

/// Resolves names with the system resolver and keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// multicast, documentation or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// One message for one device, ready to send (again).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The notification's tag (a newer message with the same tag replaces this one in a queue).
    pub tag: String,
    /// The JSON for the service worker.
    pub payload: Vec<u8>,
    /// How urgent.
    pub urgency: webpush::Urgency,
    /// Seconds the push service keeps it.
    pub ttl: u32,
    /// The opaque `Topic`.
    pub topic: String,
    /// When it is no use any more.
    pub expires: Instant,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The push service took it (2xx).
    Delivered,
    /// The subscription is gone (404, 410): forget it.
    Gone(String),
    /// It did not go, and trying again will not help (or the attempts ran out).
    Failed(String),
}

/// What to do after one answer.
enum Next {
    Done(Outcome),
    Retry(Option<Duration>, String),
}

fn classify(status: reqwest::StatusCode, retry_after: Option<Duration>, text: &str) -> Next {
    let what = format!(
        "the push service answered {status}{}",
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    );
    match status.as_u16() {
        200..=299 => Next::Done(Outcome::Delivered),
        404 | 410 => Next::Done(Outcome::Gone(what)),
        429 | 500..=599 => Next::Retry(retry_after, what),
        _ => Next::Done(Outcome::Failed(what)),
    }
}

/// `Retry-After` as seconds (the HTTP-date form counts as absent).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = h.get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

async fn read_some(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < MAX_ANSWER {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c[..c.len().min(MAX_ANSWER - buf.len())]),
            _ => break,
        }
    }
    crate::host::push::notices::clip(&String::from_utf8_lossy(&buf), 200)
}

/// Sends `out` to `sub`, signed with `key`: up to [`ATTEMPTS`] times, waiting between attempts
/// as the push service asks (`Retry-After`) or with exponential backoff, until it is delivered,
/// refused, or expired.
pub async fn deliver(
    client: reqwest::Client,
    sub: Arc<Subscription>,
    key: Arc<VapidKey>,
    out: Outgoing,
) -> Outcome {
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let msg = Message {
            payload: &out.payload,
            ttl: out.ttl,
            urgency: out.urgency,
            topic: Some(out.topic.clone()),
        };
        let req = match webpush::request(&sub, &key, &msg, now_secs()) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let req = match reqwest::Request::try_from(req) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("the endpoint: {e}")),
        };
        let wait = match client.execute(req).await {
            Ok(resp) => {
                let status = resp.status();
                let after = retry_after(resp.headers());
                let text = if status.is_success() {
                    String::new()
                } else {
                    read_some(resp).await
                };
                match classify(status, after, &text) {
                    Next::Done(o) => return o,
                    Next::Retry(after, why) => {
                        last = why;
                        after
                    }
                }
            }
            Err(e) => {
                last = format!("cannot reach the push service: {e}");
                None
            }
        };
        let wait = wait.unwrap_or(backoff);
        backoff *= 4;
        if attempt == ATTEMPTS || Instant::now() + wait >= out.expires {
            break;
        }
        tracing::debug!(attempt, ?wait, "push delivery failed, retrying: {last}");
        tokio::time::sleep(wait).await;
    }
    Outcome::Failed(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_dialled() {
        for ip in ["142.250.74.10", "2a00:1450:4001::200e", "17.253.144.10"] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.20",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn answers_are_classified_as_a_push_service_means_them() {
        use reqwest::StatusCode as S;
        let done = |s: u16| match classify(S::from_u16(s).expect("status"), None, "") {
            Next::Done(o) => Some(o),
            Next::Retry(..) => None,
        };
        assert_eq!(done(201), Some(Outcome::Delivered));
        assert!(matches!(done(410), Some(Outcome::Gone(_))));
        assert!(matches!(done(404), Some(Outcome::Gone(_))));
        assert!(matches!(done(403), Some(Outcome::Failed(_))));
        assert!(matches!(done(413), Some(Outcome::Failed(_))));
        assert_eq!(done(429), None);
        assert_eq!(done(503), None);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after", "99999".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn the_client_builds_with_ring_and_no_process_wide_provider() {
        client(&PushConfig::default()).expect("client");
        let bad = PushConfig {
            extra_roots: vec![vec![1, 2, 3]],
            ..PushConfig::default()
        };
        assert!(client(&bad).is_err());
    }
}
