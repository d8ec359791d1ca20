//! Where the CLI finds the API and its credential: flags, then `FERRY_*` environment variables
//! (both parsed by clap into [`GlobalArgs`]), then the credentials file `ferry login` writes
//! (`$XDG_CONFIG_HOME/ferry/credentials.json`, else `~/.config/ferry/credentials.json`, mode
//! 0600). The file holds named contexts ([`CredentialsFile`], version [`FILE_VERSION`]): each an
//! API, a tenant, and a machine credential, a token, or a person's sign-in (access and refresh
//! tokens); one is current (`ferry context use`), `--context`/`FERRY_CONTEXT` picks another.
//! The file of earlier versions (one unversioned context) is read and converted explicitly.
//! Secrets and tokens stored there are never printed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::args::GlobalArgs;

/// The API address when nothing names one: svc-api's default listen address.
pub(crate) const DEFAULT_API: &str = "http://127.0.0.1:8080";

/// The version of the credentials file this CLI writes.
pub(crate) const FILE_VERSION: u32 = 2;

/// The context used when none is named or current.
pub(crate) const DEFAULT_CONTEXT: &str = "default";

/// One context: what `ferry login` stores for one API (and tenant).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Credentials {
    /// The API's base URL.
    pub api: String,
    /// The tenant slug sent as `X-Ferry-Tenant` (people's requests need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The OAuth2 client id, when logged in with client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A bearer token, when logged in with `--token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A person's sign-in (the device flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonSession>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api", &self.api)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("person", &self.person)
            .finish_non_exhaustive()
    }
}

/// A person's tokens from a sign-in issuer, and where to refresh and revoke them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PersonSession {
    /// The issuer signed in with.
    pub issuer: String,
    /// The CLI's client id there.
    pub client_id: String,
    /// The issuer's token endpoint (refreshes).
    pub token_endpoint: String,
    /// The issuer's revocation endpoint, when it has one (`ferry logout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Which token of the issuer's answers the API takes: `access_token` or `id_token`.
    pub bearer: String,
    /// The token sent to the API.
    pub token: String,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When `token` expires, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl std::fmt::Debug for PersonSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonSession")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The credentials file: named contexts and the current one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CredentialsFile {
    /// [`FILE_VERSION`].
    pub version: u32,
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Credentials>,
}

impl Default for CredentialsFile {
    fn default() -> CredentialsFile {
        CredentialsFile {
            version: FILE_VERSION,
            current: None,
            contexts: BTreeMap::new(),
        }
    }
}

impl CredentialsFile {
    /// The context to use: `named` (flag or environment), else the current one, else
    /// [`DEFAULT_CONTEXT`].
    pub(crate) fn selected<'a>(&'a self, named: Option<&'a str>) -> &'a str {
        named.or(self.current.as_deref()).unwrap_or(DEFAULT_CONTEXT)
    }
}

/// Checks a context name: 1 to 63 letters, digits, `.`, `_` or `-`.
pub(crate) fn check_context_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        bail!("invalid context name {name:?}: use 1 to 63 letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

/// Where a context came from, so refreshed tokens are written back to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SavedAt {
    /// The credentials file.
    pub path: PathBuf,
    /// The context's name.
    pub context: String,
}

/// How requests authenticate.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// A bearer token given as is.
    Token(String),
    /// OAuth2 client credentials exchanged for a token at `/oauth/token`.
    Client {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// A person's sign-in, refreshed before it expires (and written back where it was read).
    Person(Box<PersonAuth>),
    /// Nothing configured: the first request that needs a token fails saying how to log in.
    None,
}

/// A person's session and where it is saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PersonAuth {
    /// The tokens.
    pub session: PersonSession,
    /// The file and context to update after a refresh.
    pub saved_at: Option<SavedAt>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::Client { id, .. } => write!(f, "Client({id}, ***)"),
            Auth::Person(person) => write!(f, "Person({}, ***)", person.session.issuer),
            Auth::None => f.write_str("None"),
        }
    }
}

/// The resolved connection settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The API's base URL, without a trailing slash.
    pub api: String,
    /// How to authenticate.
    pub auth: Auth,
    /// The tenant slug sent as `X-Ferry-Tenant`.
    pub tenant: Option<String>,
}

