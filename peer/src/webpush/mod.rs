//! Web Push, sans-IO: one encrypted, signed push request from a message and a subscription.
//!
//! - [`ece`]: RFC 8291 message encryption (`aes128gcm`), padded to one size.
//! - [`vapid`]: RFC 8292 VAPID, the ES256 token that names the sender.
//!
//! [`request`] builds the `http::Request` a push service takes (RFC 8030 §5): `POST` to the
//! subscription's endpoint with `TTL`, `Urgency`, `Topic`, `Content-Encoding: aes128gcm` and
//! `Authorization: vapid …`. Sending it is the host's business (`host/push`).

pub mod ece;
pub mod vapid;

use data_encoding::BASE64URL_NOPAD as B64;

pub use ece::EceError;
pub use vapid::{VapidError, VapidKey};

/// Longest endpoint URL accepted, bytes.
pub const MAX_ENDPOINT: usize = 1024;

/// A browser's push subscription.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Where to POST (checked by [`check_endpoint`]).
    pub endpoint: http::Uri,
    /// The subscription's P-256 public key.
    pub p256dh: [u8; 65],
    /// The subscription's authentication secret.
    pub auth: [u8; 16],
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The endpoint is a capability (whoever has it and the keys can push to the phone).
        write!(f, "Subscription({})", origin(&self.endpoint))
    }
}

/// Why a subscription is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL, or too long.
    #[error("the push endpoint is not a URL of at most {MAX_ENDPOINT} bytes")]
    NotUrl,
    /// Not `https://` on the default port, or it has user info.
    #[error("the push endpoint must be an https:// URL on port 443, without user info")]
    NotHttps,
    /// An IP address or a local name: push services have public DNS names.
    #[error("the push endpoint must name a public host, not {0}")]
    Local(String),
    /// A key has the wrong length or is not a P-256 point.
    #[error("{0}")]
    BadKey(&'static str),
}

/// Checks a push endpoint: `https://`, port 443, no user info, a DNS name that is not local
/// (the host POSTs to it: it must not become a way into the host's own network). With
/// `allow_loopback_http` (tests only), `http://127.0.0.1:PORT/…` and `http://localhost:PORT/…`
/// pass too.
pub fn check_endpoint(url: &str, allow_loopback_http: bool) -> Result<http::Uri, EndpointError> {
    if url.len() > MAX_ENDPOINT {
        return Err(EndpointError::NotUrl);
    }
    let uri: http::Uri = url.parse().map_err(|_| EndpointError::NotUrl)?;
    let auth = uri.authority().ok_or(EndpointError::NotUrl)?;
    if auth.as_str().contains('@') {
        return Err(EndpointError::NotHttps);
    }
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("http") if allow_loopback_http && loopback => return Ok(uri),
        Some("https") if allow_loopback_http && loopback => return Ok(uri),
        Some("https") if matches!(uri.port_u16(), None | Some(443)) => {}
        _ => return Err(EndpointError::NotHttps),
    }
    let lower = host.to_ascii_lowercase();
    let local_name = !lower.contains('.')
        || [".local", ".localhost", ".internal", ".lan", ".home.arpa"]
            .iter()
            .any(|s| lower.ends_with(s));
    if host.parse::<std::net::IpAddr>().is_ok() || local_name {
        return Err(EndpointError::Local(host.to_string()));
    }
    Ok(uri)
}

impl Subscription {
    /// A subscription from what a browser sends: endpoint (checked), `p256dh` (65 bytes, a
    /// P-256 point), `auth` (16 bytes).
    pub fn new(
        endpoint: &str,
        p256dh: &[u8],
        auth: &[u8],
        allow_loopback_http: bool,
    ) -> Result<Subscription, EndpointError> {
        let endpoint = check_endpoint(endpoint, allow_loopback_http)?;
        let p256dh: [u8; 65] = p256dh
            .try_into()
            .map_err(|_| EndpointError::BadKey("p256dh must be 65 bytes"))?;
        let auth: [u8; 16] = auth
            .try_into()
            .map_err(|_| EndpointError::BadKey("auth must be 16 bytes"))?;
        // An ECDH with it must work: try one.
        ece::encrypt(b"", &p256dh, &auth)
            .map_err(|_| EndpointError::BadKey("p256dh is not a P-256 public key"))?;
        Ok(Subscription {
            endpoint,
            p256dh,
            auth,
        })
    }
}

/// RFC 6454 origin of a URL, as VAPID's `aud`: `scheme://host`, with the port only when it is
/// not the scheme's default.
pub fn origin(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let host = uri.host().unwrap_or("");
    match (scheme, uri.port_u16()) {
        ("https", Some(443)) | ("http", Some(80)) | (_, None) => format!("{scheme}://{host}"),
        (_, Some(p)) => format!("{scheme}://{host}:{p}"),
    }
}

/// How soon the push service should wake the device (RFC 8030 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Only when on power and Wi-Fi.
    VeryLow,
    /// When on power or Wi-Fi.
    Low,
    /// Unless the battery is low.
    Normal,
    /// Now.
    High,
}

impl Urgency {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// A `Topic` (RFC 8030 §5.4) that the push service cannot read: base64url of a SHA-256 over
/// the subscription's secret and `name`, 22 characters. A newer message with the same topic
/// replaces an undelivered older one.
pub fn topic(auth: &[u8; 16], name: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"peer push topic\0");
    ctx.update(auth);
    ctx.update(name.as_bytes());
    B64.encode(&ctx.finish().as_ref()[..16])
}

