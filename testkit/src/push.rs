//! A push service on loopback that checks every request as a real one does, and decrypts what
//! it was given as the browser would.
//!
//! [`FakePushService::start`] serves HTTPS (a self-signed certificate for 127.0.0.1: give
//! [`FakePushService::cert_der`] to the host's `PushConfig::extra_roots`). Each
//! [`TestSubscription`] is a browser's push subscription: its own P-256 key, auth secret and
//! VAPID key pair (the app's `applicationServerKey`). A request passes if it is a `POST` to a
//! known subscription with `Content-Encoding: aes128gcm`, an integer `TTL`, a valid `Urgency`,
//! a `Topic` of at most 32 base64url characters, a body of at most 4096 bytes, a VAPID token
//! signed ES256 by the subscription's `applicationServerKey` for this origin (`aud`), not
//! expired and at most 24 h ahead, with a `mailto:`/`https:` subject, and a body that decrypts
//! with the subscription's private key. Then it is recorded and answered 201 (or whatever the
//! test asked for that subscription: 410 to make it gone).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_encoding::BASE64URL_NOPAD as B64;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use peer::proto::{NoticeKind, PushRegister};
use peer::webpush::{ece, vapid};
use tokio::sync::Notify;
use tokio_util::task::AbortOnDropHandle;

/// A browser's push subscription, with the private half a real push service never sees.
pub struct TestSubscription {
    /// Its endpoint URL.
    pub endpoint: String,
    secret: p256::SecretKey,
    /// Public key (`keys.p256dh`).
    pub p256dh: Vec<u8>,
    /// Auth secret (`keys.auth`).
    pub auth: [u8; 16],
    /// The app's VAPID private key.
    pub vapid_private: [u8; 32],
    /// The app's VAPID public key (`applicationServerKey`).
    pub vapid_public: Vec<u8>,
}

fn secret() -> p256::SecretKey {
    loop {
        if let Ok(sk) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return sk;
        }
    }
}

fn public(sk: &p256::SecretKey) -> Vec<u8> {
    sk.public_key().to_encoded_point(false).as_bytes().to_vec()
}

impl TestSubscription {
    /// The registration request a browser sends for it.
    pub fn register(&self, kinds: &[NoticeKind]) -> PushRegister {
        PushRegister {
            endpoint: self.endpoint.clone(),
            p256dh: self.p256dh.clone(),
            auth: self.auth.to_vec(),
            vapid_private: self.vapid_private,
            vapid_public: self.vapid_public.clone(),
            kinds: kinds.to_vec(),
        }
    }

    /// What the browser does with a body: ECDH with the sender key, then RFC 8291.
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let sender = ece::sender_key(body).map_err(|e| e.to_string())?;
        let sender = p256::PublicKey::from_sec1_bytes(&sender).map_err(|e| e.to_string())?;
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        let ua: [u8; 65] = self.p256dh.as_slice().try_into().map_err(|_| "p256dh")?;
        ece::decrypt_with_ecdh(body, shared.raw_secret_bytes().as_slice(), &ua, &self.auth)
            .map_err(|e| e.to_string())
    }

    /// The raw private key, for other implementations to decrypt with (base64url).
    pub fn private_b64(&self) -> String {
        B64.encode(&self.secret.to_bytes())
    }
}

/// One accepted push.
#[derive(Debug, Clone)]
pub struct Received {
    /// The subscription's path (`/push/<n>`).
    pub path: String,
    /// When it arrived, unix milliseconds.
    pub at_ms: u64,
    /// Headers, lowercase names.
    pub headers: HashMap<String, String>,
    /// The VAPID token's claims.
    pub claims: serde_json::Value,
    /// The decrypted payload (JSON).
    pub payload: serde_json::Value,
    /// The encrypted body as it came.
    pub body: Vec<u8>,
}

#[derive(Default)]
struct State {
    subs: HashMap<String, Arc<TestSubscription>>,
    answers: HashMap<String, u16>,
    received: Vec<Received>,
    rejected: Vec<String>,
}

