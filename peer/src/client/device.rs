//! The client's long-term device key (ed25519): its identity on every host it pairs with.

use iroh::SecretKey;
use zeroize::Zeroizing;

use crate::keystore::{self, KeyStore, KeyStoreError};
use crate::paths::Paths;

/// Loads or creates the device key of this peer home. Blocking: call off the runtime.
pub fn load_device_key(paths: &Paths) -> Result<(SecretKey, KeyStore), KeyStoreError> {
    keystore::load_or_create(
        &paths.client_dir(),
        "device",
        false,
        || {
            let key = SecretKey::generate();
            let bytes = Zeroizing::new(key.to_bytes().to_vec());
            (key, bytes)
        },
        |b| {
            let arr: [u8; 32] = b.try_into().map_err(|_| "expected 32 bytes".to_string())?;
            Ok(SecretKey::from_bytes(&arr))
        },
    )
}
