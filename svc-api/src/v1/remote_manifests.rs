//! Manifests a deploy file names by `http(s)` URL (DEPLOY-CONFIG.md `manifests[]`), fetched by
//! svc-api when a deployment starts, so they are stored with it like submitted manifests.
//!
//! A deploy file is user input, and fetching it makes svc-api a client inside its own network.
//! So: `http`/`https` only; per URL a time limit across connecting, reading and redirects, a
//! size cap and at most [`MAX_REDIRECTS`] redirects; per deploy file at most [`MAX_URLS`] URLs,
//! a total size ([`TOTAL_BYTES_FACTOR`] × the per-URL cap) and a total time
//! ([`TOTAL_TIME_FACTOR`] × the per-URL timeout), each refused with a 422 naming the limit. Unless
//! `FERRY_MANIFEST_FETCH_ALLOW_PRIVATE` is on, the network guard (`ferry-netguard`) refuses every
//! non-public address a host resolves to, at every hop; the connection goes to the addresses
//! that were checked (no proxy), so a second DNS answer cannot point it elsewhere.

use ferry_deploy::raw::{DeployFile, ManifestSource};
use ferry_deploy::{Diagnostic, Diagnostics};
use ferry_netguard::{GuardError, GuardedClient, HttpError, Limits, Policy};
use ferry_store::deployments::ManifestFile;
use futures::StreamExt;
use reqwest::StatusCode;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub use ferry_netguard::{AddressClass, classify};

/// Manifest URLs one deploy file may name.
pub const MAX_URLS: usize = 32;

/// All URLs of a deploy file together may return this many times the per-URL size cap.
pub const TOTAL_BYTES_FACTOR: usize = 4;

/// All URLs of a deploy file together may take this many times the per-URL timeout.
pub const TOTAL_TIME_FACTOR: u32 = 3;

/// The client every fetch shares (its connection pools are per policy).
static CLIENT: LazyLock<GuardedClient> = LazyLock::new(GuardedClient::default);

/// Redirects followed per URL.
pub const MAX_REDIRECTS: usize = 3;

/// URLs of one deploy file fetched at the same time.
const MAX_CONCURRENT_FETCHES: usize = 4;

/// How manifest URLs are fetched (from [`crate::settings::ManifestFetchArgs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// Time one URL may take: resolving, connecting, reading, redirects.
    pub timeout: Duration,
    /// Largest accepted body, in bytes.
    pub max_bytes: usize,
    /// Whether hosts may resolve to loopback, private, link-local, unspecified or metadata
    /// addresses.
    pub allow_private: bool,
}

/// Why a manifest URL could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an absolute URL with a host.
    #[error("not a valid URL: {0}")]
    Invalid(String),
    /// A scheme other than http or https (a redirect may name one).
    #[error("only http and https URLs are fetched, not {0}:")]
    Scheme(String),
    /// The host name does not resolve.
    #[error("cannot resolve host {host}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// The host resolves to an address svc-api refuses to reach.
    #[error(
        "refused: host {host} resolves to {addr}, a {class} address (set \
         FERRY_MANIFEST_FETCH_ALLOW_PRIVATE=true to allow private addresses)"
    )]
    Refused {
        /// The host as the URL names it.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// Which kind of address it is.
        class: AddressClass,
    },
    /// The server answered with a status other than 2xx or a followed redirect.
    #[error("the server answered {0}")]
    Status(StatusCode),
    /// A redirect without a usable `Location`.
    #[error("the server answered {0} without a valid Location header")]
    BadRedirect(StatusCode),
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    /// The time limit passed.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The body is larger than the cap.
    #[error("the manifest is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not UTF-8 text.
    #[error("the manifest is not UTF-8 text")]
    NotText,
    /// Connecting, sending or reading failed.
    #[error("request failed: {0}")]
    Http(String),
    /// The deploy file's URLs together returned more than their total cap.
    #[error(
        "the manifest URLs of this deploy file together return more than {0} bytes (their \
         total limit)"
    )]
    TotalTooLarge(usize),
}

impl From<HttpError> for FetchError {
    fn from(e: HttpError) -> FetchError {
        match e {
            HttpError::Invalid(why) => FetchError::Invalid(why),
            HttpError::Scheme(s) => FetchError::Scheme(s),
            HttpError::Guard(GuardError::Refused { host, addr, class }) => {
                FetchError::Refused { host, addr, class }
            }
            HttpError::Guard(GuardError::Resolve { host, reason }) => {
                FetchError::Resolve { host, reason }
            }
            HttpError::Guard(GuardError::NoAddress(host)) => FetchError::Resolve {
                host,
                reason: "no address".into(),
            },
            HttpError::BadRedirect(status) => FetchError::BadRedirect(status),
            HttpError::TooManyRedirects(_) => FetchError::TooManyRedirects,
            HttpError::Timeout(d) => FetchError::Timeout(d),
            HttpError::TooLarge(n) => FetchError::TooLarge(n),
            HttpError::Connect { reason, .. } => FetchError::Http(reason),
        }
    }
}

impl FetchConfig {
    /// The guard's policy: every address when private ones are allowed, public ones otherwise.
    fn policy(&self) -> Policy {
        if self.allow_private {
            Policy::allow_all()
        } else {
            Policy::strict()
        }
    }

    /// Bytes all URLs of one deploy file may return together.
    pub fn total_bytes(&self) -> usize {
        self.max_bytes.saturating_mul(TOTAL_BYTES_FACTOR)
    }

