//! 48-bit IEEE 802 MAC addresses.

use core::fmt;
use core::str::FromStr;

/// A 48-bit MAC address, in wire order.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff, where ARP requests go.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00, the "unknown" target hardware address of an ARP request.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The I/G bit (least significant bit of the first octet, the first bit on
    /// the wire) is set. Broadcast is a multicast address by this definition.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The I/G bit is clear. This says nothing about validity as a source:
    /// [`MacAddr::ZERO`] is "unicast" here, and the caller rejects it where it
    /// matters.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The U/L bit is set: the address was not assigned by the IEEE.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    pub fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// The first six bytes of `bytes`, or `None` if there are fewer.
    pub fn from_bytes(bytes: &[u8]) -> Option<MacAddr> {
        let six: [u8; 6] = bytes.get(..6)?.try_into().ok()?;
        Some(MacAddr(six))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ParseMacAddrError(&'static str);

impl ParseMacAddrError {
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ParseMacAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid MAC address: {}", self.0)
    }
}

impl std::error::Error for ParseMacAddrError {}

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    /// Six groups of one or two hex digits separated by ':' (Linux) or '-'
    /// (Windows, IEEE), the same separator throughout.
    fn from_str(s: &str) -> Result<MacAddr, ParseMacAddrError> {
        let sep = if s.contains(':') {
            ':'
        } else if s.contains('-') {
            '-'
        } else {
            return Err(ParseMacAddrError("expected ':' or '-' separators"));
        };
        let mut out = [0u8; 6];
        let mut groups = s.split(sep);
        for byte in out.iter_mut() {
            let group = groups
                .next()
                .ok_or(ParseMacAddrError("expected six octets"))?;
            // from_str_radix alone would also take a leading '+'.
            if group.is_empty() || group.len() > 2 || !group.bytes().all(|c| c.is_ascii_hexdigit())
            {
                return Err(ParseMacAddrError(
                    "each octet must be one or two hex digits, with one separator throughout",
                ));
            }
            *byte =
                u8::from_str_radix(group, 16).map_err(|_| ParseMacAddrError("bad hex octet"))?;
        }
        if groups.next().is_some() {
            return Err(ParseMacAddrError("expected six octets"));
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_is_multicast_and_not_unicast() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
    }

    #[test]
    fn ig_bit_decides_multicast() {
        // 01:00:5e:00:00:01 is the all-hosts IPv4 multicast group (RFC 1112 §6.4).
        let m = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
        assert!(m.is_multicast() && !m.is_unicast() && !m.is_broadcast());
        let u = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
        assert!(u.is_unicast() && !u.is_multicast() && u.is_local());
        assert!(MacAddr::ZERO.is_unicast());
    }

    #[test]
    fn displays_lowercase_colon_separated() {
        let m = MacAddr([0x0a, 0xBC, 0x00, 0xff, 0x12, 0x3f]);
        assert_eq!(m.to_string(), "0a:bc:00:ff:12:3f");
        assert_eq!(format!("{m:?}"), "0a:bc:00:ff:12:3f");
    }

    #[test]
    fn parses_colon_and_dash_forms() {
        let m = MacAddr([0x0a, 0xbc, 0x00, 0xff, 0x12, 0x3f]);
        assert_eq!("0a:bc:00:ff:12:3f".parse::<MacAddr>(), Ok(m));
        assert_eq!("0A-BC-00-FF-12-3F".parse::<MacAddr>(), Ok(m));
        assert_eq!("a:bc:0:ff:12:3f".parse::<MacAddr>(), Ok(m));
        assert_eq!(m.to_string().parse::<MacAddr>(), Ok(m));
    }

    #[test]
    fn rejects_malformed_strings() {
        for bad in [
            "",
            "0abc00ff123f",
            "0a:bc:00:ff:12",
            "0a:bc:00:ff:12:3f:00",
            "0a:bc:00:ff:12:3f:",
            "0a:bc-00:ff:12:3f",
            "0a:bc:00:ff:12:3g",
            "0a:bc:00:ff:12:+f",
            "0a:bc:00:ff:12:03f",
            "0a::00:ff:12:3f",
            "0a.bc.00.ff.12.3f",
            " 0a:bc:00:ff:12:3f",
            "0a:bc:00:ff:12:é",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn from_bytes_needs_six() {
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3, 4, 5]), None);
        assert_eq!(
            MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
    }
}
