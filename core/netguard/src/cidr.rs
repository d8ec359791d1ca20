//! A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or one address), as tenants and
//! settings write the networks they allow.

use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an address.
    #[error("{0:?} is not an IP address or network (like 10.0.0.0/8 or fd00::/8)")]
    Address(String),
    /// The prefix is not a number within the address's length.
    #[error("{text:?}: the prefix length must be 0 to {max}")]
    Prefix {
        /// The text.
        text: String,
        /// 32 or 128.
        max: u8,
    },
    /// Bits set beyond the prefix (`10.0.0.1/8`): almost always a typing mistake.
    #[error("{text:?} has host bits set; did you mean {suggestion}?")]
    HostBits {
        /// The text.
        text: String,
        /// The network it probably means.
        suggestion: String,
    },
}

fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    all & !((1u128 << (width - prefix)) - 1)
}

impl Cidr {
    /// The network `addr/prefix`; `None` when the prefix is too long for the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let (_, width) = bits(addr);
        (prefix <= width).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside (an IPv4 network never holds an IPv6 address and back).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, width) = bits(self.addr);
        let (host, host_width) = bits(ip);
        if width != host_width {
            return false;
        }
        let m = mask(self.prefix, width);
        net & m == host & m
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let trimmed = text.trim();
        let (addr, prefix) = match trimmed.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (trimmed, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(text.to_string()))?;
        let (value, width) = bits(addr);
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| CidrError::Prefix {
                    text: text.to_string(),
                    max: width,
                })?,
        };
        let m = mask(prefix, width);
        if value & !m != 0 {
            let network = match addr {
                IpAddr::V4(_) => IpAddr::V4(((value & m) as u32).into()),
                IpAddr::V6(_) => IpAddr::V6((value & m).into()),
            };
            return Err(CidrError::HostBits {
                text: text.to_string(),
                suggestion: format!("{network}/{prefix}"),
            });
        }
        Ok(Cidr { addr, prefix })
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_hold_their_addresses() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let host6: Cidr = "::1/128".parse().unwrap();
        assert!(host6.contains("::1".parse().unwrap()));
        assert!(!host6.contains("::2".parse().unwrap()));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            "10.0.0.1/8".parse::<Cidr>().unwrap_err().to_string(),
            "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "example.com/8".parse::<Cidr>(),
            Err(CidrError::Address(_))
        ));
    }
}
