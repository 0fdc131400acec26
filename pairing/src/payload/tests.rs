//! Unit tests of the payload format: golden encoding, every error, tampering.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use super::*;

/// A payload using every field.
fn full() -> PairingPayload {
    PairingPayload {
        host_id: [0x11; 32],
        host_noise_key: [0x22; 32],
        secret: PairingSecret::from_bytes([0x33; 32]),
        expires_at: 1_767_225_600,
        relay_urls: vec!["https://relay.example.com/".into()],
        direct_addrs: vec![
            "192.168.1.20:41641".parse().unwrap(),
            "[2001:db8::1]:41641".parse().unwrap(),
        ],
        host_name: Some("studio-mac".into()),
        relay_cert_sha256: Some([0x44; 32]),
        relay_token: None,
    }
}

/// The smallest valid payload: one relay URL.
fn minimal() -> PairingPayload {
    PairingPayload {
        relay_urls: vec!["http://r".into()],
        direct_addrs: vec![],
        host_name: None,
        relay_cert_sha256: None,
        ..full()
    }
}

/// The fixed 105-byte header of [`full`].
fn header() -> Vec<u8> {
    full().encode().unwrap()[..105].to_vec()
}

/// `header()` followed by the given raw bytes.
fn with_tail(tail: &[u8]) -> Vec<u8> {
    let mut bytes = header();
    bytes.extend_from_slice(tail);
    bytes
}

/// A TLV field.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(value.len()).unwrap()];
    out.extend_from_slice(value);
    out
}

/// A relay URL TLV, so that a payload has a route.
fn relay_tlv() -> Vec<u8> {
    tlv(0x01, b"https://relay.example.com/")
}

#[test]
fn golden_encoding() {
    let encoded = full().encode().unwrap();
    assert_eq!(
        hex::encode(&encoded),
        concat!(
            "01",
            "1111111111111111111111111111111111111111111111111111111111111111",
            "2222222222222222222222222222222222222222222222222222222222222222",
            "3333333333333333333333333333333333333333333333333333333333333333",
            "000000006955b900",
            "011a68747470733a2f2f72656c61792e6578616d706c652e636f6d2f",
            "0206c0a80114a2a9",
            "021220010db8000000000000000000000001a2a9",
            "030a73747564696f2d6d6163",
            "04204444444444444444444444444444444444444444444444444444444444444444",
        )
    );
    assert_eq!(PairingPayload::decode(&encoded).unwrap(), full());
}

#[test]
fn round_trips_binary_fragment_and_url() {
    for payload in [full(), minimal()] {
        payload.validate().unwrap();
        let bytes = payload.encode().unwrap();
        assert_eq!(PairingPayload::decode(&bytes).unwrap(), payload);
        let fragment = payload.to_fragment().unwrap();
        assert!(
            fragment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{fragment}"
        );
        assert_eq!(PairingPayload::from_fragment(&fragment).unwrap(), payload);
        let url = payload.to_url("https://peer.dev/pair").unwrap();
        assert_eq!(url, format!("https://peer.dev/pair#{fragment}"));
        assert_eq!(PairingPayload::from_url(&url).unwrap(), payload);
    }
}

#[test]
fn minimal_payload_is_header_plus_one_field() {
    assert_eq!(minimal().encode().unwrap().len(), 105 + 2 + 8);
}

#[test]
fn to_url_does_not_double_hash_and_replaces_existing_fragment() {
    let fragment = full().to_fragment().unwrap();
    assert_eq!(
        full().to_url("https://peer.dev/pair#").unwrap(),
        format!("https://peer.dev/pair#{fragment}")
    );
    assert_eq!(
        full().to_url("https://peer.dev/#/pair").unwrap(),
        format!("https://peer.dev/#{fragment}")
    );
    assert_eq!(full().to_url("").unwrap(), format!("#{fragment}"));
}

#[test]
fn from_url_accepts_bare_fragments_and_whitespace() {
    let fragment = full().to_fragment().unwrap();
    assert_eq!(PairingPayload::from_url(&fragment).unwrap(), full());
    assert_eq!(
        PairingPayload::from_url(&format!("  \n{fragment}\t")).unwrap(),
        full()
    );
    assert_eq!(
        PairingPayload::from_url(&format!(" https://peer.dev/pair#{fragment} \n")).unwrap(),
        full()
    );
    assert_eq!(
        PairingPayload::from_url(&format!("peer://pair#{fragment}")).unwrap(),
        full()
    );
}

