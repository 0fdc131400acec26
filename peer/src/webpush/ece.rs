//! RFC 8291 message encryption for Web Push, on RFC 8188 `aes128gcm`, with ring.
//!
//! One record, padded to a fixed size: every body is [`BODY_LEN`] bytes whatever the message,
//! so its length says nothing about what it carries. The sender key is ephemeral (one per
//! message); [`encrypt_with_ecdh`] is the pure part (given the ECDH secret), checked byte for
//! byte against RFC 8291 §5 below.

use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, agreement, hkdf};

/// Salt (16), record size (4), key id length (1), key id = the sender's public key (65).
pub const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// The AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Every body sent: header, one padded record, tag. Push services take up to 4096.
pub const BODY_LEN: usize = 1024;
/// The record before encryption: data, the delimiter `0x02`, zero padding.
pub const RECORD_PLAIN_LEN: usize = BODY_LEN - HEADER_LEN - TAG_LEN;
/// The largest message [`encrypt`] takes.
pub const MAX_DATA: usize = RECORD_PLAIN_LEN - 1;
/// The record size written in the header (RFC 8291's example uses 4096).
pub const RECORD_SIZE: u32 = 4096;

/// Why a message could not be encrypted or decrypted. Deliberately vague about the crypto.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EceError {
    /// The message is longer than [`MAX_DATA`] (or the record size allows).
    #[error("message of {0} bytes is larger than a notification may be")]
    TooLarge(usize),
    /// The subscription's key is not a P-256 point.
    #[error("the subscription's key is not a P-256 public key")]
    BadKey,
    /// The body is not one `aes128gcm` record with a 65-byte key id.
    #[error("malformed aes128gcm body")]
    Malformed,
    /// Encryption or decryption failed.
    #[error("decrypt")]
    Crypto,
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], out: &mut [u8]) -> Result<(), EceError> {
    prk.expand(&[info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| EceError::Crypto)
}

/// The content encryption key and nonce of RFC 8291 §3.3–3.4 and RFC 8188 §2.2–2.3.
fn key_and_nonce(
    salt: &[u8; 16],
    ecdh: &[u8],
    ua_pub: &[u8; 65],
    as_pub: &[u8; 65],
    auth: &[u8; 16],
) -> Result<(aead::LessSafeKey, [u8; 12]), EceError> {
    // IKM = HKDF(salt = auth, ikm = ECDH, info = "WebPush: info\0" || ua_pub || as_pub, 32)
    let mut info = Vec::with_capacity(14 + 130);
    info.extend_from_slice(b"WebPush: info\0");
    info.extend_from_slice(ua_pub);
    info.extend_from_slice(as_pub);
    let mut ikm = zeroize::Zeroizing::new([0u8; 32]);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(ecdh);
    expand(&prk, &info, ikm.as_mut())?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm.as_ref());
    let mut cek = zeroize::Zeroizing::new([0u8; 16]);
    let mut nonce = [0u8; 12];
    expand(&prk, b"Content-Encoding: aes128gcm\0", cek.as_mut())?;
    expand(&prk, b"Content-Encoding: nonce\0", &mut nonce)?;
    let key =
        aead::UnboundKey::new(&aead::AES_128_GCM, cek.as_ref()).map_err(|_| EceError::Crypto)?;
    Ok((aead::LessSafeKey::new(key), nonce))
}

/// One `aes128gcm` body holding `data` in a single record of `record_plain_len` bytes before
/// encryption (data, `0x02`, zeros), given the ECDH secret between the sender key `as_pub` and
/// the subscription key `ua_pub`.
#[allow(clippy::too_many_arguments)]
pub fn encrypt_with_ecdh(
    data: &[u8],
    record_plain_len: usize,
    rs: u32,
    salt: [u8; 16],
    ecdh: &[u8],
    as_pub: &[u8; 65],
    ua_pub: &[u8; 65],
    auth: &[u8; 16],
) -> Result<Vec<u8>, EceError> {
    if data.len() + 1 > record_plain_len || record_plain_len + TAG_LEN > rs as usize {
        return Err(EceError::TooLarge(data.len()));
    }
    let (key, nonce) = key_and_nonce(&salt, ecdh, ua_pub, as_pub, auth)?;
    let mut body = Vec::with_capacity(HEADER_LEN + record_plain_len + TAG_LEN);
    body.extend_from_slice(&salt);
    body.extend_from_slice(&rs.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_pub);
    let mut record = Vec::with_capacity(record_plain_len + TAG_LEN);
    record.extend_from_slice(data);
    // The last (and only) record's delimiter, then padding.
    record.push(0x02);
    record.resize(record_plain_len, 0);
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut record,
    )
    .map_err(|_| EceError::Crypto)?;
    body.extend_from_slice(&record);
    Ok(body)
}

