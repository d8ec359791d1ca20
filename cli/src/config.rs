//! Where the CLI finds the API and its credential: flags, then `FERRY_*` environment variables
//! (both parsed by clap into [`GlobalArgs`]), then the credentials file `ferry login` writes
//! (`$XDG_CONFIG_HOME/ferry/credentials.json`, else `~/.config/ferry/credentials.json`, mode
//! 0600). The client secret may be stored there; it is never printed.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::args::GlobalArgs;

/// The API address when nothing names one: svc-api's default listen address.
pub const DEFAULT_API: &str = "http://127.0.0.1:8080";

/// What `ferry login` stores.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The API's base URL.
    pub api: String,
    /// The OAuth2 client id, when logged in with client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A bearer token, when logged in with `--token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api", &self.api)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// How requests authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A bearer token given as is.
    Token(String),
    /// OAuth2 client credentials exchanged for a token at `/oauth/token`.
    Client {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// Nothing configured: the first request that needs a token fails saying how to log in.
    None,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::Client { id, .. } => write!(f, "Client({id}, ***)"),
            Auth::None => f.write_str("None"),
        }
    }
}

/// The resolved connection settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The API's base URL, without a trailing slash.
    pub api: String,
    /// How to authenticate.
    pub auth: Auth,
}

impl Settings {
    /// Resolves flags and environment over the credentials file (`stored`).
    pub fn resolve(global: &GlobalArgs, stored: Option<&Credentials>) -> anyhow::Result<Settings> {
        let api = global
            .api
            .clone()
            .or_else(|| stored.map(|c| c.api.clone()))
            .unwrap_or_else(|| DEFAULT_API.to_string());
        let auth = match (&global.token, &global.client_id, &global.client_secret) {
            (Some(token), _, _) => Auth::Token(token.clone()),
            (None, Some(id), Some(secret)) => Auth::Client {
                id: id.clone(),
                secret: secret.clone(),
            },
            (None, Some(_), None) => {
                bail!(
                    "--client-id (FERRY_CLIENT_ID) is set but no client secret: pass --client-secret or set FERRY_CLIENT_SECRET"
                )
            }
            (None, None, Some(_)) => {
                bail!(
                    "--client-secret (FERRY_CLIENT_SECRET) is set but no client id: pass --client-id or set FERRY_CLIENT_ID"
                )
            }
            (None, None, None) => match stored {
                Some(Credentials {
                    token: Some(token), ..
                }) => Auth::Token(token.clone()),
                Some(Credentials {
                    client_id: Some(id),
                    client_secret: Some(secret),
                    ..
                }) => Auth::Client {
                    id: id.clone(),
                    secret: secret.clone(),
                },
                _ => Auth::None,
            },
        };
        Ok(Settings {
            api: normalize_api(&api)?,
            auth,
        })
    }
}

/// Checks the URL's scheme and drops trailing slashes.
pub fn normalize_api(api: &str) -> anyhow::Result<String> {
    let api = api.trim().trim_end_matches('/');
    if !(api.starts_with("http://") || api.starts_with("https://")) || api.len() <= "https://".len()
    {
        bail!("invalid API URL \"{api}\": expected http://HOST[:PORT] or https://HOST[:PORT]");
    }
    Ok(api.to_string())
}

/// The credentials file's path: `$XDG_CONFIG_HOME/ferry/credentials.json`, else
/// `$HOME/.config/ferry/credentials.json`.
pub fn credentials_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                bail!("cannot locate the credentials file: neither XDG_CONFIG_HOME nor HOME is set")
            }
        },
    };
    Ok(base.join("ferry").join("credentials.json"))
}

/// Reads the credentials file; `None` when there is none.
pub fn load(path: &Path) -> anyhow::Result<Option<Credentials>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the credentials file {}", path.display()));
        }
    };
    let credentials = serde_json::from_str(&text).with_context(|| {
        format!(
            "the credentials file {} is not valid (run `ferry login` again)",
            path.display()
        )
    })?;
    Ok(Some(credentials))
}

/// Writes the credentials file readable by its owner only (the folder too), replacing any
/// previous one atomically.
pub fn save(path: &Path, credentials: &Credentials) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("the credentials file path has no folder")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
    let tmp = dir.join(".credentials.json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let text = serde_json::to_string_pretty(credentials).context("encoding the credentials")?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Format;

    fn global(
        api: Option<&str>,
        token: Option<&str>,
        id: Option<&str>,
        secret: Option<&str>,
    ) -> GlobalArgs {
        GlobalArgs {
            api: api.map(str::to_string),
            client_id: id.map(str::to_string),
            client_secret: secret.map(str::to_string),
            token: token.map(str::to_string),
            output: Format::Text,
        }
    }

    fn stored() -> Credentials {
        Credentials {
            api: "https://ferry.example/".into(),
            client_id: Some("file-id".into()),
            client_secret: Some("file-secret".into()),
            token: None,
        }
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_default() {
        let s = Settings::resolve(&global(None, None, None, None), Some(&stored())).unwrap();
        assert_eq!(s.api, "https://ferry.example");
        assert_eq!(
            s.auth,
            Auth::Client {
                id: "file-id".into(),
                secret: "file-secret".into()
            }
        );
        let s = Settings::resolve(
            &global(Some("http://h:1"), Some("t"), None, None),
            Some(&stored()),
        )
        .unwrap();
        assert_eq!(s.api, "http://h:1");
        assert_eq!(s.auth, Auth::Token("t".into()));
        let s = Settings::resolve(&global(None, None, Some("i"), Some("s")), None).unwrap();
        assert_eq!(s.api, DEFAULT_API);
        assert_eq!(
            s.auth,
            Auth::Client {
                id: "i".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            Settings::resolve(&global(None, None, None, None), None)
                .unwrap()
                .auth,
            Auth::None
        );
    }

    #[test]
    fn half_a_credential_and_bad_urls_are_refused() {
        let e = Settings::resolve(&global(None, None, Some("i"), None), None).unwrap_err();
        assert!(e.to_string().contains("no client secret"), "{e}");
        let e =
            Settings::resolve(&global(Some("ferry.example"), None, None, None), None).unwrap_err();
        assert!(e.to_string().contains("invalid API URL"), "{e}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let text = format!("{:?} {:?}", stored(), Auth::Token("tok".into()));
        assert!(
            !text.contains("file-secret") && !text.contains("tok)"),
            "{text}"
        );
    }

    #[test]
    fn saved_file_is_private_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("ferry-cli-config-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("ferry/credentials.json");
        assert!(load(&path).unwrap().is_none());
        save(&path, &stored()).unwrap();
        save(&path, &stored()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap().unwrap(), stored());
        fs::write(&path, "{").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("not valid"));
        fs::remove_dir_all(dir).unwrap();
    }
}