#[test]
fn error_empty() {
    assert_eq!(PairingPayload::decode(&[]), Err(PayloadError::Empty));
    assert_eq!(PairingPayload::from_fragment(""), Err(PayloadError::Empty));
    assert_eq!(
        PairingPayload::from_fragment(" \n"),
        Err(PayloadError::Empty)
    );
    assert_eq!(PairingPayload::from_url(""), Err(PayloadError::Empty));
    assert_eq!(PairingPayload::from_url("  \t"), Err(PayloadError::Empty));
}

#[test]
fn error_too_long() {
    // Checked before the version byte.
    assert_eq!(
        PairingPayload::decode(&[0xff; 1025]),
        Err(PayloadError::TooLong {
            len: 1025,
            max: 1024
        })
    );
    // Checked on the text before base64 decoding.
    let text = "!".repeat(MAX_FRAGMENT_LEN + 1);
    assert_eq!(
        PairingPayload::from_fragment(&text),
        Err(PayloadError::TooLong {
            len: MAX_FRAGMENT_LEN + 1,
            max: MAX_FRAGMENT_LEN
        })
    );
    // Valid base64 of 1025 bytes is also too long.
    let text = URL_SAFE_NO_PAD.encode([1u8; 1025]);
    assert!(matches!(
        PairingPayload::from_fragment(&text),
        Err(PayloadError::TooLong { .. })
    ));
    // Valid fields that together exceed the limit are refused by `encode`.
    let mut payload = full();
    payload.relay_urls = (0..4)
        .map(|i| format!("https://{i}{}", "r".repeat(240)))
        .collect();
    payload.direct_addrs = vec!["[::1]:1".parse().unwrap(); 8];
    assert_eq!(
        payload.validate(),
        Err(PayloadError::TooLong {
            len: 1315,
            max: 1024
        })
    );
    assert_eq!(payload.encode(), payload.validate().map(|()| vec![]));
    assert!(payload.to_fragment().is_err());
    assert!(payload.to_url("https://peer.dev/pair").is_err());
}

#[test]
fn exactly_max_len_is_accepted() {
    let mut payload = minimal();
    payload.relay_urls = (0..4)
        .map(|i| format!("https://{i}{}", "r".repeat(200)))
        .collect();
    let base = payload.encode().unwrap().len();
    // Pad with a host name and direct addresses to hit 1024 exactly.
    let remaining = MAX_PAYLOAD_LEN - base;
    assert!(remaining > 2 && remaining - 2 <= 64 + 8 * 20, "{remaining}");
    let addrs = (remaining - 2 - 1) / 20;
    let addrs = addrs.min(8);
    payload.direct_addrs = vec!["[::1]:1".parse().unwrap(); addrs];
    let name_len = remaining - addrs * 20 - 2;
    assert!((1..=64).contains(&name_len), "{name_len}");
    payload.host_name = Some("n".repeat(name_len));
    let bytes = payload.encode().unwrap();
    assert_eq!(bytes.len(), MAX_PAYLOAD_LEN);
    assert_eq!(PairingPayload::decode(&bytes).unwrap(), payload);
    let fragment = payload.to_fragment().unwrap();
    assert_eq!(fragment.len(), MAX_FRAGMENT_LEN);
    assert_eq!(PairingPayload::from_fragment(&fragment).unwrap(), payload);
}

#[test]
fn error_unsupported_version() {
    let mut bytes = full().encode().unwrap();
    bytes[0] = 2;
    assert_eq!(
        PairingPayload::decode(&bytes),
        Err(PayloadError::UnsupportedVersion(2))
    );
    assert_eq!(
        PairingPayload::decode(&[0]),
        Err(PayloadError::UnsupportedVersion(0))
    );
    assert!(
        PayloadError::UnsupportedVersion(2)
            .to_string()
            .contains("newer version of peer")
    );
}

#[test]
fn error_truncated_in_every_fixed_field() {
    let bytes = full().encode().unwrap();
    let cases = [
        (1, "host id"),
        (32, "host id"),
        (33, "host Noise key"),
        (65, "pairing secret"),
        (97, "expiry time"),
        (104, "expiry time"),
    ];
    for (len, field) in cases {
        assert_eq!(
            PairingPayload::decode(&bytes[..len]),
            Err(PayloadError::Truncated { field }),
            "{len}"
        );
    }
}

