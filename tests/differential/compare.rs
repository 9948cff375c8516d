// Differential checks: ringstack's wire parsers against etherparse on the
// same bytes. Shared by tests/differential.rs and the `differential` fuzz
// target (which include!s this file). Each function returns Err with a
// description when the two disagree in a way that is neither a bug we have
// fixed nor one of the intended differences listed in docs/DIFFERENTIAL.md.

use etherparse as ep;
use ringstack::arp::wire as arpw;
use ringstack::eth;
use ringstack::icmp::wire as icmpw;
use ringstack::ip::wire as ipw;
use ringstack::udp::wire as udpw;

/// IP protocol 51: etherparse parses the Authentication Header inside IPv4;
/// ringstack has no AH and treats it as an unknown protocol.
const AH: u8 = 51;

pub fn ipv4(data: &[u8]) -> Result<(), String> {
    let ours = ipw::Packet::new_checked(data);
    let theirs = ep::Ipv4Slice::from_slice(data);
    match (ours, theirs) {
        (Err(_), Err(_)) => Ok(()),
        (Ok(p), Err(e)) if u8::from(p.protocol()) == AH => {
            let _ = e; // intended: AH parsed by etherparse only
            Ok(())
        }
        (Ok(_), Err(e)) => Err(format!(
            "ipv4: ringstack accepts, etherparse rejects: {e:?}"
        )),
        (Err(e), Ok(_)) => Err(format!(
            "ipv4: etherparse accepts, ringstack rejects: {e:?}"
        )),
        (Ok(p), Ok(s)) => {
            let h = s.header();
            let same = p.src_addr() == h.source_addr()
                && p.dst_addr() == h.destination_addr()
                && u8::from(p.protocol()) == h.protocol().0
                && p.ttl() == h.ttl()
                && p.ident() == h.identification()
                && p.dont_frag() == h.dont_fragment()
                && p.more_frags() == h.more_fragments()
                && p.frag_offset() as u32 == h.fragments_offset().value() as u32 * 8
                && p.total_len() == h.total_len()
                && p.header_len() == h.slice().len()
                && p.options() == h.options()
                && (u8::from(p.protocol()) == AH || p.payload() == s.payload().payload);
            if same {
                Ok(())
            } else {
                Err(format!("ipv4: fields differ: ours {p:?} theirs {h:?}"))
            }
        }
    }
}

pub fn udp(data: &[u8]) -> Result<(), String> {
    let ours = udpw::Packet::new_checked(data);
    let theirs = ep::UdpSlice::from_slice(data);
    match (ours, theirs) {
        (Err(_), Err(_)) => Ok(()),
        // Intended: a length field of 0 means "use the IP length" to
        // etherparse (RFC 2675 jumbograms, IPv6 only); for IPv4, RFC 768's
        // length counts the header and is at least 8, so ringstack rejects it.
        (Err(udpw::Error::BadLength), Ok(s)) if s.length() == 0 => Ok(()),
        (Ok(_), Err(e)) => Err(format!("udp: ringstack accepts, etherparse rejects: {e:?}")),
        (Err(e), Ok(_)) => Err(format!("udp: etherparse accepts, ringstack rejects: {e:?}")),
        (Ok(p), Ok(s)) => {
            if p.src_port() == s.source_port()
                && p.dst_port() == s.destination_port()
                && p.len() == s.length()
                && p.checksum() == s.checksum()
                && p.payload() == s.payload()
            {
                Ok(())
            } else {
                Err("udp: fields differ".into())
            }
        }
    }
}

pub fn arp(data: &[u8]) -> Result<(), String> {
    let ours = arpw::Packet::new_checked(data);
    let theirs = ep::ArpPacketSlice::from_slice(data);
    match (ours, theirs) {
        (Err(_), Err(_)) => Ok(()),
        (Ok(_), Err(e)) => Err(format!("arp: ringstack accepts, etherparse rejects: {e:?}")),
        (Err(e), Ok(_)) => Err(format!("arp: etherparse accepts, ringstack rejects: {e:?}")),
        (Ok(p), Ok(s)) => {
            let t = s.to_packet();
            if p.source_hardware_addr() == t.sender_hw_addr()
                && p.source_protocol_addr() == t.sender_protocol_addr()
                && p.target_hardware_addr() == t.target_hw_addr()
                && p.target_protocol_addr() == t.target_protocol_addr()
                && u16::from(p.operation()) == t.operation.0
            {
                Ok(())
            } else {
                Err("arp: fields differ".into())
            }
        }
    }
}

pub fn icmp(data: &[u8]) -> Result<(), String> {
    let ours = icmpw::Packet::new_checked(data);
    let theirs = ep::Icmpv4Slice::from_slice(data);
    match (ours, theirs) {
        (Err(_), Err(_)) => Ok(()),
        // Intended: etherparse insists a Timestamp (13) or Timestamp Reply
        // (14) with code 0 is exactly 20 bytes; ringstack's view accepts any
        // message of 8 bytes or more and its Repr reports Unsupported.
        (Ok(p), Err(_)) if matches!(p.msg_type(), 13 | 14) => Ok(()),
        (Ok(_), Err(e)) => Err(format!(
            "icmp: ringstack accepts, etherparse rejects: {e:?}"
        )),
        (Err(e), Ok(_)) => Err(format!(
            "icmp: etherparse accepts, ringstack rejects: {e:?}"
        )),
        (Ok(p), Ok(s)) => {
            if p.msg_type() == s.type_u8()
                && p.msg_code() == s.code_u8()
                && p.checksum() == s.checksum()
            {
                Ok(())
            } else {
                Err("icmp: fields differ".into())
            }
        }
    }
}

pub fn ethernet(data: &[u8]) -> Result<(), String> {
    let ours = eth::Frame::new_checked(data);
    let theirs = ep::Ethernet2Slice::from_slice_without_fcs(data);
    match (ours, theirs) {
        (Err(_), Err(_)) => Ok(()),
        // With an 802.1Q tag ringstack also needs the 4 tag bytes; etherparse
        // checks those one layer up (SingleVlanSlice).
        (Err(_), Ok(s)) if s.ether_type().0 == 0x8100 => {
            if ep::SingleVlanSlice::from_slice(s.payload_slice()).is_err() {
                Ok(())
            } else {
                Err("eth: a complete tag was refused".into())
            }
        }
        (Ok(_), Err(e)) => Err(format!("eth: ringstack accepts, etherparse rejects: {e:?}")),
        (Err(e), Ok(_)) => Err(format!("eth: etherparse accepts, ringstack rejects: {e:?}")),
        (Ok(f), Ok(s)) => {
            if f.dst_addr().0 == s.destination()
                && f.src_addr().0 == s.source()
                && u16::from(f.ethertype()) == s.ether_type().0
            {
                Ok(())
            } else {
                Err("eth: fields differ".into())
            }
        }
    }
}
