//! Secrets at rest and on the wire: the master key that seals signing keys (AES-256-GCM), and
//! client secrets (generated with a CSPRNG, stored only as argon2 hashes, checked in constant
//! time).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;

/// Length of an AES-GCM nonce.
const NONCE_LEN: usize = 12;

/// Random bytes in a generated client secret.
const SECRET_BYTES: usize = 32;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext does not open with this master key (another key, or tampered data).
    #[error("cannot decrypt: wrong master key or corrupted data")]
    Open,
    /// Encryption failed (cannot happen with a valid key; kept typed rather than panicking).
    #[error("cannot encrypt")]
    Seal,
    /// A secret could not be hashed.
    #[error("cannot hash the secret: {0}")]
    Hash(argon2::password_hash::Error),
}

/// The 256-bit key that encrypts signing keys in Postgres. Never printed.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// Ciphertext with the nonce it was sealed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// AES-GCM output (ciphertext and tag).
    pub ciphertext: Vec<u8>,
    /// The random nonce.
    pub nonce: Vec<u8>,
}

impl MasterKey {
    /// A key from its raw 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> MasterKey {
        MasterKey(Aes256Gcm::new(bytes.into()))
    }

    /// A key from base64 (standard or URL-safe, padding optional, surrounding whitespace
    /// ignored); `None` unless it decodes to exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<MasterKey> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .ok()?;
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        Some(MasterKey::from_bytes(&bytes))
    }

    /// The development key: derived with argon2 from a fixed, public passphrase, so that dev
    /// replicas and restarts agree. It protects nothing and is only used with `--dev`.
    pub fn development() -> MasterKey {
        let mut key = [0u8; 32];
        Argon2::default()
            .hash_password_into(
                b"ferry development master key",
                b"ferry-dev-salt-v1",
                &mut key,
            )
            .expect("argon2 accepts a 32-byte output and a 17-byte salt");
        MasterKey::from_bytes(&key)
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. the key id) so a ciphertext copied
    /// into another row does not open.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Sealed, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        Ok(Sealed {
            ciphertext,
            nonce: nonce.to_vec(),
        })
    }

    /// Decrypts what [`MasterKey::seal`] produced with the same `context`.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; NONCE_LEN] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Open)?;
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Open)
    }
}

/// A new client secret: 32 random bytes from the thread-local CSPRNG (ChaCha seeded by the OS),
/// base64url without padding.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new client id: `ferry-` and 16 random bytes in hex; unique across tenants.
pub fn generate_client_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("ferry-{hex}")
}

/// The argon2id PHC string of `secret`, with a random salt.
pub fn hash_secret(secret: &str) -> Result<String, CryptoError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(CryptoError::Hash)?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(CryptoError::Hash)
}

/// Whether `secret` matches the stored PHC `hash`. The comparison is argon2's own, in constant
/// time; a malformed stored hash never matches.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// An argon2 hash of a random secret, verified against when a token request names an unknown
/// client, so that unknown and known clients take the same time to refuse.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_secret(&generate_secret()).expect("hashing a generated secret with a fresh salt")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_context() {
        let key = MasterKey::from_bytes(&[1u8; 32]);
        let sealed = key.seal(b"private key", b"kid-1").unwrap();
        assert_ne!(sealed.ciphertext, b"private key");
        assert_eq!(key.open(&sealed, b"kid-1").unwrap(), b"private key");
        assert!(matches!(
            key.open(&sealed, b"kid-2"),
            Err(CryptoError::Open)
        ));
        let other = MasterKey::from_bytes(&[2u8; 32]);
        assert!(matches!(
            other.open(&sealed, b"kid-1"),
            Err(CryptoError::Open)
        ));
        // Two seals of the same data differ (fresh nonce).
        assert_ne!(key.seal(b"private key", b"kid-1").unwrap(), sealed);
    }

    #[test]
    fn master_keys_parse_from_base64_of_exactly_32_bytes() {
        let text = STANDARD.encode([9u8; 32]);
        let key = MasterKey::from_base64(&format!("  {text}\n")).unwrap();
        let sealed = key.seal(b"x", b"").unwrap();
        assert!(MasterKey::from_bytes(&[9u8; 32]).open(&sealed, b"").is_ok());
        assert!(MasterKey::from_base64(&URL_SAFE_NO_PAD.encode([9u8; 32])).is_some());
        assert!(MasterKey::from_base64(&STANDARD.encode([9u8; 31])).is_none());
        assert!(MasterKey::from_base64("not base64!").is_none());
        assert_eq!(format!("{key:?}"), "MasterKey(***)");
    }

    #[test]
    fn the_development_key_is_stable() {
        let sealed = MasterKey::development().seal(b"x", b"c").unwrap();
        assert!(MasterKey::development().open(&sealed, b"c").is_ok());
    }

    #[test]
    fn secrets_hash_and_verify() {
        let secret = generate_secret();
        assert!(secret.len() >= 43);
        assert_ne!(secret, generate_secret());
        let hash = hash_secret(&secret).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret(&secret, &hash));
        assert!(!verify_secret("wrong", &hash));
        assert!(!verify_secret(&secret, "not a hash"));
        assert!(!verify_secret(&secret, decoy_hash()));
        assert!(generate_client_id().starts_with("ferry-"));
    }
}
