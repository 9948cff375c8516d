//! ARP for Ethernet/IPv4.
pub mod wire;
