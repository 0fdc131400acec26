//! The client side of pairing: decode the URL, dial the host on `peer/pair/1`, run the Noise
//! handshake with the one-time secret, prove the device key, remember the host.

use std::time::Duration;

use iroh::{EndpointId, RelayUrl, SecretKey};
use peer_pairing::{
    Initiator, NoiseKeypair, PairingPayload, hello_payload, pairing_prologue, short_code,
};

use super::hosts::KnownHost;
use crate::net;
use crate::proto::refusal::{Answer, parse_answer};
use crate::proto::{
    ALPN_PAIR, PairConfirm, PairOutcome, Refusal, Role, StreamMessage, confirm_message,
    read_message, write_message,
};
use crate::util::now_secs;

/// A finished pairing.
#[derive(Debug, Clone)]
pub struct PairResult {
    /// The host record to remember.
    pub host: KnownHost,
    /// The short code to compare with the host's screen.
    pub code: String,
    /// The role given.
    pub role: Role,
}

/// Why pairing failed, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The URL is not a valid pairing code.
    #[error("not a valid pairing link: {0}")]
    Payload(#[from] peer_pairing::PayloadError),
    /// The host refused.
    #[error("{0}")]
    Refused(Refusal),
    /// The handshake failed on our side: the code is not the host's.
    #[error(
        "the host's answer does not match this pairing code (a tampered link, or not the host it names)"
    )]
    Mismatch,
    /// The host said no after the handshake.
    #[error("the host refused: {0}")]
    HostSaid(String),
    /// Network failure.
    #[error("cannot reach the host: {0}")]
    Network(String),
    /// The host's relay cannot be used (refused us, or its certificate is not the pinned one).
    #[error("cannot use the host's relay: {0}")]
    Relay(#[from] net::RelayProblem),
}

/// Pairs this device (key `device`) with the host named by `url`.
pub async fn pair(
    url: &str,
    device: &SecretKey,
    name: &str,
    relay_only: bool,
) -> Result<PairResult, PairError> {
    let payload = PairingPayload::from_url(url)?;
    payload.check_fresh(now_secs())?;
    let host_id = EndpointId::from_bytes(&payload.host_id).map_err(|_| {
        PairError::Payload(peer_pairing::PayloadError::Truncated { field: "host id" })
    })?;
    let relays: Vec<RelayUrl> = payload
        .relay_urls
        .iter()
        .filter_map(|u| u.parse().ok())
        .collect();
    let bind = net::client_bind(&payload.direct_addrs);
    let auth = net::RelayAuth {
        token: payload.relay_token.clone(),
        pin: payload.relay_cert_sha256.map(peer_relay::pin::Fingerprint),
        ..net::RelayAuth::default()
    };
    let endpoint = net::bind_endpoint_with(
        net::EndpointOptions {
            secret: SecretKey::generate(),
            relays: relays.clone(),
            bind,
            relay_only,
            alpns: vec![],
        },
        &auth,
    )
    .await
    .map_err(|e| PairError::Network(e.to_string()))?;
    // Without a direct address the relay is the only way: a relay that refuses us or fails the
    // pin ends the attempt at once, with the reason.
    let relay_is_the_way = relay_only || payload.direct_addrs.is_empty();
    let attempt = run(
        &endpoint, &payload, host_id, &relays, device, name, relay_only,
    );
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::select! {
            r = attempt => r,
            p = auth.fatal(&endpoint), if relay_is_the_way => Err(PairError::Relay(p)),
        }
    })
    .await
    .unwrap_or_else(|_| Err(PairError::Network("timed out".into())));
    let result = match result {
        // A failure to reach the host is best explained by the relay's problem, if it has one.
        Err(PairError::Network(e)) => match auth.problem(&endpoint) {
            Some(p) => Err(PairError::Relay(p)),
            None => Err(PairError::Network(e)),
        },
        Ok(paired) => {
            if let Some(p) = auth.problem(&endpoint) {
                tracing::warn!("paired over a direct path, but {p}");
            }
            Ok(paired)
        }
        other => other,
    };
    endpoint.close().await;
    result
}

