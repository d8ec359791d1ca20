//! Manifests a deploy file names by `http(s)` URL (DEPLOY-CONFIG.md `manifests[]`), fetched by
//! svc-api when a deployment starts, so they are stored with it like submitted manifests.
//!
//! A deploy file is user input, and fetching it makes svc-api a client inside its own network.
//! So: `http`/`https` only; a time limit across connecting, reading and redirects; a size cap;
//! at most [`MAX_REDIRECTS`] redirects, each checked like the first URL; and unless
//! `FERRY_MANIFEST_FETCH_ALLOW_PRIVATE` is on, every address a host resolves to must be public
//! (not loopback, private, link-local, unspecified or a metadata service). The connection goes
//! to the addresses that were checked (reqwest's `resolve_to_addrs`, no proxy), so a second DNS
//! answer cannot point it elsewhere.

use ferry_deploy::raw::{DeployFile, ManifestSource};
use ferry_deploy::{Diagnostic, Diagnostics};
use ferry_store::deployments::ManifestFile;
use futures::StreamExt;
use reqwest::{StatusCode, Url, header};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

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
    #[error("cannot resolve host {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
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
    Http(#[from] reqwest::Error),
}

/// The kinds of address a manifest URL may not reach unless private addresses are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), IPv6 unique-local `fc00::/7`.
    Private,
    /// RFC 6598 carrier-grade NAT `100.64/10`.
    SharedNat,
    /// `169.254/16` (but the metadata address), `fe80::/10`.
    LinkLocal,
    /// `169.254.169.254`: the cloud instance metadata service.
    Metadata,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// Multicast and the IPv4 broadcast address.
    Multicast,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::SharedNat => "shared (carrier-grade NAT)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Metadata => "cloud metadata",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast or broadcast",
        })
    }
}

/// The class of a non-public address, `None` for an address a manifest URL may reach.
/// IPv4-mapped and NAT64 (`64:ff9b::/96`) IPv6 addresses are judged by the IPv4 they carry.
pub fn classify(addr: IpAddr) -> Option<AddressClass> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some(AddressClass::Metadata)
    } else if a == 0 {
        Some(AddressClass::Unspecified)
    } else if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if ip.is_private() {
        Some(AddressClass::Private)
    } else if a == 100 && (64..128).contains(&b) {
        Some(AddressClass::SharedNat)
    } else if ip.is_link_local() {
        Some(AddressClass::LinkLocal)
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some(AddressClass::Multicast)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_unspecified() {
        Some(AddressClass::Unspecified)
    } else if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some(AddressClass::Private)
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some(AddressClass::LinkLocal)
    } else if ip.is_multicast() {
        Some(AddressClass::Multicast)
    } else {
        None
    }
}

/// Fetches every URL the deploy file names (each once, a few at a time), as manifest files whose
/// path is the URL. Failures are diagnostics at each `manifests[i].path` naming that URL, all
/// reported together.
pub async fn fetch_all(
    config: &FetchConfig,
    file: &DeployFile,
) -> Result<Vec<ManifestFile>, Diagnostics> {
    let urls = file.manifest_urls();
    let results: Vec<Result<String, FetchError>> = futures::stream::iter(urls.clone())
        .map(|url| async move { fetch(config, &url).await })
        .buffered(MAX_CONCURRENT_FETCHES)
        .collect()
        .await;
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
    match tokio::time::timeout(config.timeout, follow(config, url)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout(config.timeout)),
    }
}

/// The request loop: check, connect to the checked addresses, follow redirects by hand.
async fn follow(config: &FetchConfig, url: &str) -> Result<String, FetchError> {
    let mut url = Url::parse(url).map_err(|e| FetchError::Invalid(format!("{url}: {e}")))?;
    for _ in 0..=MAX_REDIRECTS {
        let client = client_for(config, &url).await?;
        let response = client.get(url.clone()).send().await?;
        let status = response.status();
        if status.is_redirection() {
            let next = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .ok_or(FetchError::BadRedirect(status))?;
            url = next;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        return read_capped(response, config.max_bytes).await;
    }
    Err(FetchError::TooManyRedirects)
}

/// A client that reaches `url`'s host only at the addresses checked here.
async fn client_for(config: &FetchConfig, url: &Url) -> Result<reqwest::Client, FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Scheme(url.scheme().to_string()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| FetchError::Invalid(format!("{url}: no host")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    // An IP literal (IPv6 in brackets) needs no resolving; a name is resolved once, here.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let (domain, addrs): (Option<&str>, Vec<SocketAddr>) = match literal.parse::<IpAddr>() {
        Ok(ip) => (None, vec![SocketAddr::new(ip, port)]),
        Err(_) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| FetchError::Resolve {
                    host: host.to_string(),
                    source,
                })?
                .collect();
            (Some(host), addrs)
        }
    };
    if !config.allow_private {
        for addr in &addrs {
            if let Some(class) = classify(addr.ip()) {
                return Err(FetchError::Refused {
                    host: host.to_string(),
                    addr: addr.ip(),
                    class,
                });
            }
        }
    }
    // reqwest is built without a default TLS provider: name ring, as the rest of Ferry does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.timeout);
    if let Some(domain) = domain {
        builder = builder.resolve_to_addrs(domain, &addrs);
    }
    Ok(builder.build()?)
}

/// The body as text, refusing more than `max_bytes` (before reading when the length is known).
async fn read_capped(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<String, FetchError> {
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(FetchError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| FetchError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(addr: &str) -> Option<AddressClass> {
        classify(addr.parse().unwrap())
    }

    #[test]
    fn non_public_addresses_are_classified() {
        use AddressClass::*;
        let cases = [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("::1", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fc00::1", Some(Private)),
            ("100.64.0.1", Some(SharedNat)),
            ("169.254.1.1", Some(LinkLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("169.254.169.254", Some(Metadata)),
            ("0.0.0.0", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("224.0.0.1", Some(Multicast)),
            ("255.255.255.255", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            // IPv6 forms carrying an IPv4 address are judged by it.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(Metadata)),
            ("64:ff9b::10.0.0.1", Some(Private)),
        ];
        for (addr, want) in cases {
            assert_eq!(class(addr), want, "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            assert_eq!(class(addr), None, "{addr}");
        }
    }

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
