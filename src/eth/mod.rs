//! Ethernet II and 802.1Q.
mod addr;
mod wire;

pub use addr::{MacAddr, ParseMacAddrError};
pub use wire::{Error, EtherType, Frame, Repr, VlanTag, HEADER_LEN, VLAN_TAG_LEN};
