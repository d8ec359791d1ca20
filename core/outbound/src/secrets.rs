//! Tenant secrets (provider credentials, `{{secrets.X}}` in webhooks and queries), opened only when a request
//! is about to be sent and dropped with it. Secrets are sealed by svc-api with the master key
//! (AES-256-GCM, bound to tenant and name: `ferry-secret:<tenant>:<name>`); this module opens
//! them with the same key. The plaintext is never logged: [`Credentials`] prints field names only.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferry_store::{Store, TenantId, secrets};
use std::collections::BTreeMap;

/// Unsealed credential fields (`apiKey`, `password`, …) of one provider, for one query.
#[derive(Clone, Default)]
pub struct Credentials(BTreeMap<String, String>);

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Credentials {
    /// Credentials from fields and values (tests).
    pub fn from_map(fields: BTreeMap<String, String>) -> Credentials {
        Credentials(fields)
    }

    /// The value of `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

/// Why credentials could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The provider refers to a secret the tenant does not have.
    #[error("secret {0:?} does not exist in this tenant")]
    Missing(String),
    /// The secret does not open with this service's master key.
    #[error("secret {0:?} cannot be decrypted (is FERRY_MASTER_KEY the one svc-api uses?)")]
    Open(String),
    /// The database failed.
    #[error("reading secret {name:?}: {source}")]
    Store {
        /// The secret.
        name: String,
        /// The failure.
        #[source]
        source: ferry_store::StoreError,
    },
}

/// Opens a tenant's sealed secret: svc-canary with its [`MasterKey`], svc-api (retrospective
/// analysis) with its own copy of the same key.
pub trait Unseal: Send + Sync + std::fmt::Debug {
    /// The plaintext of `sealed`, a secret of `tenant`; `None` when it does not open.
    fn open(&self, tenant: TenantId, sealed: &secrets::SealedSecret) -> Option<String>;
}

/// The key that opens tenant secrets. Never printed.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// A key from base64 of exactly 32 bytes (standard or URL-safe, padding optional).
    pub fn from_base64(text: &str) -> Option<MasterKey> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .ok()?;
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        Some(MasterKey(Aes256Gcm::new(&bytes.into())))
    }

    /// svc-api's development key (a public passphrase through argon2): only with `FERRY_DEV`.
    pub fn development() -> MasterKey {
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(
                b"ferry development master key",
                b"ferry-dev-salt-v1",
                &mut key,
            )
            .expect("argon2 accepts a 32-byte output and a 17-byte salt");
        MasterKey(Aes256Gcm::new(&key.into()))
    }

    /// The key from a service's settings: `FERRY_MASTER_KEY` (`text`), `FERRY_MASTER_KEY_FILE`
    /// (`file`) or, in development mode (`FERRY_DEV`), the development key; `Err` names the
    /// variable that is wrong.
    pub fn from_settings(
        text: Option<&str>,
        file: Option<&std::path::Path>,
        dev: bool,
    ) -> Result<MasterKey, String> {
        match (text, file) {
            (Some(_), Some(_)) => {
                Err("set only one of FERRY_MASTER_KEY and FERRY_MASTER_KEY_FILE".into())
            }
            (Some(text), None) => MasterKey::from_base64(text)
                .ok_or_else(|| "FERRY_MASTER_KEY is not base64 of 32 bytes".into()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("reading FERRY_MASTER_KEY_FILE {}: {e}", path.display())
                })?;
                MasterKey::from_base64(&text)
                    .ok_or_else(|| "FERRY_MASTER_KEY_FILE does not hold base64 of 32 bytes".into())
            }
            (None, None) if dev => Ok(MasterKey::development()),
            (None, None) => Err(
                "FERRY_MASTER_KEY or FERRY_MASTER_KEY_FILE is required unless FERRY_DEV is set"
                    .into(),
            ),
        }
    }

    /// Seals `plaintext` as svc-api does (tests write secrets with it).
    pub fn seal(&self, tenant: TenantId, name: &str, plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
        use rand::RngCore;
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let context = context(tenant, name);
        let ciphertext = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &context,
                },
            )
            .expect("AES-GCM encrypts any input with a valid key");
        (ciphertext, nonce.to_vec())
    }
}

