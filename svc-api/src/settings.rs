//! svc-api's settings: every field a flag or a `FERRY_*` environment variable, checked at start,
//! the master key that encrypts the issuer's signing keys at rest, and how manifest URLs are
//! fetched.

use crate::identity::crypto::MasterKey;
use crate::v1::remote_manifests::FetchConfig;
use clap::{Args, Parser, Subcommand};
use ferry_backends::{AmqpArgs, PostgresArgs};
use ferry_runtime::CommonArgs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The public HTTP address used when `FERRY_HTTP_ADDR` is not set.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";

/// The command line: the service's settings, and an optional one-shot subcommand.
#[derive(Clone, Debug, Parser)]
#[command(name = "ferry-svc-api", version, about = "Ferry API service")]
pub struct Cli {
    /// Settings of the service (also used by the subcommands).
    #[command(flatten)]
    pub settings: Settings,
    /// A one-shot command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-shot commands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Creates (idempotently) a tenant and an admin credential, and prints the credential's
    /// client id and secret once. Needs only the database: it is how the first token is obtained.
    Bootstrap(BootstrapArgs),
    /// Creates (or sets a new password of) a local account of this issuer and makes it a user
    /// of a tenant with roles, for signing in to the web UI without an external identity
    /// provider. The password is `FERRY_LOCAL_USER_PASSWORD`, or generated and printed once.
    LocalUser(LocalUserArgs),
    /// Writes the OpenAPI document (the one served at `/openapi.json`) to a file, or to standard
    /// output without `--out`. Needs nothing running. `docs/openapi.json` is written with
    /// `cargo run -p ferry-svc-api -- openapi --out docs/openapi.json`.
    Openapi(OpenapiArgs),
}

/// Arguments of `openapi`.
#[derive(Clone, Debug, Args)]
pub struct OpenapiArgs {
    /// The file to write (replaced); standard output when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `local-user`.
#[derive(Clone, Debug, Args)]
pub struct LocalUserArgs {
    /// The person's email (their sign-in name).
    #[arg(long)]
    pub email: String,
    /// The tenant's slug (it must exist).
    #[arg(long)]
    pub tenant: String,
    /// Roles in the tenant.
    #[arg(long, value_delimiter = ',', default_value = "Viewer")]
    pub roles: Vec<String>,
    /// Print the result as one JSON object.
    #[arg(long, default_value_t = false)]
    pub json: bool,
}

/// Arguments of `bootstrap`.
#[derive(Clone, Debug, Args)]
pub struct BootstrapArgs {
    /// The tenant's slug (`[a-z0-9-]`, also used as its display name when created).
    #[arg(long)]
    pub tenant: String,
    /// The credential's name inside the tenant.
    #[arg(long)]
    pub client_name: String,
    /// Roles bound to the credential when it is created.
    #[arg(long, value_delimiter = ',', default_value = "Tenant Admin")]
    pub roles: Vec<String>,
    /// Print the result as one JSON object.
    #[arg(long, default_value_t = false)]
    pub json: bool,
}

/// Settings of svc-api, from flags or `FERRY_*` environment variables.
#[derive(Clone, Debug, Parser)]
pub struct Settings {
    /// Admin port and logging.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where Postgres is.
    #[command(flatten)]
    pub postgres: PostgresArgs,
    /// Where RabbitMQ is.
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// Identity: issuer URL, token lifetime, signing keys.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Limits and tuning of the REST API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The external OIDC issuer people sign in with (optional).
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// Fetching manifests a deploy file names by `http(s)` URL.
    #[command(flatten)]
    pub manifest_fetch: ManifestFetchArgs,
}

/// How svc-api fetches the manifests a deploy file names by `http(s)` URL.
#[derive(Clone, Debug, Args)]
pub struct ManifestFetchArgs {
    /// Time one manifest URL may take, connecting and reading included (and across its
    /// redirects), in milliseconds.
    #[arg(
        long,
        env = "FERRY_MANIFEST_FETCH_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub manifest_fetch_timeout_ms: u64,

    /// Largest manifest a URL may return, in bytes (default: `FERRY_MAX_BODY_BYTES`, what a
    /// client could send itself).
    #[arg(long, env = "FERRY_MANIFEST_FETCH_MAX_BYTES")]
    pub manifest_fetch_max_bytes: Option<usize>,

    /// Allow manifest URLs whose host resolves to a loopback, private, link-local, unspecified
    /// or cloud metadata address. Off by default: a deploy file must not make svc-api reach
    /// into the network it runs in.
    #[arg(
        long,
        env = "FERRY_MANIFEST_FETCH_ALLOW_PRIVATE",
        default_value_t = false
    )]
    pub manifest_fetch_allow_private: bool,
}

