//! Test vectors for the browser channel (`peer/bridge/1`), in
//! `pairing/vectors/bridge_ikpsk2.json`: complete Noise handshakes with the bridge prologue and
//! message 1 payloads, followed by transport messages carrying enveloped frames encoded by the
//! host's own codec. The web app's test suite replays the same file.
//!
//! `bridge_vectors_match_file` recomputes every vector from fixed inputs; run with
//! `PEER_REGEN_VECTORS=1` to rewrite the file instead.

use std::path::PathBuf;

use peer::proto::browser;
use peer::proto::{
    Attach, BrowserPaired, Frame, HostHello, Input, Output, PROTOCOL_VERSION, PairBrowser, Request,
    RequestFrame, Role, ScreenRequest, WinSize,
};
use peer_pairing::{
    DEVICE_HELLO, Initiator, NOISE_PATTERN, NoiseKeypair, PairingSecret, Responder,
    bridge_prologue as prologue, hello_payload, short_code,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    description: Vec<String>,
    protocol_name: String,
    vectors: Vec<Vector>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    name: String,
    initiator_static_secret: String,
    initiator_static_public: String,
    initiator_ephemeral_secret: String,
    responder_static_secret: String,
    responder_static_public: String,
    responder_ephemeral_secret: String,
    psk: String,
    host_id: String,
    prologue: String,
    msg1_payload: String,
    msg1: String,
    host_name: String,
    msg2: String,
    handshake_hash: String,
    short_code: String,
    transport: Vec<Message>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    /// `browser` (initiator) or `host` (responder).
    sender: String,
    /// The envelope as JSON: `channel`, the frame's `type` and its `message` in serde's JSON
    /// form (the shape of the generated TypeScript types; byte strings as arrays of numbers).
    what: String,
    plaintext: String,
    ciphertext: String,
}

fn counting(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start.wrapping_add(u8::try_from(i).unwrap()))
}

struct Inputs {
    name: &'static str,
    psk: [u8; 32],
    msg1_payload: Vec<u8>,
    messages: Vec<(bool, String, Vec<u8>)>,
}

/// One enveloped frame: who sends it, its description and its plaintext.
fn env(from_browser: bool, channel: u32, frame: Frame) -> (bool, String, Vec<u8>) {
    let message = match &frame {
        Frame::PairBrowser(m) => serde_json::to_value(m),
        Frame::BrowserPaired(m) => serde_json::to_value(m),
        Frame::HostHello(m) => serde_json::to_value(m),
        Frame::Request(m) => serde_json::to_value(m),
        Frame::Attach(m) => serde_json::to_value(m),
        Frame::Output(m) => serde_json::to_value(m),
        Frame::Input(m) => serde_json::to_value(m),
        Frame::Resize(m) => serde_json::to_value(m),
        Frame::Detach => Ok(serde_json::Value::Null),
        other => panic!("no vector for {other:?}"),
    }
    .unwrap();
    let what = serde_json::json!({
        "channel": channel,
        "type": format!("{:?}", frame.frame_type()),
        "message": message,
    });
    (
        from_browser,
        what.to_string(),
        browser::encode(channel, &frame),
    )
}

fn inputs() -> Vec<Inputs> {
    let secret = counting(0x90);
    let device_psk = counting(0xc0);
    let hello = Frame::HostHello(HostHello {
        protocol: PROTOCOL_VERSION,
        host_name: "studio".into(),
        role: Role::Operator,
        instance: 123_456_789,
    });
    vec![
        Inputs {
            name: "pairing a browser: psk = the QR code's secret, payload 0x01 || pairing id",
            psk: secret,
            msg1_payload: hello_payload(&PairingSecret::from_bytes(secret).pairing_id()).to_vec(),
            messages: vec![
                env(
                    true,
                    0,
                    Frame::PairBrowser(PairBrowser {
                        name: "phone".into(),
                    }),
                ),
                env(
                    false,
                    0,
                    Frame::BrowserPaired(BrowserPaired {
                        role: Role::Operator,
                        host_name: "studio".into(),
                        device_psk,
                    }),
                ),
                env(false, 0, hello.clone()),
            ],
        },
        Inputs {
            name: "a paired browser: psk = its device psk, payload 0x02",
            psk: device_psk,
            msg1_payload: DEVICE_HELLO.to_vec(),
            messages: vec![
                env(false, 0, hello),
                env(
                    true,
                    0,
                    Frame::Request(RequestFrame {
                        id: 1,
                        request: Request::ListSessions,
                    }),
                ),
                env(
                    true,
                    1,
                    Frame::Attach(Attach {
                        session: 3,
                        from_offset: 0,
                        client_token: 77,
                        size: Some(WinSize {
                            cols: 100,
                            rows: 30,
                        }),
                        screen: Some(ScreenRequest { scrollback: 500 }),
                        echo_acks: true,
                    }),
                ),
                env(
                    false,
                    1,
                    Frame::Output(Output {
                        offset: 1 << 40,
                        data: b"hi\r\n".to_vec(),
                    }),
                ),
                env(
                    true,
                    1,
                    Frame::Input(Input {
                        seq: 1,
                        data: b"ls\r".to_vec(),
                    }),
                ),
                env(true, 1, Frame::Resize(WinSize { cols: 40, rows: 20 })),
                env(true, 1, Frame::Detach),
            ],
        },
    ]
}

