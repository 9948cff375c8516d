//! Ethernet II and 802.1Q.