impl ManifestFetchArgs {
    /// The checked fetch settings; `max_body_bytes` is the default size cap.
    pub fn config(&self, max_body_bytes: usize) -> Result<FetchConfig, SettingsError> {
        if self.manifest_fetch_timeout_ms == 0 {
            return Err(SettingsError::Zero("FERRY_MANIFEST_FETCH_TIMEOUT_MS"));
        }
        let max_bytes = self.manifest_fetch_max_bytes.unwrap_or(max_body_bytes);
        if max_bytes == 0 {
            return Err(SettingsError::Zero("FERRY_MANIFEST_FETCH_MAX_BYTES"));
        }
        Ok(FetchConfig {
            timeout: Duration::from_millis(self.manifest_fetch_timeout_ms),
            max_bytes,
            allow_private: self.manifest_fetch_allow_private,
        })
    }
}

/// The external OIDC issuer (an identity provider) whose ID or access tokens identify people.
/// Unset, only machine credentials of this service's own issuer authenticate.
#[derive(Clone, Debug, Args)]
pub struct OidcArgs {
    /// The provider's issuer URL, exactly as its tokens' `iss` (discovery is at
    /// `{url}/.well-known/openid-configuration`).
    #[arg(long, env = "FERRY_OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,

    /// The audience people's tokens must name: Ferry's client id at the provider.
    #[arg(long, env = "FERRY_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,

    /// The claim holding the person's email, which names the Ferry user.
    #[arg(long, env = "FERRY_OIDC_EMAIL_CLAIM", default_value = "email")]
    pub oidc_email_claim: String,

    /// The claim holding the person's groups (a list of strings), for `FERRY_OIDC_GROUP_ROLES`.
    #[arg(long, env = "FERRY_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,

    /// Roles a provider group adds to its members in every tenant they belong to, as
    /// `group=Role` pairs separated by `;` (e.g. `sre=Deployer;platform=Tenant Admin`). A group
    /// never makes a person a member of a tenant: only an invitation does.
    #[arg(long, env = "FERRY_OIDC_GROUP_ROLES", default_value = "")]
    pub oidc_group_roles: String,

    /// Least time between two reloads of the provider's keys when a token names an unknown key
    /// id, in seconds (so made-up key ids cannot make svc-api hammer the provider).
    #[arg(long, env = "FERRY_OIDC_KEYS_MIN_RELOAD_SECS", default_value_t = 10)]
    pub oidc_keys_min_reload_secs: u64,

    /// The web UI's client secret at the provider, when Ferry is registered there as a
    /// confidential client (its client id is `FERRY_OIDC_AUDIENCE`; the redirect URI is
    /// `{FERRY_ISSUER_URL}/ui/auth/callback`). Unset: a public client with PKCE.
    #[arg(long, env = "FERRY_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
}

/// The checked form of [`OidcArgs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcConfig {
    /// The provider's issuer URL, verbatim.
    pub issuer: String,
    /// The audience tokens must name.
    pub audience: String,
    /// The claim holding the email.
    pub email_claim: String,
    /// The claim holding the groups.
    pub groups_claim: String,
    /// Group name to the role names it adds.
    pub group_roles: Vec<(String, String)>,
    /// Least time between two key reloads.
    pub min_reload: Duration,
}

impl OidcArgs {
    /// The provider's settings when people sign in through one; an issuer without an audience
    /// (or the reverse), a malformed URL or group mapping is an error naming the variable.
    pub fn config(&self) -> Result<Option<OidcConfig>, SettingsError> {
        let (issuer, audience) = match (&self.oidc_issuer_url, &self.oidc_audience) {
            (None, None) => return Ok(None),
            (Some(issuer), Some(audience)) if !audience.trim().is_empty() => (issuer, audience),
            _ => return Err(SettingsError::OidcIncomplete),
        };
        let rest = issuer
            .strip_prefix("https://")
            .or_else(|| issuer.strip_prefix("http://"));
        if !matches!(rest, Some(host) if !host.is_empty() && !host.contains(['?', '#'])) {
            return Err(SettingsError::OidcIssuerUrl(issuer.clone()));
        }
        let mut group_roles = Vec::new();
        for pair in self
            .oidc_group_roles
            .split(';')
            .filter(|p| !p.trim().is_empty())
        {
            match pair.split_once('=') {
                Some((group, role)) if !group.trim().is_empty() && !role.trim().is_empty() => {
                    group_roles.push((group.trim().to_string(), role.trim().to_string()));
                }
                _ => return Err(SettingsError::OidcGroupRoles(pair.to_string())),
            }
        }
        Ok(Some(OidcConfig {
            issuer: issuer.clone(),
            audience: audience.trim().to_string(),
            email_claim: self.oidc_email_claim.clone(),
            groups_claim: self.oidc_groups_claim.clone(),
            group_roles,
            min_reload: Duration::from_secs(self.oidc_keys_min_reload_secs),
        }))
    }
}