fn vector(i: &Inputs) -> Vector {
    let initiator_static = counting(0x10);
    let initiator_ephemeral = counting(0x30);
    let responder_static = counting(0x50);
    let responder_ephemeral = counting(0x70);
    let host_id = counting(0xa0);
    let host_name = "studio";
    let pro = prologue(&host_id);
    let is = NoiseKeypair::from_secret_bytes(initiator_static);
    let rs = NoiseKeypair::from_secret_bytes(responder_static);
    let (waiting, msg1) = Initiator::start_with_ephemeral_for_testing(
        &is,
        &rs.public(),
        &i.psk,
        &pro,
        &initiator_ephemeral,
        &i.msg1_payload,
    )
    .unwrap();
    let (awaiting, payload) =
        Responder::read_first_with_ephemeral_for_testing(&rs, &pro, &responder_ephemeral, &msg1)
            .unwrap();
    assert_eq!(payload, i.msg1_payload);
    let (mut host, msg2) = awaiting.respond(&i.psk, host_name.as_bytes()).unwrap();
    let (mut browser, name) = waiting.finish(&msg2).unwrap();
    assert_eq!(name, host_name.as_bytes());
    let transport = i
        .messages
        .iter()
        .map(|(from_browser, what, plain)| {
            let (s, r) = if *from_browser {
                (&mut browser, &mut host)
            } else {
                (&mut host, &mut browser)
            };
            let ct = s.encrypt(plain).unwrap();
            assert_eq!(&r.decrypt(&ct).unwrap(), plain);
            Message {
                sender: if *from_browser { "browser" } else { "host" }.into(),
                what: what.clone(),
                plaintext: hex::encode(plain),
                ciphertext: hex::encode(ct),
            }
        })
        .collect();
    Vector {
        name: i.name.into(),
        initiator_static_secret: hex::encode(initiator_static),
        initiator_static_public: hex::encode(is.public()),
        initiator_ephemeral_secret: hex::encode(initiator_ephemeral),
        responder_static_secret: hex::encode(responder_static),
        responder_static_public: hex::encode(rs.public()),
        responder_ephemeral_secret: hex::encode(responder_ephemeral),
        psk: hex::encode(i.psk),
        host_id: hex::encode(host_id),
        prologue: hex::encode(&pro),
        msg1_payload: hex::encode(&i.msg1_payload),
        msg1: hex::encode(msg1),
        host_name: host_name.into(),
        msg2: hex::encode(msg2),
        handshake_hash: hex::encode(browser.handshake_hash()),
        short_code: short_code(&browser.handshake_hash()),
        transport,
    }
}

fn file() -> File {
    File {
        description: [
            "Test vectors for the browser channel (docs/protocol.md section 14): the bridge \
             handshake and browser-channel messages inside it, generated by \
             peer/tests/it/bridge_vectors.rs with the host's own code.",
            "All byte strings are lowercase hex. X25519 secrets are unclamped. initiator = the \
             browser (its long-term static key), responder = the host (responder_static_public \
             is the pairing payload's host_noise_key).",
            "prologue = \"peer/bridge/1\" (13 ASCII bytes) || host_id (32 bytes). msg1_payload \
             is 0x01 || pairing id (pairing) or 0x02 (a paired browser). msg2 is Noise message \
             2 without the host's 0x00 status byte; its payload is host_name.",
            "transport: Noise transport messages in the order sent, each direction counting \
             nonces from 0. plaintext = the envelope: channel (postcard varint) then the frame \
             (type byte, postcard payload); what describes it as JSON: channel, the frame type \
             and its message in serde's JSON form.",
        ]
        .map(String::from)
        .to_vec(),
        protocol_name: NOISE_PATTERN.into(),
        vectors: inputs().iter().map(vector).collect(),
    }
}

#[test]
fn bridge_vectors_match_file() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pairing/vectors/bridge_ikpsk2.json");
    let computed = file();
    if std::env::var_os("PEER_REGEN_VECTORS").is_some_and(|v| v == "1") {
        let mut text = serde_json::to_string_pretty(&computed).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run PEER_REGEN_VECTORS=1 cargo test -p peer --test it -- bridge_vectors",
            path.display()
        )
    });
    let stored: File = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stored,
        computed,
        "{} is out of date; if the change is intended, run \
         PEER_REGEN_VECTORS=1 cargo test -p peer --test it -- bridge_vectors",
        path.display()
    );
}
