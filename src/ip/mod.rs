//! IPv4: wire format, checksum, addresses, fragmentation and reassembly.
pub mod checksum;
pub mod cidr;
pub mod frag;
pub mod wire;