/// Limits and tuning of the REST API.
#[derive(Clone, Debug, Args)]
pub struct ApiArgs {
    /// Largest accepted request body, in bytes; larger bodies get 413.
    #[arg(long, env = "FERRY_MAX_BODY_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Requests per second each tenant may make under `/v1` (token bucket refill rate).
    #[arg(long, env = "FERRY_RATE_LIMIT_PER_SEC", default_value_t = 50.0)]
    pub rate_limit_per_sec: f64,

    /// Requests a tenant may make in a burst (token bucket size).
    #[arg(long, env = "FERRY_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// How often an open event stream looks for new events, in milliseconds.
    #[arg(long, env = "FERRY_EVENTS_POLL_MS", default_value_t = 250)]
    pub events_poll_ms: u64,

    /// Token requests per second one source address may make at `/oauth/token`.
    #[arg(long, env = "FERRY_TOKEN_RATE_PER_ADDRESS", default_value_t = 20.0)]
    pub token_rate_per_address: f64,

    /// Token requests one source address may make in a burst.
    #[arg(long, env = "FERRY_TOKEN_BURST_PER_ADDRESS", default_value_t = 100)]
    pub token_burst_per_address: u32,

    /// Failed authentications per second one client id may accumulate at `/oauth/token`;
    /// past its burst, the client id is refused until the bucket refills.
    #[arg(long, env = "FERRY_TOKEN_FAILURES_PER_CLIENT", default_value_t = 0.2)]
    pub token_failures_per_client: f64,

    /// Failed authentications one client id may have in a burst.
    #[arg(
        long,
        env = "FERRY_TOKEN_FAILURE_BURST_PER_CLIENT",
        default_value_t = 10
    )]
    pub token_failure_burst_per_client: u32,

    /// Client secrets verified at once (argon2 is slow by design); further requests wait
    /// briefly, then get 503. Default: the number of CPUs.
    #[arg(long, env = "FERRY_TOKEN_VERIFICATIONS")]
    pub token_verifications: Option<usize>,
}

impl ApiArgs {
    /// Checks the limits can work: a zero (or negative) rate, burst or body limit would refuse
    /// everything.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(self.rate_limit_per_sec.is_finite() && self.rate_limit_per_sec > 0.0) {
            return Err(SettingsError::Zero("FERRY_RATE_LIMIT_PER_SEC"));
        }
        if self.rate_limit_burst == 0 {
            return Err(SettingsError::Zero("FERRY_RATE_LIMIT_BURST"));
        }
        if self.max_body_bytes == 0 {
            return Err(SettingsError::Zero("FERRY_MAX_BODY_BYTES"));
        }
        if self.events_poll_ms == 0 {
            return Err(SettingsError::Zero("FERRY_EVENTS_POLL_MS"));
        }
        for (rate, name) in [
            (self.token_rate_per_address, "FERRY_TOKEN_RATE_PER_ADDRESS"),
            (
                self.token_failures_per_client,
                "FERRY_TOKEN_FAILURES_PER_CLIENT",
            ),
        ] {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(SettingsError::Zero(name));
            }
        }
        if self.token_burst_per_address == 0 {
            return Err(SettingsError::Zero("FERRY_TOKEN_BURST_PER_ADDRESS"));
        }
        if self.token_failure_burst_per_client == 0 {
            return Err(SettingsError::Zero("FERRY_TOKEN_FAILURE_BURST_PER_CLIENT"));
        }
        if self.token_verifications == Some(0) {
            return Err(SettingsError::Zero("FERRY_TOKEN_VERIFICATIONS"));
        }
        Ok(())
    }
}

/// The public server and the token issuer.
#[derive(Clone, Args)]
pub struct IdentityArgs {
    /// Address of the public HTTP server (API and OAuth2 issuer). Port 0 picks a free port.
    #[arg(long, env = "FERRY_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,

    /// The issuer's public URL: the `iss` of every token and the base of the OIDC discovery
    /// document. Must be the URL clients reach this service at.
    #[arg(
        long,
        env = "FERRY_ISSUER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub issuer_url: String,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "FERRY_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub token_ttl_secs: u64,