/// Encrypts `data` (at most [`MAX_DATA`] bytes) to the subscription (`p256dh`, `auth`) with a
/// fresh sender key and salt: a [`BODY_LEN`]-byte body.
pub fn encrypt(data: &[u8], ua_pub: &[u8; 65], auth: &[u8; 16]) -> Result<Vec<u8>, EceError> {
    if data.len() > MAX_DATA {
        return Err(EceError::TooLarge(data.len()));
    }
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| EceError::Crypto)?;
    let sk = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| EceError::Crypto)?;
    let as_pub: [u8; 65] = sk
        .compute_public_key()
        .map_err(|_| EceError::Crypto)?
        .as_ref()
        .try_into()
        .map_err(|_| EceError::Crypto)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, ua_pub);
    agreement::agree_ephemeral(sk, &peer, |ecdh| {
        encrypt_with_ecdh(
            data,
            RECORD_PLAIN_LEN,
            RECORD_SIZE,
            salt,
            ecdh,
            &as_pub,
            ua_pub,
            auth,
        )
    })
    .map_err(|_| EceError::BadKey)?
}

/// The sender's public key (the key id) of an `aes128gcm` body, to compute the ECDH secret
/// with for [`decrypt_with_ecdh`].
pub fn sender_key(body: &[u8]) -> Result<[u8; 65], EceError> {
    if body.len() < HEADER_LEN + TAG_LEN + 1 || body[20] != 65 {
        return Err(EceError::Malformed);
    }
    body[21..HEADER_LEN]
        .try_into()
        .map_err(|_| EceError::Malformed)
}