impl Settings {
    /// Resolves flags and environment over the credentials file's context (`stored`, saved at
    /// `saved_at`).
    pub(crate) fn resolve(
        global: &GlobalArgs,
        stored: Option<&Credentials>,
        saved_at: Option<SavedAt>,
    ) -> anyhow::Result<Settings> {
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
                Some(Credentials {
                    person: Some(session),
                    ..
                }) => Auth::Person(Box::new(PersonAuth {
                    session: session.clone(),
                    saved_at,
                })),
                _ => Auth::None,
            },
        };
        let tenant = global
            .tenant
            .clone()
            .or_else(|| stored.and_then(|c| c.tenant.clone()))
            .filter(|t| !t.is_empty());
        if let Some(tenant) = &tenant
            && (tenant.len() > 63
                || !tenant
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            bail!("invalid tenant {tenant:?} (--tenant or FERRY_TENANT): expected a tenant slug");
        }
        Ok(Settings {
            api: normalize_api(&api)?,
            auth,
            tenant,
        })
    }
}

/// Checks the URL's scheme and drops trailing slashes.
pub(crate) fn normalize_api(api: &str) -> anyhow::Result<String> {
    let api = api.trim().trim_end_matches('/');
    if !(api.starts_with("http://") || api.starts_with("https://")) || api.len() <= "https://".len()
    {
        bail!("invalid API URL \"{api}\": expected http://HOST[:PORT] or https://HOST[:PORT]");
    }
    Ok(api.to_string())
}

/// The credentials file's path: `$XDG_CONFIG_HOME/ferry/credentials.json`, else
/// `$HOME/.config/ferry/credentials.json`.
pub(crate) fn credentials_path() -> anyhow::Result<PathBuf> {
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

/// The credentials file of the first version: one context, no version field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileV1 {
    api: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// Decodes the file's text, converting the first version (one unversioned context) to a file
/// whose one context, [`DEFAULT_CONTEXT`], is current.
pub(crate) fn decode(text: &str) -> anyhow::Result<CredentialsFile> {
    let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    match value.get("version") {
        None => {
            let old: FileV1 = serde_json::from_value(value).context("version 1")?;
            let context = Credentials {
                api: old.api,
                client_id: old.client_id,
                client_secret: old.client_secret,
                token: old.token,
                ..Credentials::default()
            };
            Ok(CredentialsFile {
                version: FILE_VERSION,
                current: Some(DEFAULT_CONTEXT.into()),
                contexts: BTreeMap::from([(DEFAULT_CONTEXT.to_string(), context)]),
            })
        }
        Some(version) if version.as_u64() == Some(u64::from(FILE_VERSION)) => {
            let file: CredentialsFile =
                serde_json::from_value(value).with_context(|| format!("version {FILE_VERSION}"))?;
            for name in file.contexts.keys() {
                check_context_name(name)?;
            }
            Ok(file)
        }
        Some(version) => bail!(
            "version {version} is not one this ferry reads (it reads 1 and {FILE_VERSION}): update ferry"
        ),
    }
}

/// Reads the credentials file; `None` when there is none.
pub(crate) fn load_file(path: &Path) -> anyhow::Result<Option<CredentialsFile>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the credentials file {}", path.display()));
        }
    };
    let file = decode(&text).with_context(|| {
        format!(
            "the credentials file {} is not valid (run `ferry login` again)",
            path.display()
        )
    })?;
    Ok(Some(file))
}

/// Reads context `named` (else the current one) of the credentials file: its name and
/// contents; `None` when there is no file or (unless named) no such context.
pub(crate) fn load(
    path: &Path,
    named: Option<&str>,
) -> anyhow::Result<Option<(String, Credentials)>> {
    let Some(file) = load_file(path)? else {
        if let Some(name) = named {
            bail!(
                "there is no context {name:?}: the credentials file {} does not exist (ferry login --context {name})",
                path.display()
            );
        }
        return Ok(None);
    };
    let name = file.selected(named).to_string();
    match file.contexts.get(&name) {
        Some(context) => Ok(Some((name, context.clone()))),
        None if named.is_some() => bail!(
            "there is no context {name:?} in {} (ferry context ls; ferry login --context {name})",
            path.display()
        ),
        None => Ok(None),
    }
}