#[test]
fn error_truncated_in_fields() {
    assert_eq!(
        PairingPayload::decode(&with_tail(&[0x01])),
        Err(PayloadError::Truncated {
            field: "field length"
        })
    );
    assert_eq!(
        PairingPayload::decode(&with_tail(&[0x01, 5, b'h'])),
        Err(PayloadError::Truncated { field: "relay URL" })
    );
    assert_eq!(
        PairingPayload::decode(&with_tail(&[0x02, 6, 1, 2, 3])),
        Err(PayloadError::Truncated {
            field: "direct address"
        })
    );
    assert_eq!(
        PairingPayload::decode(&with_tail(&[0x90, 3])),
        Err(PayloadError::Truncated {
            field: "an unknown field"
        })
    );
    // A complete encoding cut anywhere inside its fields fails, never panics.
    let bytes = full().encode().unwrap();
    for len in 105..bytes.len() {
        let result = PairingPayload::decode(&bytes[..len]);
        assert!(
            matches!(
                result,
                Err(PayloadError::Truncated { .. } | PayloadError::NoRoute)
            ) || result.is_ok(),
            "{len}: {result:?}"
        );
    }
}

#[test]
fn error_base64() {
    for text in ["a", "abc=", "ab+c", "ab/c", "ab c", "AQ==", "é", "AB"] {
        assert_eq!(
            PairingPayload::from_fragment(text),
            Err(PayloadError::Base64),
            "{text}"
        );
    }
    // Standard base64 padding is refused (the format is unpadded base64url).
    let padded = base64::engine::general_purpose::URL_SAFE.encode(minimal().encode().unwrap());
    assert!(padded.ends_with('='));
    assert_eq!(
        PairingPayload::from_fragment(&padded),
        Err(PayloadError::Base64)
    );
}

#[test]
fn error_bad_utf8() {
    assert_eq!(
        PairingPayload::decode(&with_tail(&tlv(0x01, b"https://\xff"))),
        Err(PayloadError::BadUtf8 { field: "relay URL" })
    );
    let mut tail = relay_tlv();
    tail.extend(tlv(0x03, b"caf\xc3"));
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(PayloadError::BadUtf8 { field: "host name" })
    );
}

#[test]
fn error_invalid_addr() {
    for len in [0usize, 4, 5, 7, 16, 17, 19] {
        assert_eq!(
            PairingPayload::decode(&with_tail(&tlv(0x02, &vec![1; len]))),
            Err(PayloadError::InvalidAddr { len }),
            "{len}"
        );
    }
}

#[test]
fn error_invalid_relay_url() {
    let long = format!("https://{}", "a".repeat(248));
    assert_eq!(long.len(), 256);
    let invalid = [
        "",
        "https://",
        "http://",
        "ftp://relay.example.com",
        "HTTPS://relay.example.com",
        "relay.example.com",
        "https://relay example.com",
        "https://relay.example.com/\n",
        "https://relay\u{0}.example.com",
        "https://relay.example.com/\u{85}",
        long.as_str(),
    ];
    for url in invalid {
        let mut payload = full();
        payload.relay_urls = vec![url.into()];
        assert_eq!(
            payload.validate(),
            Err(PayloadError::InvalidRelayUrl),
            "{url:?}"
        );
        assert_eq!(
            payload.encode(),
            Err(PayloadError::InvalidRelayUrl),
            "{url:?}"
        );
        if url.len() <= 255 {
            assert_eq!(
                PairingPayload::decode(&with_tail(&tlv(0x01, url.as_bytes()))),
                Err(PayloadError::InvalidRelayUrl),
                "{url:?}"
            );
        }
    }
    let longest = format!("https://{}", "a".repeat(247));
    let mut payload = minimal();
    payload.relay_urls = vec![longest];
    assert_eq!(
        PairingPayload::decode(&payload.encode().unwrap()).unwrap(),
        payload
    );
}