impl Unseal for MasterKey {
    fn open(&self, tenant: TenantId, sealed: &secrets::SealedSecret) -> Option<String> {
        let nonce: [u8; 12] = sealed.nonce.as_slice().try_into().ok()?;
        let context = context(tenant, &sealed.name);
        let plain = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &context,
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

fn context(tenant: TenantId, name: &str) -> Vec<u8> {
    format!("ferry-secret:{tenant}:{name}").into_bytes()
}

/// Opens the secrets `refs` (field → secret name) of `tenant`.
pub async fn unseal(
    store: &Store,
    key: &dyn Unseal,
    tenant: TenantId,
    refs: &BTreeMap<String, String>,
) -> Result<Credentials, SecretError> {
    let mut out = BTreeMap::new();
    for (field, name) in refs {
        let sealed = match secrets::get(store, tenant, name).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Err(SecretError::Missing(name.clone())),
            Err(source) => {
                return Err(SecretError::Store {
                    name: name.clone(),
                    source,
                });
            }
        };
        let value = key
            .open(tenant, &sealed)
            .ok_or_else(|| SecretError::Open(name.clone()))?;
        out.insert(field.clone(), value);
    }
    Ok(Credentials(out))
}

/// Replaces `{{secrets.NAME}}` (any spacing inside the braces) in `text` with the values of
/// `values`; references to secrets not in `values`, and everything else, stay as written.
pub fn substitute(text: &str, values: &Credentials) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end].trim();
        match inner
            .strip_prefix("secrets.")
            .and_then(|name| values.get(name))
        {
            Some(value) => {
                out.push_str(&rest[..start]);
                out.push_str(value);
            }
            None => out.push_str(&rest[..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Opens every secret `texts` refer to (each once) and substitutes them into each text.
pub async fn resolve_all(
    store: &Store,
    key: &dyn Unseal,
    tenant: TenantId,
    texts: &[&str],
) -> Result<Vec<String>, SecretError> {
    let mut refs: BTreeMap<String, String> = BTreeMap::new();
    for text in texts {
        for name in ferry_deploy::rendering::secret_names(text) {
            refs.insert(name.clone(), name);
        }
    }
    if refs.is_empty() {
        return Ok(texts.iter().map(std::string::ToString::to_string).collect());
    }
    let values = unseal(store, key, tenant, &refs).await?;
    Ok(texts.iter().map(|t| substitute(t, &values)).collect())
}

/// Replaces `{{secrets.NAME}}` in a rendered query with the secret's value, at query time.
pub async fn resolve_in_query(
    store: &Store,
    key: &dyn Unseal,
    tenant: TenantId,
    query: &str,
) -> Result<String, SecretError> {
    let mut resolved = resolve_all(store, key, tenant, &[query]).await?;
    Ok(resolved.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references_are_substituted_with_any_spacing_and_others_kept() {
        let values = Credentials::from_map(BTreeMap::from([(
            "token".to_string(),
            "s3cr3t".to_string(),
        )]));
        assert_eq!(
            substitute(
                "Bearer {{secrets.token}} {{ secrets.token }} {{secrets.other}} {{ferry.x}} {{",
                &values
            ),
            "Bearer s3cr3t s3cr3t {{secrets.other}} {{ferry.x}} {{"
        );
    }

    #[test]
    fn credentials_print_only_their_field_names() {
        let values = Credentials::from_map(BTreeMap::from([(
            "apiKey".to_string(),
            "s3cr3t".to_string(),
        )]));
        assert_eq!(format!("{values:?}"), "{\"apiKey\"}");
    }

    #[test]
    fn sealed_secrets_open_only_for_their_tenant_and_name() {
        let key = MasterKey::from_base64(&"A".repeat(43)).unwrap();
        let tenant = TenantId::default();
        let (ciphertext, nonce) = key.seal(tenant, "token", b"s3cr3t");
        let sealed = |name: &str| secrets::SealedSecret {
            name: name.to_string(),
            ciphertext: ciphertext.clone(),
            nonce: nonce.clone(),
            key_id: "master-v1".into(),
            updated_at: chrono::Utc::now(),
        };
        assert_eq!(
            key.open(tenant, &sealed("token")).as_deref(),
            Some("s3cr3t")
        );
        assert_eq!(key.open(tenant, &sealed("other")), None);
    }
}