/// Takes the credentials file's lock (the sibling file `.credentials.lock`), held until the
/// returned file is dropped, so processes refreshing the same sign-in take turns: with rotating
/// refresh tokens, two refreshing at once would spend one token twice, which the issuer takes
/// for theft and ends the sign-in.
pub(crate) fn lock(path: &Path) -> anyhow::Result<fs::File> {
    let dir = path
        .parent()
        .context("the credentials file path has no folder")?;
    let lock_path = dir.join(".credentials.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    Ok(file)
}

/// Writes a refreshed person's session back to its context, unless the context now holds
/// another sign-in (another process logged in meanwhile).
pub(crate) fn save_session(
    saved_at: &SavedAt,
    previous_refresh: Option<&str>,
    session: &PersonSession,
) -> anyhow::Result<()> {
    let mut file = load_file(&saved_at.path)?.unwrap_or_default();
    let Some(context) = file.contexts.get_mut(&saved_at.context) else {
        return Ok(());
    };
    let same = context.person.as_ref().is_some_and(|p| {
        p.issuer == session.issuer && p.refresh_token.as_deref() == previous_refresh
    });
    if !same {
        return Ok(());
    }
    context.person = Some(session.clone());
    save(&saved_at.path, &file)
}

/// Writes the credentials file readable by its owner only (the folder too), replacing any
/// previous one atomically.
pub(crate) fn save(path: &Path, credentials: &CredentialsFile) -> anyhow::Result<()> {
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
            context: None,
            tenant: None,
            output: Format::Text,
        }
    }

    fn stored() -> Credentials {
        Credentials {
            api: "https://ferry.example/".into(),
            client_id: Some("file-id".into()),
            client_secret: Some("file-secret".into()),
            ..Credentials::default()
        }
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_default() {
        let s = Settings::resolve(&global(None, None, None, None), Some(&stored()), None).unwrap();
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
            None,
        )
        .unwrap();
        assert_eq!(s.api, "http://h:1");
        assert_eq!(s.auth, Auth::Token("t".into()));
        let s = Settings::resolve(&global(None, None, Some("i"), Some("s")), None, None).unwrap();
        assert_eq!(s.api, DEFAULT_API);
        assert_eq!(
            s.auth,
            Auth::Client {
                id: "i".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            Settings::resolve(&global(None, None, None, None), None, None)
                .unwrap()
                .auth,
            Auth::None
        );
    }

    #[test]
    fn half_a_credential_and_bad_urls_are_refused() {
        let e = Settings::resolve(&global(None, None, Some("i"), None), None, None).unwrap_err();
        assert!(e.to_string().contains("no client secret"), "{e}");
        let e = Settings::resolve(&global(Some("ferry.example"), None, None, None), None, None)
            .unwrap_err();
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
        assert!(load(&path, None).unwrap().is_none());
        assert!(
            load(&path, Some("prod")).is_err(),
            "a named context must exist"
        );
        let mut file = CredentialsFile::default();
        file.contexts.insert("prod".into(), stored());
        file.current = Some("prod".into());
        save(&path, &file).unwrap();
        save(&path, &file).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_file(&path).unwrap().unwrap(), file);
        assert_eq!(
            load(&path, None).unwrap().unwrap(),
            ("prod".into(), stored())
        );
        let missing = load(&path, Some("staging")).unwrap_err().to_string();
        assert!(missing.contains("no context \"staging\""), "{missing}");
        fs::write(&path, "{").unwrap();
        assert!(
            load_file(&path)
                .unwrap_err()
                .to_string()
                .contains("not valid")
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_first_version_converts_and_unknown_versions_are_refused() {
        let old = r#"{"api":"https://ferry.example","clientId":"id","clientSecret":"s"}"#;
        let file = decode(old).unwrap();
        assert_eq!(file.version, FILE_VERSION);
        assert_eq!(file.current.as_deref(), Some(DEFAULT_CONTEXT));
        let context = &file.contexts[DEFAULT_CONTEXT];
        assert_eq!(context.api, "https://ferry.example");
        assert_eq!(context.client_id.as_deref(), Some("id"));
        assert_eq!(context.client_secret.as_deref(), Some("s"));
        let e = format!(
            "{:#}",
            decode(r#"{"version":3,"contexts":{}}"#).unwrap_err()
        );
        assert!(e.contains("version 3"), "{e}");
        let e = format!(
            "{:#}",
            decode(r#"{"version":2,"contexts":{"a b":{"api":"x"}}}"#).unwrap_err()
        );
        assert!(e.contains("invalid context name"), "{e}");
        assert!(
            decode(r#"{"api":"x","surprise":1}"#).is_err(),
            "unknown fields are loud"
        );
    }

    #[test]
    fn the_tenant_comes_from_flags_or_the_context() {
        let mut g = global(None, None, None, None);
        let mut context = stored();
        context.tenant = Some("acme".into());
        let s = Settings::resolve(&g, Some(&context), None).unwrap();
        assert_eq!(s.tenant.as_deref(), Some("acme"));
        g.tenant = Some("other".into());
        let s = Settings::resolve(&g, Some(&context), None).unwrap();
        assert_eq!(s.tenant.as_deref(), Some("other"));
        g.tenant = Some("Bad Slug".into());
        assert!(Settings::resolve(&g, Some(&context), None).is_err());
    }
}