#[test]
fn error_invalid_host_name() {
    for name in [
        String::new(),
        "a".repeat(65),
        "studio\nmac".into(),
        "studio\u{7f}".into(),
        "\u{9b}x".into(),
    ] {
        let mut payload = full();
        payload.host_name = Some(name.clone());
        assert_eq!(
            payload.validate(),
            Err(PayloadError::InvalidHostName),
            "{name:?}"
        );
        let mut tail = relay_tlv();
        tail.extend(tlv(0x03, name.as_bytes()));
        assert_eq!(
            PairingPayload::decode(&with_tail(&tail)),
            Err(PayloadError::InvalidHostName),
            "{name:?}"
        );
    }
    // 64 bytes of multi-byte characters, spaces and emoji are fine.
    let mut payload = full();
    payload.host_name = Some(format!("{} 😀", "é".repeat(29)));
    assert_eq!(payload.host_name.as_ref().unwrap().len(), 63);
    assert_eq!(
        PairingPayload::decode(&payload.encode().unwrap()).unwrap(),
        payload
    );
}

#[test]
fn error_invalid_relay_cert_hash() {
    for len in [0usize, 31, 33, 64] {
        let mut tail = relay_tlv();
        tail.extend(tlv(0x04, &vec![7; len]));
        assert_eq!(
            PairingPayload::decode(&with_tail(&tail)),
            Err(PayloadError::InvalidRelayCertHash { len }),
            "{len}"
        );
    }
}

/// A payload with a relay token.
fn with_token(token: &str) -> PairingPayload {
    PairingPayload {
        relay_token: Some(RelayToken::new(token).unwrap()),
        ..full()
    }
}

#[test]
fn relay_token_round_trips_after_the_certificate_hash() {
    let payload = with_token("tok-0123456789abcdef");
    let bytes = payload.encode().unwrap();
    let plain = full().encode().unwrap();
    // The token is the last field: tag 0x81, length, text.
    assert_eq!(bytes[..plain.len()], plain[..]);
    assert_eq!(bytes[plain.len()..plain.len() + 2], [0x81, 20]);
    assert_eq!(&bytes[plain.len() + 2..], b"tok-0123456789abcdef");
    assert_eq!(PairingPayload::decode(&bytes).unwrap(), payload);
    let url = payload.to_url("https://peer.dev/pair").unwrap();
    assert_eq!(PairingPayload::from_url(&url).unwrap(), payload);
    // Also accepted before the other fields.
    let mut tail = tlv(0x81, b"tok-0123456789abcdef");
    tail.extend(relay_tlv());
    let decoded = PairingPayload::decode(&with_tail(&tail)).unwrap();
    assert_eq!(
        decoded.relay_token.as_ref().map(RelayToken::as_str),
        Some("tok-0123456789abcdef")
    );
}

#[test]
fn error_invalid_relay_token() {
    for bad in [
        b"short".as_slice(),
        b"",
        b"has a space 0123456789",
        b"\x01control-0123456789",
    ] {
        let mut tail = relay_tlv();
        tail.extend(tlv(0x81, bad));
        assert_eq!(
            PairingPayload::decode(&with_tail(&tail)),
            Err(PayloadError::InvalidRelayToken),
            "{bad:?}"
        );
    }
    let mut tail = relay_tlv();
    tail.extend(tlv(0x81, &[0xff; 20]));
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(PayloadError::BadUtf8 {
            field: "relay token"
        })
    );
}

#[test]
fn error_duplicate_field() {
    let mut tail = relay_tlv();
    tail.extend(tlv(0x81, b"tok-0123456789abcdef"));
    tail.extend(tlv(0x81, b"tok-0123456789abcdef"));
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(PayloadError::DuplicateField {
            field: "relay token"
        })
    );
    let mut tail = relay_tlv();
    tail.extend(tlv(0x03, b"a"));
    tail.extend(tlv(0x03, b"b"));
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(PayloadError::DuplicateField { field: "host name" })
    );
    let mut tail = relay_tlv();
    tail.extend(tlv(0x04, &[1; 32]));
    tail.extend(tlv(0x04, &[1; 32]));
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(PayloadError::DuplicateField {
            field: "relay certificate hash"
        })
    );
}