    /// How old the newest signing key may get before a replica creates a new one, in seconds.
    #[arg(long, env = "FERRY_KEY_ROTATION_SECS", default_value_t = 30 * 24 * 3600)]
    pub key_rotation_secs: u64,

    /// The master key (32 bytes, base64) that encrypts signing keys at rest. Secret: prefer
    /// `FERRY_MASTER_KEY_FILE`; never logged.
    #[arg(long, env = "FERRY_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// A file holding the master key (base64).
    #[arg(long, env = "FERRY_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Development mode: without a master key, derive a fixed, publicly known one (and warn).
    #[arg(long, env = "FERRY_DEV", default_value_t = false)]
    pub dev: bool,
}

impl std::fmt::Debug for IdentityArgs {
    // The master key is a secret: show only whether it is set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityArgs")
            .field("http_addr", &self.http_addr)
            .field("issuer_url", &self.issuer_url)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("key_rotation_secs", &self.key_rotation_secs)
            .field("master_key", &self.master_key.as_ref().map(|_| "***"))
            .field("master_key_file", &self.master_key_file)
            .field("dev", &self.dev)
            .finish()
    }
}

/// A setting that cannot work, named by its environment variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// No master key outside development mode.
    #[error("FERRY_MASTER_KEY or FERRY_MASTER_KEY_FILE is required unless FERRY_DEV is set")]
    MasterKeyRequired,
    /// Both master key sources were given.
    #[error("set only one of FERRY_MASTER_KEY and FERRY_MASTER_KEY_FILE")]
    MasterKeyTwice,
    /// The master key file could not be read.
    #[error("reading FERRY_MASTER_KEY_FILE {path}")]
    MasterKeyFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The master key is not 32 bytes of base64.
    #[error("{variable} must be 32 bytes encoded in base64")]
    MasterKeyInvalid {
        /// The variable the key came from.
        variable: &'static str,
    },
    /// The issuer URL is not an absolute http(s) URL.
    #[error("FERRY_ISSUER_URL must be an absolute http:// or https:// URL, got {0:?}")]
    IssuerUrl(String),
    /// A duration setting is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// Only one of the OIDC issuer and audience was given.
    #[error("set both FERRY_OIDC_ISSUER_URL and FERRY_OIDC_AUDIENCE, or neither")]
    OidcIncomplete,
    /// The OIDC issuer URL is not an absolute http(s) URL.
    #[error("FERRY_OIDC_ISSUER_URL must be an absolute http:// or https:// URL, got {0:?}")]
    OidcIssuerUrl(String),
    /// A group mapping is not `group=Role`.
    #[error("FERRY_OIDC_GROUP_ROLES: expected `group=Role`, got {0:?}")]
    OidcGroupRoles(String),
}

impl IdentityArgs {
    /// The issuer URL without a trailing slash, as it appears in `iss` and discovery.
    pub fn issuer(&self) -> Result<String, SettingsError> {
        let issuer = self.issuer_url.trim_end_matches('/');
        let rest = issuer
            .strip_prefix("https://")
            .or_else(|| issuer.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(['?', '#']) => Ok(issuer.to_string()),
            _ => Err(SettingsError::IssuerUrl(self.issuer_url.clone())),
        }
    }

    /// Lifetime of issued tokens.
    pub fn token_ttl(&self) -> Result<Duration, SettingsError> {
        nonzero(self.token_ttl_secs, "FERRY_TOKEN_TTL_SECS")
    }

    /// Maximum age of the newest signing key.
    pub fn key_rotation(&self) -> Result<Duration, SettingsError> {
        nonzero(self.key_rotation_secs, "FERRY_KEY_ROTATION_SECS")
    }

    /// The master key from `FERRY_MASTER_KEY` or `FERRY_MASTER_KEY_FILE`, or in development
    /// mode a derived one.
    pub fn master_key(&self) -> Result<MasterKey, SettingsError> {
        match (&self.master_key, &self.master_key_file) {
            (Some(_), Some(_)) => Err(SettingsError::MasterKeyTwice),
            (Some(text), None) => {
                MasterKey::from_base64(text).ok_or(SettingsError::MasterKeyInvalid {
                    variable: "FERRY_MASTER_KEY",
                })
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    SettingsError::MasterKeyFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                MasterKey::from_base64(&text).ok_or(SettingsError::MasterKeyInvalid {
                    variable: "FERRY_MASTER_KEY_FILE",
                })
            }
            (None, None) if self.dev => {
                tracing::warn!(
                    "development mode: signing keys are encrypted with a publicly known master \
                     key; set FERRY_MASTER_KEY or FERRY_MASTER_KEY_FILE in production"
                );
                Ok(MasterKey::development())
            }
            (None, None) => Err(SettingsError::MasterKeyRequired),
        }
    }
}

