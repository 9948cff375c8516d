//! IPv4 prefixes: an interface address with its prefix length.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// An address and a prefix length, as configured on an interface
/// ("198.18.0.2/24"). The host bits are kept: `addr()` is the interface's own
/// address, `network()` the prefix.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Reason {
    MissingSlash,
    BadAddress,
    BadPrefixLength,
    PrefixTooLong,
}

/// Why a prefix could not be built or parsed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct CidrError(Reason);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Reason::MissingSlash => {
                "missing '/' between address and prefix length (e.g. 198.18.0.2/24)"
            }
            Reason::BadAddress => "bad IPv4 address before the '/'",
            Reason::BadPrefixLength => "prefix length after the '/' is not a decimal number",
            Reason::PrefixTooLong => "prefix length is greater than 32",
        })
    }
}

impl std::error::Error for CidrError {}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Ipv4Cidr, CidrError> {
        if prefix_len > 32 {
            return Err(CidrError(Reason::PrefixTooLong));
        }
        Ok(Ipv4Cidr { addr, prefix_len })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    fn mask(&self) -> u32 {
        // A shift by 32 would overflow: /0 is the empty mask.
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }

    /// The address with its host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The directed broadcast address, all host bits set.
    ///
    /// RFC 3021: on a /31 both addresses are hosts, so there is none; nor on
    /// a /32.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        if self.prefix_len >= 31 {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.addr) | !self.mask()))
    }

    /// `ip` is on this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Ipv4Cidr, CidrError> {
        let (addr, prefix) = s.split_once('/').ok_or(CidrError(Reason::MissingSlash))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError(Reason::BadAddress))?;
        // u8::from_str alone would also accept "+24".
        if prefix.is_empty() || !prefix.bytes().all(|c| c.is_ascii_digit()) {
            return Err(CidrError(Reason::BadPrefixLength));
        }
        // All digits, so the only way to fail is overflow: too long a prefix.
        let prefix_len: u8 = prefix
            .parse()
            .map_err(|_| CidrError(Reason::PrefixTooLong))?;
        Ipv4Cidr::new(addr, prefix_len)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_interface_address() {
        let c = cidr("198.18.0.2/24");
        assert_eq!(c.addr(), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(c.prefix_len(), 24);
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network(), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(198, 18, 0, 255)));
        assert_eq!(c.to_string(), "198.18.0.2/24");
    }

    #[test]
    fn contains_exactly_the_subnet() {
        let c = cidr("198.18.0.2/24");
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 0)));
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 255)));
        assert!(!c.contains(Ipv4Addr::new(198, 18, 1, 1)));
        assert!(!c.contains(Ipv4Addr::new(198, 19, 0, 2)));
        // /15 straddles an octet boundary.
        let c = cidr("198.18.0.2/15");
        assert!(c.contains(Ipv4Addr::new(198, 19, 255, 255)));
        assert!(!c.contains(Ipv4Addr::new(198, 20, 0, 0)));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(198, 19, 255, 255)));
    }

    #[test]
    fn prefix_zero_contains_everything() {
        let c = cidr("0.0.0.0/0");
        assert_eq!(c.netmask(), Ipv4Addr::UNSPECIFIED);
        assert!(c.contains(Ipv4Addr::BROADCAST));
        assert!(c.contains(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::BROADCAST));
    }

    #[test]
    fn slash_31_has_no_broadcast_address() {
        // RFC 3021 §2.1: "the addresses of the two hosts on the link are
        // the two addresses in the /31 ... there is no need for a directed
        // broadcast address".
        let c = cidr("198.18.0.0/31");
        assert_eq!(c.broadcast(), None);
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(!c.contains(Ipv4Addr::new(198, 18, 0, 2)));
    }

    #[test]
    fn slash_32_is_one_host() {
        let c = cidr("198.18.0.2/32");
        assert_eq!(c.broadcast(), None);
        assert_eq!(c.netmask(), Ipv4Addr::BROADCAST);
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 2)));
        assert!(!c.contains(Ipv4Addr::new(198, 18, 0, 3)));
    }

    #[test]
    fn new_rejects_prefix_over_32() {
        assert!(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 32).is_ok());
        assert!(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 33).is_err());
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let msg = |s: &str| s.parse::<Ipv4Cidr>().unwrap_err().to_string();
        assert!(msg("198.18.0.2").contains("missing '/'"));
        for bad in ["198.18.0/24", "198.18.0.256/24", "/24", " 198.18.0.2/24"] {
            assert!(msg(bad).contains("bad IPv4 address"), "{bad}");
        }
        for bad in [
            "198.18.0.2/",
            "198.18.0.2/+24",
            "198.18.0.2/2 4",
            "198.18.0.2/x",
        ] {
            assert!(msg(bad).contains("not a decimal number"), "{bad}");
        }
        for bad in ["198.18.0.2/33", "198.18.0.2/256", "198.18.0.2/99999999999"] {
            assert!(msg(bad).contains("greater than 32"), "{bad}");
        }
        assert!(msg("198.18.0.2/24/8").contains("not a decimal"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "10.0.0.1/8",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "198.18.0.2/24",
        ] {
            assert_eq!(cidr(s).to_string(), s);
        }
    }
}