#[test]
fn error_too_many() {
    let mut payload = full();
    payload.relay_urls = vec!["https://r".into(); 5];
    let too_many_urls = PayloadError::TooMany {
        field: "relay URL",
        max: 4,
    };
    assert_eq!(payload.validate(), Err(too_many_urls));
    let tail: Vec<u8> = (0..5).flat_map(|_| tlv(0x01, b"https://r")).collect();
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(too_many_urls)
    );

    let mut payload = full();
    payload.direct_addrs = vec!["10.0.0.1:1".parse().unwrap(); 9];
    let too_many_addrs = PayloadError::TooMany {
        field: "direct address",
        max: 8,
    };
    assert_eq!(payload.validate(), Err(too_many_addrs));
    let tail: Vec<u8> = (0..9)
        .flat_map(|_| tlv(0x02, &[10, 0, 0, 1, 0, 1]))
        .collect();
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(too_many_addrs)
    );

    // The maximum counts are fine.
    let mut payload = full();
    payload.relay_urls = vec!["https://r".into(); 4];
    payload.direct_addrs = vec!["10.0.0.1:1".parse().unwrap(); 8];
    assert_eq!(
        PairingPayload::decode(&payload.encode().unwrap()).unwrap(),
        payload
    );
}

#[test]
fn error_unknown_critical_field() {
    for tag in [0x00u8, 0x05, 0x42, 0x7f] {
        let mut tail = relay_tlv();
        tail.extend(tlv(tag, b"x"));
        assert_eq!(
            PairingPayload::decode(&with_tail(&tail)),
            Err(PayloadError::UnknownCriticalField { tag }),
            "{tag}"
        );
    }
}

#[test]
fn unknown_optional_fields_are_skipped() {
    for tag in [0x80u8, 0x82, 0xa5, 0xff] {
        let mut tail = tlv(tag, b"future");
        tail.extend(relay_tlv());
        tail.extend(tlv(tag, &[]));
        let payload = PairingPayload::decode(&with_tail(&tail)).unwrap();
        assert_eq!(payload.relay_urls, ["https://relay.example.com/"]);
        assert_eq!(payload.host_name, None);
    }
}

#[test]
fn fields_may_come_in_any_order() {
    let mut tail = tlv(0x04, &[0x44; 32]);
    tail.extend(tlv(0x03, b"studio-mac"));
    tail.extend(tlv(
        0x02,
        &[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xa2, 0x29,
        ],
    ));
    tail.extend(tlv(0x02, &[192, 168, 1, 20, 0xa2, 0x29]));
    tail.extend(relay_tlv());
    let payload = PairingPayload::decode(&with_tail(&tail)).unwrap();
    assert_eq!(payload.host_name.as_deref(), Some("studio-mac"));
    assert_eq!(
        payload.direct_addrs,
        [
            "[2001:db8::1]:41513".parse::<SocketAddr>().unwrap(),
            "192.168.1.20:41513".parse().unwrap()
        ]
    );
}

#[test]
fn error_no_route() {
    let mut payload = full();
    payload.relay_urls.clear();
    payload.direct_addrs.clear();
    assert_eq!(payload.validate(), Err(PayloadError::NoRoute));
    assert_eq!(payload.encode(), Err(PayloadError::NoRoute));
    assert_eq!(
        PairingPayload::decode(&header()),
        Err(PayloadError::NoRoute)
    );
    let tail = tlv(0x03, b"studio-mac");
    assert_eq!(
        PairingPayload::decode(&with_tail(&tail)),
        Err(PayloadError::NoRoute)
    );
    // One direct address alone is a route.
    let payload = PairingPayload::decode(&with_tail(&tlv(0x02, &[127, 0, 0, 1, 0, 80]))).unwrap();
    assert_eq!(
        payload.direct_addrs,
        [SocketAddr::from((Ipv4Addr::LOCALHOST, 80))]
    );
}

#[test]
fn error_expired() {
    let payload = full();
    assert_eq!(payload.check_fresh(0), Ok(()));
    assert_eq!(payload.check_fresh(payload.expires_at - 1), Ok(()));
    let expired = Err(PayloadError::Expired {
        expired_at: payload.expires_at,
    });
    assert_eq!(payload.check_fresh(payload.expires_at), expired);
    assert_eq!(payload.check_fresh(u64::MAX), expired);
}

#[test]
fn error_missing_fragment() {
    for url in [
        "https://peer.dev/pair#",
        "https://peer.dev/pair#   ",
        "#",
        "https://peer.dev/pair",
        " https://peer.dev/pair ",
    ] {
        assert_eq!(
            PairingPayload::from_url(url),
            Err(PayloadError::MissingFragment),
            "{url:?}"
        );
    }
}