/// The service; stops when dropped.
pub struct FakePushService {
    /// `https://127.0.0.1:PORT`.
    pub origin: String,
    /// Its certificate, to trust.
    pub cert_der: Vec<u8>,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    _task: AbortOnDropHandle<()>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl FakePushService {
    /// Listens on 127.0.0.1 (a random port) with a self-signed certificate.
    pub async fn start() -> FakePushService {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("certificate");
        let cert_der = ck.cert.der().to_vec();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone().into()], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let origin = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let state = Arc::new(Mutex::new(State::default()));
        let arrived = Arc::new(Notify::new());
        let (st, ar, org) = (state.clone(), arrived.clone(), origin.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    break;
                };
                let (acceptor, st, ar, org) =
                    (acceptor.clone(), st.clone(), ar.clone(), org.clone());
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        answer(req, st.clone(), ar.clone(), org.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        FakePushService {
            origin,
            cert_der,
            state,
            arrived,
            _task: AbortOnDropHandle::new(task),
        }
    }

    /// A new subscription on this service.
    pub fn subscription(&self) -> Arc<TestSubscription> {
        let mut st = self.state.lock().unwrap();
        let path = format!("/push/{}", st.subs.len() + 1);
        let (sk, vk) = (secret(), secret());
        let sub = Arc::new(TestSubscription {
            endpoint: format!("{}{path}", self.origin),
            p256dh: public(&sk),
            secret: sk,
            auth: rand::random(),
            vapid_private: vk.to_bytes().into(),
            vapid_public: public(&vk),
        });
        st.subs.insert(path, sub.clone());
        sub
    }

    /// Answers valid requests for `sub` with `status` from now on (410: gone).
    pub fn answer_with(&self, sub: &TestSubscription, status: u16) {
        let path = sub.endpoint.trim_start_matches(&self.origin).to_string();
        self.state.lock().unwrap().answers.insert(path, status);
    }

    /// Everything accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Why requests were refused.
    pub fn rejected(&self) -> Vec<String> {
        self.state.lock().unwrap().rejected.clone()
    }

    /// Accepted pushes for `sub`.
    pub fn received_by(&self, sub: &TestSubscription) -> Vec<Received> {
        let path = sub.endpoint.trim_start_matches(&self.origin).to_string();
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `pred` holds for the pushes accepted so far, or `timeout` passes.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[Received]) -> bool,
    ) -> Result<Vec<Received>, Vec<Received>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let got = self.received();
            if pred(&got) {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.received());
            }
        }
    }
}

type Resp = hyper::Response<Full<Bytes>>;

fn reply(status: u16, text: &str) -> Resp {
    let mut r = hyper::Response::new(Full::from(text.to_string()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    r
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    st: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    origin: String,
) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return Ok(reply(400, "body")),
    };
    let headers: HashMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let path = parts.uri.path().to_string();
    let sub = st.lock().unwrap().subs.get(&path).cloned();
    let check = || -> Result<(serde_json::Value, serde_json::Value), (u16, String)> {
        let sub = sub.ok_or((404, format!("no subscription {path}")))?;
        let h = |n: &str| headers.get(n).cloned();
        if parts.method != hyper::Method::POST {
            return Err((405, "not POST".into()));
        }
        if h("content-encoding").as_deref() != Some("aes128gcm") {
            return Err((400, "Content-Encoding is not aes128gcm".into()));
        }
        h("ttl")
            .ok_or((400, "no TTL".to_string()))?
            .parse::<u32>()
            .map_err(|_| (400, "TTL is not an integer".to_string()))?;
        if let Some(u) = h("urgency")
            && !["very-low", "low", "normal", "high"].contains(&u.as_str())
        {
            return Err((400, format!("Urgency {u}")));
        }
        if let Some(t) = h("topic")
            && (t.len() > 32
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err((400, format!("Topic {t}")));
        }
        if body.len() > 4096 {
            return Err((413, "payload larger than 4096 bytes".into()));
        }
        let auth = h("authorization").ok_or((401, "no Authorization".to_string()))?;
        let claims = vapid::verify(&auth, &origin, Some(&sub.vapid_public), now_ms() / 1000)
            .map_err(|e| (403, e.to_string()))?;
        let plain = sub
            .decrypt(&body)
            .map_err(|e| (400, format!("decrypt: {e}")))?;
        let payload = serde_json::from_slice(&plain).map_err(|e| (400, format!("payload: {e}")))?;
        Ok((claims, payload))
    };
    let outcome = check();
    let mut s = st.lock().unwrap();
    let resp = match outcome {
        Ok((claims, payload)) => {
            s.received.push(Received {
                path: path.clone(),
                at_ms: now_ms(),
                headers,
                claims,
                payload,
                body,
            });
            let status = s.answers.get(&path).copied().unwrap_or(201);
            reply(status, "")
        }
        Err((status, why)) => {
            s.rejected.push(why.clone());
            reply(status, &why)
        }
    };
    drop(s);
    arrived.notify_waiters();
    Ok(resp)
}
