//! Property tests of the pairing payload: round trips, and no panics on any input.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use peer_pairing::{PairingPayload, PairingSecret, RelayToken};
use proptest::collection::vec;
use proptest::prelude::*;

/// IPv4 or IPv6 socket addresses as the format carries them (no flow info or
/// scope id).
fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(
            Ipv4Addr::from(ip),
            port
        )
        .into()),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        )
        .into()),
    ]
}

/// Valid relay URLs, including non-ASCII ones.
fn relay_url() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("http://"), Just("https://")],
        "[^\\s\\p{C}]{1,30}",
    )
        .prop_map(|(scheme, rest)| format!("{scheme}{rest}"))
}

/// Arbitrary payloads that satisfy every rule of the format.
fn valid_payload() -> impl Strategy<Value = PairingPayload> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        vec(relay_url(), 0..=4),
        vec(socket_addr(), 0..=8),
        proptest::option::of("[^\\p{C}]{1,16}"),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of("[!-~]{16,255}"),
    )
        .prop_filter("needs a route", |fields| {
            !fields.4.is_empty() || !fields.5.is_empty()
        })
        .prop_map(
            |(
                host_id,
                host_noise_key,
                secret,
                expires_at,
                relay_urls,
                direct_addrs,
                host_name,
                cert,
                token,
            )| {
                PairingPayload {
                    host_id,
                    host_noise_key,
                    secret: PairingSecret::from_bytes(secret),
                    expires_at,
                    relay_urls,
                    direct_addrs,
                    host_name,
                    relay_cert_sha256: cert,
                    relay_token: token.map(|t| RelayToken::new(&t).unwrap()),
                }
            },
        )
}

/// Payloads with loosely generated fields, many of them invalid.
fn any_payload() -> impl Strategy<Value = PairingPayload> {
    (
        valid_payload(),
        vec(
            prop_oneof![relay_url(), ".{0,300}", "https?://.{0,260}"],
            0..=6,
        ),
        vec(socket_addr(), 0..=10),
        proptest::option::of(".{0,70}"),
    )
        .prop_map(|(mut payload, relay_urls, direct_addrs, host_name)| {
            payload.relay_urls = relay_urls;
            payload.direct_addrs = direct_addrs;
            payload.host_name = host_name;
            payload
        })
}

/// An edit applied to a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), vec(any::<u8>(), 1..40))
            .prop_map(|(i, bytes)| Mutation::Insert(i, bytes)),
        (any::<prop::sample::Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    match mutation {
        Mutation::Flip(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] ^= b;
        }
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Insert(i, new) => {
            let i = i.index(bytes.len() + 1);
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let i = i.index(bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}

/// Whatever `decode` accepts is valid and re-encodes to an equivalent payload.
fn check_accepted(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(payload) = PairingPayload::decode(bytes) {
        prop_assert_eq!(payload.validate(), Ok(()));
        let again = payload.encode().unwrap();
        prop_assert!(again.len() <= bytes.len());
        prop_assert_eq!(PairingPayload::decode(&again).unwrap(), payload);
    }
    Ok(())
}

proptest! {
    #[test]
    fn round_trips(payload in valid_payload()) {
        prop_assert_eq!(payload.validate(), Ok(()));
        let bytes = payload.encode().unwrap();
        prop_assert!(bytes.len() <= peer_pairing::MAX_PAYLOAD_LEN);
        prop_assert_eq!(&PairingPayload::decode(&bytes).unwrap(), &payload);
        let fragment = payload.to_fragment().unwrap();
        prop_assert!(fragment.len() <= peer_pairing::MAX_FRAGMENT_LEN);
        prop_assert_eq!(&PairingPayload::from_fragment(&fragment).unwrap(), &payload);
        let url = payload.to_url("https://peer.dev/pair").unwrap();
        prop_assert_eq!(&PairingPayload::from_url(&url).unwrap(), &payload);
    }

    #[test]
    fn encode_succeeds_exactly_when_validate_does(payload in any_payload()) {
        match payload.encode() {
            Ok(bytes) => {
                prop_assert_eq!(payload.validate(), Ok(()));
                prop_assert_eq!(PairingPayload::decode(&bytes).unwrap(), payload);
            }
            Err(error) => {
                prop_assert_eq!(payload.validate(), Err(error));
                prop_assert!(payload.to_fragment().is_err());
            }
        }
    }

    #[test]
    fn relay_tokens_are_exactly_printable_ascii_of_16_to_255_bytes(text in ".{0,300}") {
        let valid = (16..=255).contains(&text.len())
            && text.bytes().all(|b| (0x21..=0x7e).contains(&b));
        prop_assert_eq!(RelayToken::new(&text).is_ok(), valid);
    }

    #[test]
    fn decode_never_panics(bytes in vec(any::<u8>(), 0..2000)) {
        check_accepted(&bytes)?;
    }

    #[test]
    fn decode_never_panics_on_plausible_input(
        tail in vec(any::<u8>(), 0..400),
        header in any::<[u8; 104]>(),
    ) {
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&tail);
        check_accepted(&bytes)?;
    }

    #[test]
    fn mutated_encodings_never_panic(
        payload in valid_payload(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut bytes = payload.encode().unwrap();
        for mutation in &mutations {
            if bytes.is_empty() {
                break;
            }
            apply(&mut bytes, mutation);
        }
        check_accepted(&bytes)?;
    }

    #[test]
    fn from_url_never_panics(text in any::<String>()) {
        let _ = PairingPayload::from_url(&text);
        let _ = PairingPayload::from_fragment(&text);
    }

    #[test]
    fn from_url_never_panics_on_plausible_links(
        base in "[ -~]{0,40}",
        fragment in "[A-Za-z0-9_=#-]{0,1500}",
        space in "\\s{0,3}",
    ) {
        let _ = PairingPayload::from_url(&format!("{space}{base}#{fragment}{space}"));
        let _ = PairingPayload::from_url(&fragment);
    }

    #[test]
    fn mutated_links_never_panic(
        payload in valid_payload(),
        index in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let url = payload.to_url("https://peer.dev/pair").unwrap();
        let mut chars: Vec<char> = url.chars().collect();
        let i = index.index(chars.len());
        chars[i] = replacement;
        let mutated: String = chars.into_iter().collect();
        if let Ok(decoded) = PairingPayload::from_url(&mutated) {
            prop_assert_eq!(decoded.validate(), Ok(()));
        }
    }
}