#[test]
fn every_error_has_a_message() {
    let errors = [
        PayloadError::Empty,
        PayloadError::TooLong {
            len: 2000,
            max: 1024,
        },
        PayloadError::UnsupportedVersion(9),
        PayloadError::Truncated { field: "host id" },
        PayloadError::Base64,
        PayloadError::BadUtf8 { field: "host name" },
        PayloadError::InvalidAddr { len: 5 },
        PayloadError::InvalidRelayUrl,
        PayloadError::InvalidHostName,
        PayloadError::InvalidRelayCertHash { len: 3 },
        PayloadError::InvalidRelayToken,
        PayloadError::DuplicateField { field: "host name" },
        PayloadError::TooMany {
            field: "relay URL",
            max: 4,
        },
        PayloadError::UnknownCriticalField { tag: 0x05 },
        PayloadError::NoRoute,
        PayloadError::Expired { expired_at: 5 },
        PayloadError::MissingFragment,
    ];
    for error in errors {
        let message = error.to_string();
        assert!(message.len() > 20, "{error:?}: {message}");
    }
    assert!(
        PayloadError::UnknownCriticalField { tag: 0x05 }
            .to_string()
            .contains("0x05")
    );
}

#[test]
fn ipv6_flow_info_and_scope_id_are_not_encoded() {
    let mut payload = minimal();
    let scoped = SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), 7, 5, 3);
    payload.direct_addrs = vec![scoped.into()];
    let decoded = PairingPayload::decode(&payload.encode().unwrap()).unwrap();
    assert_eq!(
        decoded.direct_addrs,
        [SocketAddr::V6(SocketAddrV6::new(*scoped.ip(), 7, 0, 0))]
    );
}

#[test]
fn tampering_is_detected_or_changes_the_payload() {
    let bytes = full().encode().unwrap();
    // Tampered version byte.
    let mut tampered = bytes.clone();
    tampered[0] ^= 0x80;
    assert_eq!(
        PairingPayload::decode(&tampered),
        Err(PayloadError::UnsupportedVersion(0x81))
    );
    // Tampered TLV length: the relay URL now claims to run past the end.
    let mut tampered = bytes.clone();
    tampered[106] = 0xff;
    assert_eq!(
        PairingPayload::decode(&tampered),
        Err(PayloadError::Truncated { field: "relay URL" })
    );
    // Tampered TLV tag: relay URL becomes an unknown critical field.
    let mut tampered = bytes.clone();
    tampered[105] = 0x06;
    assert_eq!(
        PairingPayload::decode(&tampered),
        Err(PayloadError::UnknownCriticalField { tag: 0x06 })
    );
    // Trailing garbage.
    let mut tampered = bytes.clone();
    tampered.push(0x01);
    assert_eq!(
        PairingPayload::decode(&tampered),
        Err(PayloadError::Truncated {
            field: "field length"
        })
    );
    // Flipped key bytes decode (the format has no checksum) but yield a different
    // payload, which then fails the Noise handshake.
    let mut tampered = bytes.clone();
    tampered[40] ^= 1;
    let decoded = PairingPayload::decode(&tampered).unwrap();
    assert_ne!(decoded, full());
    assert_ne!(decoded.host_noise_key, full().host_noise_key);
    // Every single-bit flip either fails cleanly or decodes to a valid payload.
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut tampered = bytes.clone();
            tampered[index] ^= 1 << bit;
            if let Ok(payload) = PairingPayload::decode(&tampered) {
                assert_ne!(payload.encode().unwrap(), bytes);
            }
        }
    }
    // Tampered text form.
    let fragment = full().to_fragment().unwrap();
    let mut chars: Vec<char> = fragment.chars().collect();
    chars[0] = if chars[0] == 'B' { 'C' } else { 'B' };
    let tampered: String = chars.into_iter().collect();
    assert!(matches!(
        PairingPayload::from_fragment(&tampered),
        Err(PayloadError::UnsupportedVersion(_))
    ));
}

#[test]
fn debug_does_not_print_the_secret() {
    let debug = format!("{:?}", full());
    assert!(debug.contains("PairingSecret(..)"), "{debug}");
    assert!(!debug.contains("3333"), "{debug}");
    assert!(!debug.contains("51, 51"), "{debug}");
    assert!(debug.contains(&"11".repeat(32)), "{debug}");
    assert!(debug.contains("studio-mac"), "{debug}");
    let debug = format!("{:?}", with_token("my-relay-token-0123456789"));
    assert!(debug.contains("RelayToken(..)"), "{debug}");
    assert!(!debug.contains("my-relay-token"), "{debug}");
}
