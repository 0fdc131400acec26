//! RFC 8292 VAPID with ring: the ES256 JWT that names the sender of a push, and the checks a
//! push service makes of it.

use data_encoding::BASE64URL_NOPAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};

/// The JWT's `sub`: how a push service's operator reaches the sender. A generic address of the
/// project, so that it does not name whoever runs the host (Apple requires `mailto:` or
/// `https:`).
pub const SUBJECT: &str = "https://github.com/peer-dev/peer";
/// How long a JWT is valid (push services refuse more than 24 h).
pub const LIFETIME_SECS: u64 = 12 * 3600;

/// Why a VAPID key or token is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapidError {
    /// The private and public key do not make a P-256 key pair.
    #[error("the VAPID key is not a P-256 key pair")]
    BadKey,
    /// Signing failed.
    #[error("signing the VAPID token failed")]
    Sign,
    /// A token does not verify (what a push service answers 401/403 for).
    #[error("VAPID: {0}")]
    Invalid(String),
}

/// A VAPID key pair (the app's: see [`crate::proto::PushRegister`]).
pub struct VapidKey {
    pair: EcdsaKeyPair,
    public: [u8; 65],
    rng: SystemRandom,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VapidKey(..)")
    }
}

impl VapidKey {
    /// The key pair from its raw private scalar (32 bytes) and uncompressed public point (65
    /// bytes), as a browser exports them; ring checks that they belong together.
    pub fn from_raw(private: &[u8; 32], public: &[u8]) -> Result<VapidKey, VapidError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            private,
            public,
            &rng,
        )
        .map_err(|_| VapidError::BadKey)?;
        let public = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| VapidError::BadKey)?;
        Ok(VapidKey { pair, public, rng })
    }

    /// The public key: the subscription's `applicationServerKey`, and the header's `k`.
    pub fn public_key(&self) -> &[u8; 65] {
        &self.public
    }

    /// `Authorization: vapid t=<JWT>, k=<key>` for a push service whose origin is `aud`, valid
    /// until `exp` (unix seconds).
    pub fn authorization(&self, aud: &str, exp: u64, sub: &str) -> Result<String, VapidError> {
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": aud, "exp": exp, "sub": sub }).to_string();
        let input = format!("{header}.{}", B64.encode(claims.as_bytes()));
        // The FIXED algorithm signs as r || s, 64 bytes: JWS ES256 as it is.
        let sig = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| VapidError::Sign)?;
        Ok(format!(
            "vapid t={input}.{}, k={}",
            B64.encode(sig.as_ref()),
            B64.encode(&self.public)
        ))
    }
}

/// What a push service checks of an `Authorization` header: the scheme, an ES256 signature by
/// `k`, `k` equal to the subscription's `applicationServerKey` (when given), `aud` equal to
/// its own origin, `exp` in the future but at most 24 h away, `sub` a `mailto:` or `https:`
/// URL. Returns the claims.
pub fn verify(
    authorization: &str,
    origin: &str,
    key: Option<&[u8]>,
    now: u64,
) -> Result<serde_json::Value, VapidError> {
    let bad = |m: &str| VapidError::Invalid(m.to_string());
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or_else(|| bad("the scheme is not vapid"))?;
    let (mut t, mut k) = (None, None);
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v);
        } else if let Some(v) = part.strip_prefix("k=") {
            k = Some(v);
        }
    }
    let (t, k) = (
        t.ok_or_else(|| bad("no t="))?,
        k.ok_or_else(|| bad("no k="))?,
    );
    let k = B64
        .decode(k.as_bytes())
        .map_err(|_| bad("k is not base64url"))?;
    if k.len() != 65 || k[0] != 4 {
        return Err(bad("k is not an uncompressed P-256 point"));
    }
    if key.is_some_and(|want| want != k.as_slice()) {
        return Err(bad("k is not the subscription's applicationServerKey"));
    }
    let mut parts = t.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the token is not a JWS"));
    };
    let json = |part: &str| -> Result<serde_json::Value, VapidError> {
        let bytes = B64
            .decode(part.as_bytes())
            .map_err(|_| bad("not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| bad("not JSON"))
    };
    if json(h)?["alg"] != "ES256" {
        return Err(bad("alg is not ES256"));
    }
    let sig = B64
        .decode(s.as_bytes())
        .map_err(|_| bad("signature is not base64url"))?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &k)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| bad("the ES256 signature does not verify"))?;
    let claims = json(c)?;
    if claims["aud"] != origin {
        return Err(VapidError::Invalid(format!(
            "aud {} is not {origin}",
            claims["aud"]
        )));
    }
    let exp = claims["exp"].as_u64().ok_or_else(|| bad("no exp"))?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(VapidError::Invalid(format!(
            "exp {exp} is not within 24 h of now ({now})"
        )));
    }
    let sub = claims["sub"].as_str().unwrap_or("");
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(VapidError::Invalid(format!("sub {sub:?}")));
    }
    Ok(claims)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh key as a browser would hand it over: raw private scalar and public point.
    pub(crate) fn fresh() -> ([u8; 32], Vec<u8>) {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        loop {
            if let Ok(sk) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                let public = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
                return (sk.to_bytes().into(), public);
            }
        }
    }

    #[test]
    fn tokens_verify_as_a_push_service_checks_them() {
        let (private, public) = fresh();
        let key = VapidKey::from_raw(&private, &public).expect("key");
        assert_eq!(key.public_key().as_slice(), public);
        assert_eq!(format!("{key:?}"), "VapidKey(..)");
        let now = 1_700_000_000;
        let aud = "https://fcm.googleapis.com";
        let h = key
            .authorization(aud, now + LIFETIME_SECS, SUBJECT)
            .expect("sign");
        let claims = verify(&h, aud, Some(&public), now).expect("verify");
        assert_eq!(claims["sub"], SUBJECT);
        assert_eq!(claims["exp"], now + LIFETIME_SECS);
        // Each check bites.
        assert!(verify(&h, "https://other.example", Some(&public), now).is_err());
        assert!(verify(&h, aud, Some(&[4; 65]), now).is_err());
        assert!(verify(&h, aud, Some(&public), now + LIFETIME_SECS).is_err());
        let long = key
            .authorization(aud, now + 25 * 3600, SUBJECT)
            .expect("sign");
        assert!(verify(&long, aud, None, now).is_err());
        let anon = key.authorization(aud, now + 60, "someone").expect("sign");
        assert!(verify(&anon, aud, None, now).is_err());
        let forged = h.replacen("vapid t=", "vapid t=x", 1);
        assert!(verify(&forged, aud, None, now).is_err());
        // A private key that is not the public key's half is refused.
        let (other, _) = fresh();
        assert_eq!(
            VapidKey::from_raw(&other, &public).err(),
            Some(VapidError::BadKey)
        );
    }
}