/// What a browser does with a body: open its one record with the ECDH secret between the
/// subscription key (`ua_pub`'s private half) and [`sender_key`], and strip the padding.
pub fn decrypt_with_ecdh(
    body: &[u8],
    ecdh: &[u8],
    ua_pub: &[u8; 65],
    auth: &[u8; 16],
) -> Result<Vec<u8>, EceError> {
    let as_pub = sender_key(body)?;
    let salt: [u8; 16] = body[..16].try_into().map_err(|_| EceError::Malformed)?;
    let rs = u32::from_be_bytes(body[16..20].try_into().map_err(|_| EceError::Malformed)?);
    let mut record = body[HEADER_LEN..].to_vec();
    if record.len() > rs as usize {
        // RFC 8291 allows exactly one record.
        return Err(EceError::Malformed);
    }
    let (key, nonce) = key_and_nonce(&salt, ecdh, ua_pub, &as_pub, auth)?;
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut record,
        )
        .map_err(|_| EceError::Crypto)?;
    let end = plain
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(EceError::Malformed)?;
    if plain[end] != 0x02 {
        return Err(EceError::Malformed);
    }
    Ok(plain[..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE64URL_NOPAD as B64;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    fn d(s: &str) -> Vec<u8> {
        B64.decode(s.as_bytes()).expect("base64url")
    }

    // RFC 8291 §5, "Push Message Encryption Example".
    const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
    const RFC_BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
    const AS_PRIV: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const AS_PUB: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    const UA_PRIV: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const UA_PUB: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const SHARED: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";

    fn ecdh(secret: &[u8], public: &[u8]) -> Vec<u8> {
        let sk = p256::SecretKey::from_slice(secret).expect("secret");
        let pk = p256::PublicKey::from_sec1_bytes(public).expect("public");
        p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine())
            .raw_secret_bytes()
            .to_vec()
    }

    #[test]
    fn rfc_8291_example_is_reproduced_byte_for_byte() {
        // The keys are the RFC's, and so is their ECDH secret (checked with a second
        // implementation of P-256).
        for (private, public) in [(AS_PRIV, AS_PUB), (UA_PRIV, UA_PUB)] {
            let sk = p256::SecretKey::from_slice(&d(private)).expect("secret");
            assert_eq!(
                sk.public_key().to_encoded_point(false).as_bytes(),
                d(public)
            );
        }
        assert_eq!(ecdh(&d(AS_PRIV), &d(UA_PUB)), d(SHARED));
        assert_eq!(ecdh(&d(UA_PRIV), &d(AS_PUB)), d(SHARED));
        let (as_pub, ua_pub): ([u8; 65], [u8; 65]) = (
            d(AS_PUB).try_into().expect("65"),
            d(UA_PUB).try_into().expect("65"),
        );
        let auth: [u8; 16] = d(AUTH).try_into().expect("16");
        let salt: [u8; 16] = d(SALT).try_into().expect("16");
        // The example has no padding: a record of the data and its delimiter.
        let body = encrypt_with_ecdh(
            PLAINTEXT,
            PLAINTEXT.len() + 1,
            4096,
            salt,
            &d(SHARED),
            &as_pub,
            &ua_pub,
            &auth,
        )
        .expect("encrypt");
        assert_eq!(B64.encode(&body), RFC_BODY);
        assert_eq!(sender_key(&body).expect("key id"), as_pub);
        let plain = decrypt_with_ecdh(&d(RFC_BODY), &d(SHARED), &ua_pub, &auth).expect("decrypt");
        assert_eq!(plain, PLAINTEXT);
    }

    fn subscription() -> (p256::SecretKey, [u8; 65], [u8; 16]) {
        let sk = loop {
            if let Ok(sk) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break sk;
            }
        };
        let public: [u8; 65] = sk
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()
            .expect("65");
        (sk, public, rand::random())
    }

    fn open(body: &[u8], sk: &p256::SecretKey, public: &[u8; 65], auth: &[u8; 16]) -> Vec<u8> {
        let shared = ecdh(&sk.to_bytes(), &sender_key(body).expect("key id"));
        decrypt_with_ecdh(body, &shared, public, auth).expect("decrypt")
    }

    #[test]
    fn every_body_has_the_same_size_and_opens_as_a_browser_would() {
        let (sk, public, auth) = subscription();
        let short = encrypt(b"{}", &public, &auth).expect("short");
        let long = encrypt(&[b'x'; MAX_DATA], &public, &auth).expect("long");
        assert_eq!((short.len(), long.len()), (BODY_LEN, BODY_LEN));
        assert_eq!(open(&short, &sk, &public, &auth), b"{}");
        assert_eq!(open(&long, &sk, &public, &auth), vec![b'x'; MAX_DATA]);
        // A fresh sender key and salt each time.
        let again = encrypt(b"{}", &public, &auth).expect("again");
        assert_ne!(short[..HEADER_LEN], again[..HEADER_LEN]);
        assert_eq!(
            encrypt(&[0; MAX_DATA + 1], &public, &auth),
            Err(EceError::TooLarge(MAX_DATA + 1))
        );
        // Another subscription's secret does not open it, nor does a flipped bit.
        let (other, _, _) = subscription();
        let shared = ecdh(&other.to_bytes(), &sender_key(&short).expect("key id"));
        assert_eq!(
            decrypt_with_ecdh(&short, &shared, &public, &auth),
            Err(EceError::Crypto)
        );
        let mut bad = short.clone();
        bad[200] ^= 1;
        let shared = ecdh(&sk.to_bytes(), &sender_key(&bad).expect("key id"));
        assert_eq!(
            decrypt_with_ecdh(&bad, &shared, &public, &auth),
            Err(EceError::Crypto)
        );
        // A key that is not a point is refused, not a panic.
        assert_eq!(encrypt(b"x", &[4; 65], &auth), Err(EceError::BadKey));
    }
}