fn nonzero(secs: u64, variable: &'static str) -> Result<Duration, SettingsError> {
    if secs == 0 {
        Err(SettingsError::Zero(variable))
    } else {
        Ok(Duration::from_secs(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec!["ferry-svc-api"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn issuer_is_normalised_and_checked() {
        let mut cli = parse(&["--issuer-url", "https://ferry.example/"]);
        assert_eq!(
            cli.settings.identity.issuer().unwrap(),
            "https://ferry.example"
        );
        cli.settings.identity.issuer_url = "ferry.example".into();
        assert!(matches!(
            cli.settings.identity.issuer(),
            Err(SettingsError::IssuerUrl(_))
        ));
    }

    #[test]
    fn a_master_key_is_required_outside_dev_mode_and_never_printed() {
        let cli = parse(&[]);
        assert!(matches!(
            cli.settings.identity.master_key(),
            Err(SettingsError::MasterKeyRequired)
        ));
        let dev = parse(&["--dev"]);
        assert!(dev.settings.identity.master_key().is_ok());

        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let given = parse(&["--master-key", &key]);
        assert!(given.settings.identity.master_key().is_ok());
        assert!(!format!("{given:?}").contains(&key));

        let short = parse(&["--master-key", "c2hvcnQ="]);
        assert!(matches!(
            short.settings.identity.master_key(),
            Err(SettingsError::MasterKeyInvalid { .. })
        ));
    }

    #[test]
    fn oidc_needs_issuer_and_audience_together() {
        assert_eq!(parse(&[]).settings.oidc.config().unwrap(), None);
        let only_issuer = parse(&["--oidc-issuer-url", "https://idp.example"]);
        assert!(matches!(
            only_issuer.settings.oidc.config(),
            Err(SettingsError::OidcIncomplete)
        ));
        let bad_url = parse(&["--oidc-issuer-url", "idp", "--oidc-audience", "ferry"]);
        assert!(matches!(
            bad_url.settings.oidc.config(),
            Err(SettingsError::OidcIssuerUrl(_))
        ));
        let bad_groups = parse(&[
            "--oidc-issuer-url",
            "https://idp.example/",
            "--oidc-audience",
            "ferry",
            "--oidc-group-roles",
            "sre",
        ]);
        assert!(matches!(
            bad_groups.settings.oidc.config(),
            Err(SettingsError::OidcGroupRoles(_))
        ));
        let full = parse(&[
            "--oidc-issuer-url",
            "https://idp.example/",
            "--oidc-audience",
            "ferry",
            "--oidc-group-roles",
            "sre=Deployer; platform = Tenant Admin",
        ]);
        let config = full.settings.oidc.config().unwrap().unwrap();
        // The issuer stays verbatim: it must equal the provider's `iss` exactly.
        assert_eq!(config.issuer, "https://idp.example/");
        assert_eq!(
            config.group_roles,
            [
                ("sre".to_string(), "Deployer".to_string()),
                ("platform".to_string(), "Tenant Admin".to_string())
            ]
        );
    }

    #[test]
    fn manifest_fetch_defaults_and_checks() {
        let config = parse(&[]).settings.manifest_fetch.config(4096).unwrap();
        assert_eq!(
            config,
            FetchConfig {
                timeout: Duration::from_secs(10),
                max_bytes: 4096,
                allow_private: false,
            }
        );
        let set = parse(&[
            "--manifest-fetch-timeout-ms",
            "250",
            "--manifest-fetch-max-bytes",
            "100",
            "--manifest-fetch-allow-private",
        ]);
        let config = set.settings.manifest_fetch.config(4096).unwrap();
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.max_bytes, 100);
        assert!(config.allow_private);
        let zero = parse(&["--manifest-fetch-timeout-ms", "0"]);
        assert!(matches!(
            zero.settings.manifest_fetch.config(4096),
            Err(SettingsError::Zero("FERRY_MANIFEST_FETCH_TIMEOUT_MS"))
        ));
    }

    #[test]
    fn bootstrap_parses_roles() {
        let cli = parse(&[
            "bootstrap",
            "--tenant",
            "acme",
            "--client-name",
            "ci",
            "--roles",
            "Deployer,Viewer",
            "--json",
        ]);
        let Some(Command::Bootstrap(args)) = cli.command else {
            panic!("expected bootstrap");
        };
        assert_eq!(args.roles, ["Deployer", "Viewer"]);
        assert!(args.json);
    }
}
