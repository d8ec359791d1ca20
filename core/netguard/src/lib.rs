//! ferry-netguard: the one place that decides which network addresses Ferry's own outgoing
//! requests (webhooks sent directly, manifest URLs, metric providers reached from the control
//! plane) may reach, and an HTTP client that enforces it.
//!
//! A request made on a user's behalf from inside the control plane must not be a way into the
//! control plane's own network. So every address a host resolves to is classified
//! ([`classify`]): loopback, private, carrier-grade NAT, link-local, cloud metadata,
//! benchmarking, documentation, reserved, multicast, unspecified, and IPv6 forms carrying an IPv4
//! address (mapped, NAT64, 6to4, IPv4-compatible) judged by that address. A [`Policy`] refuses
//! every classified address except those inside networks it explicitly allows (a tenant's
//! settings, or a service setting).
//!
//! The check is made on the addresses actually connected to: [`GuardedClient`] resolves each
//! host itself (a reqwest DNS resolver that refuses when any answer is refused), connects only to
//! the addresses it checked (no second look-up an attacker's DNS could change: no rebinding), uses
//! no proxy, and follows redirects by hand so every hop is checked again.

mod cidr;
mod classify;
mod client;

pub use cidr::{Cidr, CidrError};
pub use classify::{AddressClass, classify};
pub use client::{GuardedClient, GuardedResponse, HttpError, Limits, Resolver};

use std::net::{IpAddr, SocketAddr};

/// Which addresses requests may reach: every public address, plus the classified ones inside an
/// allowed network. The default allows no classified address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Policy {
    allowed: Vec<Cidr>,
}

/// Why an address or a host was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// The host resolves to an address the policy refuses.
    #[error("refused: {host} resolves to {addr}, a {class} address")]
    Refused {
        /// The host as the URL names it.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// Which kind of address it is.
        class: AddressClass,
    },
    /// The host name does not resolve.
    #[error("cannot resolve host {host}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// The host resolves to nothing.
    #[error("host {0} has no address")]
    NoAddress(String),
}

impl Policy {
    /// Refuses every classified address.
    pub fn strict() -> Policy {
        Policy::default()
    }

    /// Allows every address (a development setting, or a deliberate service setting).
    pub fn allow_all() -> Policy {
        Policy {
            allowed: vec![
                Cidr::new("0.0.0.0".parse().expect("an address"), 0).expect("a prefix"),
                Cidr::new("::".parse().expect("an address"), 0).expect("a prefix"),
            ],
        }
    }

    /// Allows, besides public addresses, where self-hosted services live: loopback, private
    /// (RFC 1918, unique-local) and carrier-grade NAT networks; never link-local, metadata,
    /// unspecified, multicast, benchmarking, documentation or reserved addresses. The policy of
    /// metric providers, which teams run next to their applications.
    pub fn self_hosted() -> Policy {
        Policy::allowing(
            [
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
                "100.64.0.0/10",
            ]
            .iter()
            .map(|n| n.parse().expect("a valid network")),
        )
    }

    /// Refuses classified addresses except those inside `allowed`.
    pub fn allowing(allowed: impl IntoIterator<Item = Cidr>) -> Policy {
        let mut allowed: Vec<Cidr> = allowed.into_iter().collect();
        allowed.sort();
        allowed.dedup();
        Policy { allowed }
    }

    /// The networks allowed besides public addresses.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allowed
    }

    /// `Err(class)` when `addr` is a classified address outside every allowed network. An
    /// IPv4-mapped IPv6 address is also allowed by a network holding its IPv4 address.
    pub fn check(&self, addr: IpAddr) -> Result<(), AddressClass> {
        let Some(class) = classify(addr) else {
            return Ok(());
        };
        let v4 = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = |ip: IpAddr| self.allowed.iter().any(|c| c.contains(ip));
        if allowed(addr) || v4.is_some_and(allowed) {
            Ok(())
        } else {
            Err(class)
        }
    }

    /// Checks every address `host` names: an IP literal (IPv6 with or without brackets) as it
    /// is, a name after resolving it once. All must pass; the checked addresses are returned to
    /// connect to.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((literal, port))
                .await
                .map_err(|e| GuardError::Resolve {
                    host: host.to_string(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(GuardError::NoAddress(host.to_string()));
        }
        for addr in &addrs {
            self.check(addr.ip()).map_err(|class| GuardError::Refused {
                host: host.to_string(),
                addr: addr.ip(),
                class,
            })?;
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_allows_public_addresses_and_only_the_classified_ones_it_names() {
        let strict = Policy::strict();
        assert_eq!(strict.check("8.8.8.8".parse().unwrap()), Ok(()));
        assert_eq!(
            strict.check("127.0.0.1".parse().unwrap()),
            Err(AddressClass::Loopback)
        );
        let some = Policy::allowing([
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
        assert_eq!(some.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(some.check("::ffff:127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(some.check("10.9.8.7".parse().unwrap()), Ok(()));
        assert_eq!(
            some.check("127.0.0.2".parse().unwrap()),
            Err(AddressClass::Loopback)
        );
        assert_eq!(
            some.check("169.254.169.254".parse().unwrap()),
            Err(AddressClass::Metadata)
        );
        let all = Policy::allow_all();
        for a in ["127.0.0.1", "::1", "169.254.169.254", "fe80::1", "0.0.0.0"] {
            assert_eq!(all.check(a.parse().unwrap()), Ok(()), "{a}");
        }
    }

    #[tokio::test]
    async fn literals_and_names_are_checked_on_every_address() {
        let strict = Policy::strict();
        let e = strict.resolve("[::1]", 80).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused: [::1] resolves to ::1, a loopback address"
        );
        let e = strict.resolve("localhost", 80).await.unwrap_err();
        assert!(
            matches!(
                e,
                GuardError::Refused {
                    class: AddressClass::Loopback,
                    ..
                }
            ),
            "{e}"
        );
        let ok = Policy::allowing(["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]);
        assert!(!ok.resolve("localhost", 80).await.unwrap().is_empty());
    }
}
