//! ARP wire format.
