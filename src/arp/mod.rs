//! ARP for Ethernet/IPv4: the wire format and the neighbour cache.
pub mod cache;
pub mod wire;

pub use cache::{ArpConfig, Learned, NeighborCache, Resolution};
