//! Client side of certificate pinning: trust a relay's certificate by its SHA-256 fingerprint
//! (what `peer-relay --dev-tls` prints), e.g. one carried in a pairing payload.
//!
//! With iroh (1.4.1), hand the verifier to the endpoint builder:
//!
//! ```ignore
//! let pin = peer_relay::pin::Fingerprint::parse("92:5B:…:96")?;
//! let ca = iroh::tls::CaTlsConfig::custom_server_cert_verifier(Arc::new(move |provider| {
//!     Ok(peer_relay::pin::verifier(pin, provider))
//! }));
//! let endpoint = iroh::Endpoint::builder(presets::Minimal).ca_tls_config(ca) /* … */;
//! ```
//!
//! The verifier accepts exactly the certificate with that fingerprint (any name, any expiry: the
//! pin is the trust decision) and still checks that the server holds its private key. It
//! replaces normal verification, so an endpoint using it can only reach relays pinned this way.

use std::{
    fmt,
    str::FromStr,
    sync::{Arc, Mutex, PoisonError},
};

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The SHA-256 digest of a DER certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// Text that is not a SHA-256 fingerprint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a SHA-256 fingerprint (64 hex digits, optionally separated by colons)")]
pub struct InvalidFingerprint;

impl Fingerprint {
    /// The fingerprint of `certificate`.
    pub fn of(certificate: &CertificateDer<'_>) -> Self {
        Self(Sha256::digest(certificate.as_ref()).into())
    }

    /// Parses `AB:CD:…` (as printed by `peer-relay` and `openssl x509 -fingerprint -sha256`)
    /// or 64 hex digits without separators; case-insensitive.
    pub fn parse(text: &str) -> Result<Self, InvalidFingerprint> {
        let hex: Vec<u8> = text.trim().bytes().filter(|b| *b != b':').collect();
        if hex.len() != 64 {
            return Err(InvalidFingerprint);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
            let digit = |b: u8| char::from(b).to_digit(16).ok_or(InvalidFingerprint);
            // Each digit is < 16, so the byte cannot overflow.
            *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?)
                .map_err(|_| InvalidFingerprint)?;
        }
        Ok(Self(out))
    }
}

impl FromStr for Fingerprint {
    type Err = InvalidFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Fingerprint {
    /// `AB:CD:…`, 32 colon-separated uppercase hex pairs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Where a [`PinnedCertVerifier`] records the certificates it refused, so the caller can say
/// *why* a relay connection failed (the TLS error itself ends up deep inside iroh's retries).
///
/// Clones share the record.
#[derive(Debug, Clone, Default)]
pub struct PinMismatches(Arc<Mutex<Option<Fingerprint>>>);

impl PinMismatches {
    /// A new, empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fingerprint of the last certificate refused, if any was.
    pub fn last(&self) -> Option<Fingerprint> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, presented: Fingerprint) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(presented);
    }
}

/// A rustls server certificate verifier that trusts exactly one certificate, by fingerprint.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
    mismatches: Option<PinMismatches>,
}

impl PinnedCertVerifier {
    /// Trusts the certificate with fingerprint `pin`; `provider` verifies handshake signatures.
    pub fn new(pin: Fingerprint, provider: Arc<CryptoProvider>) -> Self {
        Self {
            pin,
            provider,
            mismatches: None,
        }
    }

    /// Records every refused certificate's fingerprint in `mismatches`.
    pub fn reporting_to(mut self, mismatches: PinMismatches) -> Self {
        self.mismatches = Some(mismatches);
        self
    }
}

/// [`PinnedCertVerifier::new`], shared: what `iroh::tls::CaTlsConfig::custom_server_cert_verifier`
/// wants its callback to return.
pub fn verifier(pin: Fingerprint, provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(PinnedCertVerifier::new(pin, provider))
}

/// [`verifier`] that also records refused certificates in `mismatches`.
pub fn reporting_verifier(
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
    mismatches: PinMismatches,
) -> Arc<dyn ServerCertVerifier> {
    Arc::new(PinnedCertVerifier::new(pin, provider).reporting_to(mismatches))
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        if bool::from(presented.0.ct_eq(&self.pin.0)) {
            Ok(ServerCertVerified::assertion())
        } else {
            if let Some(mismatches) = &self.mismatches {
                mismatches.record(presented);
            }
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_and_print() -> Result<(), InvalidFingerprint> {
        let text = "92:5B:6D:F3:79:B9:55:D8:9F:A6:D6:89:6D:A5:35:C9:F7:F8:9E:62:B6:DD:79:A1:D3:B8:71:4C:BF:17:16:96";
        let fp = Fingerprint::parse(text)?;
        assert_eq!(fp.to_string(), text);
        assert_eq!(
            Fingerprint::parse(&text.replace(':', "").to_lowercase())?,
            fp
        );
        assert_eq!(text.parse::<Fingerprint>()?, fp);
        for bad in ["", "92:5B", &text[3..], &text.replace('9', "g")] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn refused_certificates_are_recorded() -> Result<(), rustls::Error> {
        let cert = CertificateDer::from(vec![1u8, 2, 3]);
        let other = CertificateDer::from(vec![4u8, 5, 6]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mismatches = PinMismatches::new();
        let v = PinnedCertVerifier::new(Fingerprint::of(&cert), provider)
            .reporting_to(mismatches.clone());
        let name = ServerName::try_from("relay.example.org")
            .map_err(|_| rustls::Error::General("name".into()))?;
        v.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())?;
        assert_eq!(mismatches.last(), None);
        assert!(
            v.verify_server_cert(&other, &[], &name, &[], UnixTime::now())
                .is_err()
        );
        assert_eq!(mismatches.last(), Some(Fingerprint::of(&other)));
        Ok(())
    }
}