    /// Time all URLs of one deploy file may take together.
    pub fn total_time(&self) -> Duration {
        self.timeout.saturating_mul(TOTAL_TIME_FACTOR)
    }
}

/// A diagnostic about the deploy file's `manifests` as a whole (at its first entry).
fn whole(file: &DeployFile, message: String) -> Diagnostics {
    let (line, column) = file
        .manifests
        .first()
        .map_or((1, 1), |m| (m.source.pos.line, m.source.pos.column));
    Diagnostics(vec![Diagnostic {
        file: file.file.clone(),
        line,
        column,
        path: "manifests".into(),
        message,
        suggestion: None,
    }])
}

/// Fetches every URL the deploy file names (each once, a few at a time), as manifest files whose
/// path is the URL, within the per-file limits (URL count, total size, total time). Failures are
/// diagnostics at each `manifests[i].path` naming that URL, all reported together; a per-file
/// limit is one diagnostic at `manifests` naming it.
pub async fn fetch_all(
    config: &FetchConfig,
    file: &DeployFile,
) -> Result<Vec<ManifestFile>, Diagnostics> {
    let urls = file.manifest_urls();
    if urls.len() > MAX_URLS {
        return Err(whole(
            file,
            format!(
                "names {} manifest URLs; a deploy file may name at most {MAX_URLS}",
                urls.len()
            ),
        ));
    }
    let budget = Arc::new(AtomicUsize::new(config.total_bytes()));
    let all = futures::stream::iter(urls.clone())
        .map(|url| {
            let budget = budget.clone();
            async move { fetch_within(config, &url, &budget).await }
        })
        .buffered(MAX_CONCURRENT_FETCHES)
        .collect::<Vec<_>>();
    let results: Vec<Result<String, FetchError>> =
        match tokio::time::timeout(config.total_time(), all).await {
            Ok(results) => results,
            Err(_) => {
                return Err(whole(
                    file,
                    format!(
                        "fetching the manifest URLs took longer than {} ms, the total time all \
                         URLs of a deploy file may take",
                        config.total_time().as_millis()
                    ),
                ));
            }
        };
    if let Some(Err(e @ FetchError::TotalTooLarge(_))) = results
        .iter()
        .find(|r| matches!(r, Err(FetchError::TotalTooLarge(_))))
    {
        return Err(whole(file, e.to_string()));
    }
    let mut fetched = Vec::new();
    let mut failed = Vec::new();
    for (url, result) in urls.into_iter().zip(results) {
        match result {
            Ok(content) => fetched.push(ManifestFile { path: url, content }),
            Err(e) => {
                tracing::debug!(%url, error = %e, "manifest URL not fetched");
                failed.push((url, e));
            }
        }
    }
    // In file order, one per entry naming a failed URL.
    let mut diags = Vec::new();
    for entry in &file.manifests {
        let ManifestSource::Url(url) = &entry.source.value else {
            continue;
        };
        if let Some((_, e)) = failed.iter().find(|(u, _)| u == url) {
            let pos = &entry.source.pos;
            diags.push(Diagnostic {
                file: file.file.clone(),
                line: pos.line,
                column: pos.column,
                path: pos.path.clone(),
                message: format!("fetching manifest {url}: {e}"),
                suggestion: None,
            });
        }
    }
    if diags.is_empty() {
        Ok(fetched)
    } else {
        Err(Diagnostics(diags))
    }
}

/// Fetches one URL's text within the configured time, size and address limits.
pub async fn fetch(config: &FetchConfig, url: &str) -> Result<String, FetchError> {
    fetch_within(config, url, &AtomicUsize::new(usize::MAX)).await
}

/// Fetches one URL, taking its bytes from `budget` (what the deploy file's URLs may still
/// return together).
async fn fetch_within(
    config: &FetchConfig,
    url: &str,
    budget: &AtomicUsize,
) -> Result<String, FetchError> {
    let limits = Limits {
        timeout: config.timeout,
        max_body: config.max_bytes,
        max_redirects: MAX_REDIRECTS,
    };
    let response = CLIENT
        .send(&config.policy(), http::Method::GET, url, &[], None, limits)
        .await?;
    if !response.status.is_success() {
        return Err(FetchError::Status(response.status));
    }
    let n = response.body.len();
    let taken = budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
        left.checked_sub(n)
    });
    if taken.is_err() {
        return Err(FetchError::TotalTooLarge(config.total_bytes()));
    }
    String::from_utf8(response.body.to_vec()).map_err(|_| FetchError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_private_addresses_and_other_schemes_are_refused_before_connecting() {
        let config = FetchConfig {
            timeout: Duration::from_secs(5),
            max_bytes: 1024,
            allow_private: false,
        };
        let refused = fetch(&config, "http://169.254.169.254/latest/meta-data")
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                FetchError::Refused {
                    class: AddressClass::Metadata,
                    ..
                }
            ),
            "{refused}"
        );
        let v6 = fetch(&config, "http://[::1]:1/m.yaml").await.unwrap_err();
        assert!(
            v6.to_string()
                .contains("[::1] resolves to ::1, a loopback address"),
            "{v6}"
        );
        let file = fetch(&config, "file:///etc/passwd").await.unwrap_err();
        assert!(
            matches!(file, FetchError::Scheme(ref s) if s == "file"),
            "{file}"
        );
    }
}
