//! Test vectors for other implementations (the web app), in `pairing/vectors/`.
//!
//! `vectors_match_files` recomputes every vector from fixed inputs and compares
//! with the files. Run with `PEER_REGEN_VECTORS=1` to rewrite the files instead.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use peer_pairing::{
    Initiator, NOISE_PATTERN, NoiseKeypair, PAIR_PROLOGUE_PREFIX, PairingPayload, PairingSecret,
    PayloadError, RelayToken, Responder, hello_payload, pairing_prologue, parse_hello_payload,
    short_code,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

// ---------------------------------------------------------------------------
// Noise vectors

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoiseVectors {
    description: Vec<String>,
    protocol_name: String,
    vectors: Vec<NoiseVector>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoiseVector {
    name: String,
    initiator_static_secret: String,
    initiator_static_public: String,
    initiator_ephemeral_secret: String,
    initiator_ephemeral_public: String,
    responder_static_secret: String,
    responder_static_public: String,
    responder_ephemeral_secret: String,
    responder_ephemeral_public: String,
    psk: String,
    pairing_id: String,
    host_id: String,
    prologue: String,
    msg1_payload: String,
    msg1: String,
    host_name: String,
    msg2_payload: String,
    msg2: String,
    handshake_hash: String,
    short_code: String,
    transport: Vec<TransportVector>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportVector {
    sender: String,
    plaintext: String,
    ciphertext: String,
}

/// Fixed inputs of one handshake vector.
struct NoiseInputs {
    name: &'static str,
    initiator_static: [u8; 32],
    initiator_ephemeral: [u8; 32],
    responder_static: [u8; 32],
    responder_ephemeral: [u8; 32],
    psk: [u8; 32],
    /// The host's endpoint id, bound into the prologue.
    host_id: [u8; 32],
    /// Message 2 payload.
    host_name: &'static str,
    /// `(sender is initiator, plaintext)`, in order.
    transport: Vec<(bool, Vec<u8>)>,
}

/// 32 bytes counting up from `start`.
fn counting(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start.wrapping_add(u8::try_from(i).unwrap()))
}

fn noise_inputs() -> Vec<NoiseInputs> {
    let psk = counting(0x90);
    vec![
        NoiseInputs {
            name: "pairing with the host of the \"minimal\" payload in payload.json",
            initiator_static: counting(0x10),
            initiator_ephemeral: counting(0x30),
            responder_static: counting(0x50),
            responder_ephemeral: counting(0x70),
            psk,
            host_id: counting(0xa0),
            host_name: "studio",
            transport: vec![
                (true, b"confirm".to_vec()),
                (false, b"hello from the host".to_vec()),
                (true, b"second message from the initiator".to_vec()),
                (false, b"second message from the responder".to_vec()),
            ],
        },
        NoiseInputs {
            name: "non-ASCII host name, empty and odd transport messages",
            initiator_static: [0x01; 32],
            initiator_ephemeral: [0x02; 32],
            responder_static: [0x03; 32],
            responder_ephemeral: [0x04; 32],
            psk: [0x05; 32],
            host_id: [0x06; 32],
            host_name: "Jo's MacBook ✨",
            transport: vec![
                (true, vec![]),
                (true, vec![0x00]),
                (false, vec![]),
                (false, vec![0xff; 100]),
            ],
        },
    ]
}

fn noise_vector(inputs: &NoiseInputs) -> NoiseVector {
    let pairing_id = PairingSecret::from_bytes(inputs.psk).pairing_id();
    let prologue = pairing_prologue(&inputs.host_id);
    let hello = hello_payload(&pairing_id);
    let initiator_static = NoiseKeypair::from_secret_bytes(inputs.initiator_static);
    let responder_static = NoiseKeypair::from_secret_bytes(inputs.responder_static);
    let public_of = |secret| NoiseKeypair::from_secret_bytes(secret).public();

    let (waiting, msg1) = Initiator::start_with_ephemeral_for_testing(
        &initiator_static,
        &responder_static.public(),
        &inputs.psk,
        &prologue,
        &inputs.initiator_ephemeral,
        &hello,
    )
    .unwrap();
    let (awaiting_psk, msg1_payload) = Responder::read_first_with_ephemeral_for_testing(
        &responder_static,
        &prologue,
        &inputs.responder_ephemeral,
        &msg1,
    )
    .unwrap();
    assert_eq!(parse_hello_payload(&msg1_payload), Some(pairing_id));
    assert_eq!(awaiting_psk.remote_static(), initiator_static.public());
    let (mut responder, msg2) = awaiting_psk
        .respond(&inputs.psk, inputs.host_name.as_bytes())
        .unwrap();
    let (mut initiator, msg2_payload) = waiting.finish(&msg2).unwrap();
    assert_eq!(msg2_payload, inputs.host_name.as_bytes());
    assert_eq!(initiator.handshake_hash(), responder.handshake_hash());
    assert_eq!(msg1[..32], public_of(inputs.initiator_ephemeral));
    assert_eq!(msg2[..32], public_of(inputs.responder_ephemeral));

    let transport = inputs
        .transport
        .iter()
        .map(|(from_initiator, plaintext)| {
            let (sender, receiver) = if *from_initiator {
                (&mut initiator, &mut responder)
            } else {
                (&mut responder, &mut initiator)
            };
            let ciphertext = sender.encrypt(plaintext).unwrap();
            assert_eq!(&receiver.decrypt(&ciphertext).unwrap(), plaintext);
            TransportVector {
                sender: if *from_initiator {
                    "initiator"
                } else {
                    "responder"
                }
                .into(),
                plaintext: hex::encode(plaintext),
                ciphertext: hex::encode(ciphertext),
            }
        })
        .collect();

    NoiseVector {
        name: inputs.name.into(),
        initiator_static_secret: hex::encode(inputs.initiator_static),
        initiator_static_public: hex::encode(initiator_static.public()),
        initiator_ephemeral_secret: hex::encode(inputs.initiator_ephemeral),
        initiator_ephemeral_public: hex::encode(public_of(inputs.initiator_ephemeral)),
        responder_static_secret: hex::encode(inputs.responder_static),
        responder_static_public: hex::encode(responder_static.public()),
        responder_ephemeral_secret: hex::encode(inputs.responder_ephemeral),
        responder_ephemeral_public: hex::encode(public_of(inputs.responder_ephemeral)),
        psk: hex::encode(inputs.psk),
        pairing_id: hex::encode(pairing_id),
        host_id: hex::encode(inputs.host_id),
        prologue: hex::encode(prologue),
        msg1_payload: hex::encode(hello),
        msg1: hex::encode(msg1),
        host_name: inputs.host_name.into(),
        msg2_payload: hex::encode(inputs.host_name),
        msg2: hex::encode(msg2),
        handshake_hash: hex::encode(initiator.handshake_hash()),
        short_code: short_code(&initiator.handshake_hash()),
        transport,
    }
}

fn noise_vectors() -> NoiseVectors {
    NoiseVectors {
        description: [
            "Test vectors for the peer pairing handshake (see pairing/README.md).",
            "All byte strings are lowercase hex. X25519 secrets are given unclamped; clamp \
             them as usual (RFC 7748) when computing public keys and DH.",
            "The initiator knows responder_static_public in advance (pattern IK). The psk is \
             mixed in at position 2, i.e. at the end of message 2 (IKpsk2).",
            "These are peer's pairing handshakes: initiator = the device that scanned the QR \
             code, responder = the host (responder_static_public is the QR code's \
             host_noise_key, psk its secret, host_id its host_id).",
            "pairing_id = first 16 bytes of BLAKE2s-256(\"peer/pairing-id/1\" || psk). \
             prologue = \"peer/pair/1\" (11 ASCII bytes) || host_id (32 bytes). \
             msg1_payload = 0x01 || pairing_id (17 bytes). msg2_payload = host_name as UTF-8.",
            "msg1 = initiator ephemeral public (32) || encrypted initiator static (48) || \
             encrypted msg1_payload (len + 16). msg2 = responder ephemeral public (32) || \
             encrypted msg2_payload (len + 16).",
            "handshake_hash is the Noise handshake hash h after message 2 (32 bytes); \
             short_code = six digits of BLAKE2s-256(\"peer/sas/1\" || handshake_hash), \
             first 4 bytes as big-endian u32, mod 1000000, zero padded, space after the third.",
            "transport lists transport messages in the order they were sent; each direction \
             has its own nonce counter starting at 0 (standard Noise transport). Their \
             plaintexts are arbitrary test bytes; in peer the first one (initiator) carries \
             the PairConfirm and the second (responder) the PairOutcome.",
        ]
        .map(String::from)
        .to_vec(),
        protocol_name: NOISE_PATTERN.into(),
        vectors: noise_inputs().iter().map(noise_vector).collect(),
    }
}

// ---------------------------------------------------------------------------
// Payload vectors

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadVectors {
    description: Vec<String>,
    url_base: String,
    valid: Vec<ValidPayload>,
    decode_only: Vec<DecodeOnlyPayload>,
    invalid: Vec<InvalidPayload>,
    invalid_links: Vec<InvalidLink>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadFields {
    host_id: String,
    host_noise_key: String,
    secret: String,
    expires_at: u64,
    relay_urls: Vec<String>,
    direct_addrs: Vec<String>,
    host_name: Option<String>,
    relay_cert_sha256: Option<String>,
    relay_token: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidPayload {
    name: String,
    fields: PayloadFields,
    pairing_id: String,
    encoded: String,
    fragment: String,
    url: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeOnlyPayload {
    name: String,
    encoded: String,
    fields: PayloadFields,
    reencoded: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidPayload {
    name: String,
    encoded: String,
    error: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidLink {
    name: String,
    link: String,
    error: String,
}

const URL_BASE: &str = "https://peer.dev/pair";

/// The name of an error variant, as used in the vectors file.
fn error_name(error: PayloadError) -> &'static str {
    match error {
        PayloadError::Empty => "Empty",
        PayloadError::TooLong { .. } => "TooLong",
        PayloadError::UnsupportedVersion(_) => "UnsupportedVersion",
        PayloadError::Truncated { .. } => "Truncated",
        PayloadError::Base64 => "Base64",
        PayloadError::BadUtf8 { .. } => "BadUtf8",
        PayloadError::InvalidAddr { .. } => "InvalidAddr",
        PayloadError::InvalidRelayUrl => "InvalidRelayUrl",
        PayloadError::InvalidHostName => "InvalidHostName",
        PayloadError::InvalidRelayCertHash { .. } => "InvalidRelayCertHash",
        PayloadError::InvalidRelayToken => "InvalidRelayToken",
        PayloadError::DuplicateField { .. } => "DuplicateField",
        PayloadError::TooMany { .. } => "TooMany",
        PayloadError::UnknownCriticalField { .. } => "UnknownCriticalField",
        PayloadError::NoRoute => "NoRoute",
        PayloadError::Expired { .. } => "Expired",
        PayloadError::MissingFragment => "MissingFragment",
    }
}

fn fields_of(payload: &PairingPayload) -> PayloadFields {
    PayloadFields {
        host_id: hex::encode(payload.host_id),
        host_noise_key: hex::encode(payload.host_noise_key),
        secret: hex::encode(payload.secret.as_bytes()),
        expires_at: payload.expires_at,
        relay_urls: payload.relay_urls.clone(),
        direct_addrs: payload
            .direct_addrs
            .iter()
            .map(ToString::to_string)
            .collect(),
        host_name: payload.host_name.clone(),
        relay_cert_sha256: payload.relay_cert_sha256.map(hex::encode),
        relay_token: payload
            .relay_token
            .as_ref()
            .map(|token| token.as_str().to_owned()),
    }
}

/// The payloads of the `valid` vectors.
fn valid_payloads() -> Vec<(&'static str, PairingPayload)> {
    let minimal = PairingPayload {
        host_id: counting(0xa0),
        host_noise_key: NoiseKeypair::from_secret_bytes(counting(0x50)).public(),
        secret: PairingSecret::from_bytes(counting(0x90)),
        expires_at: 1_767_225_600,
        relay_urls: vec!["https://relay.peer.dev".into()],
        direct_addrs: vec![],
        host_name: None,
        relay_cert_sha256: None,
        relay_token: None,
    };
    let full = PairingPayload {
        relay_urls: vec![
            "https://relay.peer.dev".into(),
            "http://192.168.1.20:3340/".into(),
        ],
        direct_addrs: vec![
            "192.168.1.20:41641".parse().unwrap(),
            "[2001:db8::20]:41641".parse().unwrap(),
            "[::ffff:10.0.0.1]:443".parse().unwrap(),
        ],
        host_name: Some("Jo's MacBook ✨".into()),
        relay_cert_sha256: Some(counting(0xc0)),
        ..minimal.clone()
    };
    let direct_only = PairingPayload {
        relay_urls: vec![],
        direct_addrs: vec!["10.0.0.7:7000".parse().unwrap()],
        expires_at: 0,
        ..minimal.clone()
    };
    let token_relay = PairingPayload {
        relay_urls: vec!["https://relay.example.org:3443/".into()],
        relay_cert_sha256: Some(counting(0xe0)),
        relay_token: Some(RelayToken::new("k3Y-relay_token.0123456789~").unwrap()),
        ..minimal.clone()
    };
    vec![
        ("minimal: one relay URL", minimal),
        ("every field", full),
        (
            "self-hosted relay in token mode: pinned certificate and relay token (0x81)",
            token_relay,
        ),
        ("direct address only, expires_at 0", direct_only),
    ]
}

fn payload_vectors() -> PayloadVectors {
    let valid: Vec<ValidPayload> = valid_payloads()
        .into_iter()
        .map(|(name, payload)| {
            let encoded = payload.encode().unwrap();
            assert_eq!(PairingPayload::decode(&encoded).unwrap(), payload);
            let url = payload.to_url(URL_BASE).unwrap();
            assert_eq!(PairingPayload::from_url(&url).unwrap(), payload);
            ValidPayload {
                name: name.into(),
                fields: fields_of(&payload),
                pairing_id: hex::encode(payload.secret.pairing_id()),
                encoded: hex::encode(encoded),
                fragment: payload.to_fragment().unwrap(),
                url,
            }
        })
        .collect();

    let minimal = valid_payloads()[0].1.encode().unwrap();
    let with = |tail: &[u8]| {
        let mut bytes = minimal.clone();
        bytes.extend_from_slice(tail);
        bytes
    };
    let header = &minimal[..105];
    let header_with = |tail: &[u8]| {
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(tail);
        bytes
    };

    let decode_only = [
        (
            "unknown optional fields (tags 0x80 and 0xff) are skipped",
            with(&[0x80, 3, 1, 2, 3, 0xff, 0]),
        ),
        (
            "fields in any order: host name before the relay URL",
            header_with(
                &[
                    [0x03, 2].as_slice(),
                    b"hi",
                    &minimal[105..],
                    &[0x02, 6, 127, 0, 0, 1, 0x1f, 0x90],
                ]
                .concat(),
            ),
        ),
    ]
    .into_iter()
    .map(|(name, encoded)| {
        let payload = PairingPayload::decode(&encoded).unwrap();
        DecodeOnlyPayload {
            name: name.into(),
            encoded: hex::encode(&encoded),
            fields: fields_of(&payload),
            reencoded: hex::encode(payload.encode().unwrap()),
        }
    })
    .collect();

    let mut version_2 = minimal.clone();
    version_2[0] = 2;
    let invalid = [
        ("empty", vec![]),
        ("longer than 1024 bytes", with(&[0x80; 1000])),
        ("version 2", version_2),
        ("cut off in the header", minimal[..60].to_vec()),
        ("cut off in a field", minimal[..minimal.len() - 1].to_vec()),
        ("field tag without length", with(&[0x03])),
        (
            "relay URL not UTF-8",
            header_with(&[
                0x01, 9, b'h', b't', b't', b'p', b':', b'/', b'/', b'a', 0xff,
            ]),
        ),
        (
            "relay URL with another scheme",
            header_with(&[[0x01, 9].as_slice(), b"ftp://a.b"].concat()),
        ),
        (
            "relay URL with a space",
            header_with(&[[0x01, 10].as_slice(), b"http://a b"].concat()),
        ),
        (
            "direct address of 5 bytes",
            header_with(&[0x02, 5, 1, 2, 3, 4, 5]),
        ),
        ("empty host name", with(&[0x03, 0])),
        (
            "host name with a newline",
            with(&[[0x03, 3].as_slice(), b"a\nb"].concat()),
        ),
        (
            "host name of 65 bytes",
            with(&[[0x03, 65].as_slice(), &[b'a'; 65]].concat()),
        ),
        (
            "relay certificate hash of 31 bytes",
            with(&[[0x04, 31].as_slice(), &[0; 31]].concat()),
        ),
        ("host name twice", with(&[0x03, 1, b'a', 0x03, 1, b'b'])),
        (
            "five relay URLs",
            header_with(&[[0x01, 8].as_slice(), b"http://a"].concat().repeat(5)),
        ),
        (
            "nine direct addresses",
            header_with(&[0x02, 6, 10, 0, 0, 1, 0, 80].repeat(9)),
        ),
        (
            "relay token of 15 bytes",
            with(&[[0x81, 15].as_slice(), b"0123456789abcde"].concat()),
        ),
        (
            "relay token with a space",
            with(&[[0x81, 17].as_slice(), b"0123456789 abcdef"].concat()),
        ),
        (
            "relay token twice",
            with(
                &[
                    [0x81, 16].as_slice(),
                    b"0123456789abcdef",
                    &[0x81, 16],
                    b"0123456789abcdef",
                ]
                .concat(),
            ),
        ),
        ("unknown critical field 0x05", with(&[0x05, 0])),
        ("unknown critical field 0x7f", with(&[0x7f, 1, 0])),
        ("no relay URL and no direct address", header.to_vec()),
        (
            "only a host name: still no route",
            header_with(&[0x03, 1, b'a']),
        ),
    ]
    .into_iter()
    .map(|(name, encoded)| InvalidPayload {
        name: name.into(),
        error: error_name(PairingPayload::decode(&encoded).unwrap_err()).into(),
        encoded: hex::encode(&encoded),
    })
    .collect();

    let fragment = &valid[0].fragment;
    let invalid_links = [
        ("empty", String::new()),
        ("nothing after #", format!("{URL_BASE}#")),
        ("a URL without #", URL_BASE.to_string()),
        (
            "not base64url",
            format!("{URL_BASE}#{}", fragment.replace('A', "+")),
        ),
        ("padded base64", format!("{URL_BASE}#{fragment}=")),
        (
            "one character removed (non-zero trailing bits)",
            format!("{URL_BASE}#{}", &fragment[..fragment.len() - 1]),
        ),
        (
            "longer than 1366 characters",
            format!("{URL_BASE}#{}", "A".repeat(1367)),
        ),
    ]
    .into_iter()
    .map(|(name, link)| InvalidLink {
        name: name.into(),
        error: error_name(PairingPayload::from_url(&link).unwrap_err()).into(),
        link,
    })
    .collect();

    PayloadVectors {
        description: [
            "Test vectors for the peer QR pairing payload v1 (format in pairing/README.md).",
            "Byte strings (encoded, host_id, host_noise_key, secret, relay_cert_sha256, \
             pairing_id) are lowercase hex. direct_addrs are written as IP:port (IPv6 in \
             brackets); host_name, relay_urls and relay_token are plain strings.",
            "valid: fields -> encoded (the only valid encoding, fields in tag order) -> \
             fragment (unpadded base64url of encoded) -> url (url_base + '#' + fragment). \
             pairing_id = first 16 bytes of BLAKE2s-256(\"peer/pairing-id/1\" || secret).",
            "decode_only: encodings another encoder may produce; decoding yields fields, \
             re-encoding yields reencoded.",
            "invalid / invalid_links: inputs a decoder must reject; error is the name of the \
             Rust PayloadError variant reported (first problem found, checks in the order \
             the README gives).",
        ]
        .map(String::from)
        .to_vec(),
        url_base: URL_BASE.into(),
        valid,
        decode_only,
        invalid,
        invalid_links,
    }
}

// ---------------------------------------------------------------------------
// Files

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Compares `computed` with the file, or rewrites the file when regenerating.
fn check_file<T>(name: &str, computed: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let path = vectors_dir().join(name);
    if std::env::var_os("PEER_REGEN_VECTORS").is_some_and(|value| value == "1") {
        let mut text = serde_json::to_string_pretty(computed).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run with PEER_REGEN_VECTORS=1 to create it",
            path.display()
        )
    });
    let stored: T = serde_json::from_str(&text).unwrap();
    assert_eq!(
        &stored,
        computed,
        "{} is out of date; if the change is intended, run \
         PEER_REGEN_VECTORS=1 cargo test -p peer-pairing --test vectors",
        path.display()
    );
}

#[test]
fn vectors_match_files() {
    check_file("noise_ikpsk2.json", &noise_vectors());
    check_file("payload.json", &payload_vectors());
}

/// Replays the stored Noise vectors from the file alone: each side rebuilt from
/// the stored secrets must reproduce the stored messages.
#[test]
fn stored_noise_vectors_replay() {
    let text = std::fs::read_to_string(vectors_dir().join("noise_ikpsk2.json")).unwrap();
    let file: NoiseVectors = serde_json::from_str(&text).unwrap();
    assert_eq!(file.protocol_name, NOISE_PATTERN);
    let bytes = |text: &str| hex::decode(text).unwrap();
    let key = |text: &str| -> [u8; 32] { bytes(text).try_into().unwrap() };
    for vector in &file.vectors {
        // The wire inputs follow from the psk, host id and host name.
        let pairing_id = PairingSecret::from_bytes(key(&vector.psk)).pairing_id();
        assert_eq!(hex::encode(pairing_id), vector.pairing_id);
        let prologue = bytes(&vector.prologue);
        assert_eq!(prologue, pairing_prologue(&key(&vector.host_id)));
        assert!(prologue.starts_with(PAIR_PROLOGUE_PREFIX));
        assert_eq!(hex::encode(hello_payload(&pairing_id)), vector.msg1_payload);
        assert_eq!(hex::encode(&vector.host_name), vector.msg2_payload);

        let initiator_static =
            NoiseKeypair::from_secret_bytes(key(&vector.initiator_static_secret));
        let responder_static =
            NoiseKeypair::from_secret_bytes(key(&vector.responder_static_secret));
        assert_eq!(
            hex::encode(initiator_static.public()),
            vector.initiator_static_public
        );
        assert_eq!(
            hex::encode(responder_static.public()),
            vector.responder_static_public
        );

        let (waiting, msg1) = Initiator::start_with_ephemeral_for_testing(
            &initiator_static,
            &key(&vector.responder_static_public),
            &key(&vector.psk),
            &bytes(&vector.prologue),
            &key(&vector.initiator_ephemeral_secret),
            &bytes(&vector.msg1_payload),
        )
        .unwrap();
        assert_eq!(hex::encode(&msg1), vector.msg1, "{}", vector.name);

        // The responder reads the stored message 1, not the recomputed one.
        let (awaiting_psk, payload) = Responder::read_first_with_ephemeral_for_testing(
            &responder_static,
            &bytes(&vector.prologue),
            &key(&vector.responder_ephemeral_secret),
            &bytes(&vector.msg1),
        )
        .unwrap();
        assert_eq!(parse_hello_payload(&payload), Some(pairing_id));
        assert_eq!(hex::encode(payload), vector.msg1_payload);
        let (mut responder, msg2) = awaiting_psk
            .respond(&key(&vector.psk), &bytes(&vector.msg2_payload))
            .unwrap();
        assert_eq!(hex::encode(&msg2), vector.msg2, "{}", vector.name);
        let (mut initiator, payload) = waiting.finish(&bytes(&vector.msg2)).unwrap();
        assert_eq!(hex::encode(payload), vector.msg2_payload);
        assert_eq!(
            hex::encode(initiator.handshake_hash()),
            vector.handshake_hash
        );
        assert_eq!(
            hex::encode(responder.handshake_hash()),
            vector.handshake_hash
        );
        assert_eq!(short_code(&responder.handshake_hash()), vector.short_code);

        for message in &vector.transport {
            let (sender, receiver) = match message.sender.as_str() {
                "initiator" => (&mut initiator, &mut responder),
                "responder" => (&mut responder, &mut initiator),
                other => panic!("unknown sender {other}"),
            };
            assert_eq!(
                hex::encode(receiver.decrypt(&bytes(&message.ciphertext)).unwrap()),
                message.plaintext
            );
            assert_eq!(
                hex::encode(sender.encrypt(&bytes(&message.plaintext)).unwrap()),
                message.ciphertext
            );
        }
    }
}

/// Decodes the stored payload vectors from the file alone.
#[test]
fn stored_payload_vectors_decode() {
    let text = std::fs::read_to_string(vectors_dir().join("payload.json")).unwrap();
    let file: PayloadVectors = serde_json::from_str(&text).unwrap();
    for vector in &file.valid {
        let from_url = PairingPayload::from_url(&vector.url).unwrap();
        let from_fragment = PairingPayload::from_fragment(&vector.fragment).unwrap();
        let decoded = PairingPayload::decode(&hex::decode(&vector.encoded).unwrap()).unwrap();
        assert_eq!(from_url, decoded);
        assert_eq!(from_fragment, decoded);
        assert_eq!(fields_of(&decoded), vector.fields, "{}", vector.name);
        assert_eq!(hex::encode(decoded.secret.pairing_id()), vector.pairing_id);
        let addrs: Vec<SocketAddr> = vector
            .fields
            .direct_addrs
            .iter()
            .map(|addr| addr.parse().unwrap())
            .collect();
        assert_eq!(decoded.direct_addrs, addrs);
    }
    for vector in &file.decode_only {
        let decoded = PairingPayload::decode(&hex::decode(&vector.encoded).unwrap()).unwrap();
        assert_eq!(fields_of(&decoded), vector.fields, "{}", vector.name);
        assert_eq!(hex::encode(decoded.encode().unwrap()), vector.reencoded);
    }
    for vector in &file.invalid {
        let error = PairingPayload::decode(&hex::decode(&vector.encoded).unwrap()).unwrap_err();
        assert_eq!(error_name(error), vector.error, "{}", vector.name);
    }
    for vector in &file.invalid_links {
        let error = PairingPayload::from_url(&vector.link).unwrap_err();
        assert_eq!(error_name(error), vector.error, "{}", vector.name);
    }
}