async fn run(
    endpoint: &iroh::Endpoint,
    payload: &PairingPayload,
    host_id: EndpointId,
    relays: &[RelayUrl],
    device: &SecretKey,
    name: &str,
    relay_only: bool,
) -> Result<PairResult, PairError> {
    let addr = net::dial_addr(host_id, relays, &payload.direct_addrs, relay_only);
    let conn = endpoint
        .connect(addr, ALPN_PAIR)
        .await
        .map_err(|e| PairError::Network(e.to_string()))?;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| PairError::Network(e.to_string()))?;
    let net_err = |e: std::io::Error| PairError::Network(e.to_string());

    // Our Noise static key is throwaway: the device key is proven by signature below.
    let noise = NoiseKeypair::generate();
    let (state, msg1) = Initiator::start(
        &noise,
        &payload.host_noise_key,
        payload.secret.as_bytes(),
        &pairing_prologue(&payload.host_id),
        &hello_payload(&payload.secret.pairing_id()),
    )
    .map_err(|_| PairError::Mismatch)?;
    write_message(&mut send, &msg1).await.map_err(net_err)?;
    let answer = read_msg(&mut recv).await?;
    let body = match parse_answer(&answer) {
        Some(Answer::Message2(body)) => body,
        Some(Answer::Refused { code: Some(r), .. }) => return Err(PairError::Refused(r)),
        Some(Answer::Refused { reason, .. }) => return Err(PairError::HostSaid(reason)),
        None => return Err(PairError::Mismatch),
    };
    let (mut transport, host_name) = state.finish(body).map_err(|_| PairError::Mismatch)?;
    let hash = transport.handshake_hash();
    let msg = confirm_message(&hash);
    let confirm = PairConfirm {
        device: *device.public().as_bytes(),
        name: name.to_owned(),
        signature: device.sign(&msg).to_bytes().to_vec(),
    };
    let bytes = postcard::to_stdvec(&confirm).map_err(|_| PairError::Mismatch)?;
    let ct = transport.encrypt(&bytes).map_err(|_| PairError::Mismatch)?;
    write_message(&mut send, &ct).await.map_err(net_err)?;
    let reply = read_msg(&mut recv).await?;
    let plain = transport.decrypt(&reply).map_err(|_| PairError::Mismatch)?;
    let outcome: PairOutcome = postcard::from_bytes(&plain).map_err(|_| PairError::Mismatch)?;
    conn.close(crate::proto::close::quic::DONE.into(), b"paired");
    match outcome {
        PairOutcome::Refused(why) => Err(PairError::HostSaid(why)),
        PairOutcome::Paired {
            role,
            host_name: hn,
        } => {
            let host_name = if hn.is_empty() {
                String::from_utf8_lossy(&host_name).into_owned()
            } else {
                hn
            };
            let name = payload
                .host_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or(host_name);
            Ok(PairResult {
                host: KnownHost {
                    name: sanitize_host_name(&name),
                    endpoint_id: host_id.to_string(),
                    noise_key: hex::encode(payload.host_noise_key),
                    relay_urls: payload.relay_urls.clone(),
                    direct_addrs: payload.direct_addrs.clone(),
                    role,
                    paired_at: now_secs(),
                    relay_token: payload.relay_token.clone(),
                    relay_cert_sha256: payload.relay_cert_sha256.map(hex::encode),
                    keep_routes: false,
                },
                code: short_code(&hash),
                role,
            })
        }
    }
}

/// One message of the pairing stream; the host ending the stream early is a network failure.
async fn read_msg(recv: &mut iroh::endpoint::RecvStream) -> Result<Vec<u8>, PairError> {
    match read_message(recv).await {
        Ok(Some(StreamMessage::Message(m))) => Ok(m),
        Ok(_) => Err(PairError::Network(
            "the host ended the pairing stream".into(),
        )),
        Err(e) => Err(PairError::Network(e.to_string())),
    }
}

fn sanitize_host_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(32)
        .collect();
    if s.is_empty() { "host".into() } else { s }
}