/// One push message.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// What the service worker gets (at most [`ece::MAX_DATA`] bytes).
    pub payload: &'a [u8],
    /// Seconds the push service keeps it for a device that is offline.
    pub ttl: u32,
    /// How soon to wake the device.
    pub urgency: Urgency,
    /// Replaces an undelivered message with the same topic ([`topic`]).
    pub topic: Option<String>,
}

/// Why a push request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Encryption failed.
    #[error(transparent)]
    Ece(#[from] EceError),
    /// Signing failed.
    #[error(transparent)]
    Vapid(#[from] VapidError),
    /// The request could not be put together.
    #[error("building the request: {0}")]
    Http(String),
}

/// The push request for `msg` to `sub`, signed with `key`, its token valid until `now +`
/// [`vapid::LIFETIME_SECS`].
pub fn request(
    sub: &Subscription,
    key: &VapidKey,
    msg: &Message<'_>,
    now: u64,
) -> Result<http::Request<Vec<u8>>, PushError> {
    let body = ece::encrypt(msg.payload, &sub.p256dh, &sub.auth)?;
    let auth = key.authorization(
        &origin(&sub.endpoint),
        now + vapid::LIFETIME_SECS,
        vapid::SUBJECT,
    )?;
    let mut req = http::Request::post(sub.endpoint.clone())
        .header("TTL", msg.ttl.to_string())
        .header("Urgency", msg.urgency.as_str())
        .header("Content-Encoding", "aes128gcm")
        .header("Content-Type", "application/octet-stream")
        .header("Authorization", auth);
    if let Some(t) = &msg.topic {
        req = req.header("Topic", t);
    }
    req.body(body).map_err(|e| PushError::Http(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_public_https() {
        let ok = "https://fcm.googleapis.com/fcm/send/abc:def";
        assert!(check_endpoint(ok, false).is_ok());
        assert!(check_endpoint("https://web.push.apple.com:443/x", false).is_ok());
        for bad in [
            "http://fcm.googleapis.com/x",
            "https://fcm.googleapis.com:8443/x",
            "https://user@fcm.googleapis.com/x",
            "https://10.0.0.1/x",
            "https://[::1]/x",
            "https://localhost/x",
            "https://printer.local/x",
            "https://intranet/x",
            "ftp://fcm.googleapis.com/x",
            "not a url",
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(
            check_endpoint(
                &format!("https://a.example/{}", "x".repeat(MAX_ENDPOINT)),
                false
            )
            .is_err()
        );
        // The test switch opens loopback only.
        assert!(check_endpoint("http://127.0.0.1:4000/push/1", true).is_ok());
        assert!(check_endpoint("http://10.0.0.1:4000/push/1", true).is_err());
        assert!(check_endpoint("http://127.0.0.1:4000/push/1", false).is_err());
    }

    #[test]
    fn origins_keep_only_a_port_that_is_not_the_default() {
        let o = |u: &str| origin(&u.parse().expect("uri"));
        assert_eq!(o("https://127.0.0.1:8443/push/x"), "https://127.0.0.1:8443");
        assert_eq!(o("https://a.example:443/x"), "https://a.example");
        assert_eq!(o("https://a.example/x"), "https://a.example");
        assert_eq!(o("http://127.0.0.1:80/x"), "http://127.0.0.1");
    }

    #[test]
    fn topics_are_short_opaque_and_per_subscription() {
        let t = topic(&[1; 16], "agent:3");
        assert_eq!(t.len(), 22);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(t, topic(&[2; 16], "agent:3"));
        assert_ne!(t, topic(&[1; 16], "agent:4"));
        assert!(!t.contains("agent"));
    }

    #[test]
    fn a_request_has_what_a_push_service_checks() {
        let (private, public) = vapid::tests::fresh();
        let key = VapidKey::from_raw(&private, &public).expect("key");
        let (_, ua) = vapid::tests::fresh();
        let sub = Subscription::new("https://push.example.com/s/1", &ua, &[9; 16], false)
            .expect("subscription");
        assert_eq!(format!("{sub:?}"), "Subscription(https://push.example.com)");
        let msg = Message {
            payload: b"{}",
            ttl: 60,
            urgency: Urgency::High,
            topic: Some(topic(&sub.auth, "agent:1")),
        };
        let now = 1_700_000_000;
        let req = request(&sub, &key, &msg, now).expect("request");
        assert_eq!(req.method(), http::Method::POST);
        let h = |n: &str| req.headers()[n].to_str().expect("ascii").to_string();
        assert_eq!(h("ttl"), "60");
        assert_eq!(h("urgency"), "high");
        assert_eq!(h("content-encoding"), "aes128gcm");
        assert_eq!(h("topic").len(), 22);
        assert_eq!(req.body().len(), ece::BODY_LEN);
        vapid::verify(
            &h("authorization"),
            "https://push.example.com",
            Some(&public),
            now,
        )
        .expect("vapid");
        assert!(
            Subscription::new("https://push.example.com/s/1", &[4; 65], &[9; 16], false).is_err()
        );
        assert!(Subscription::new("https://push.example.com/s/1", &ua, &[9; 15], false).is_err());
    }
}
