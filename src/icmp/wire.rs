//! ICMPv4 wire format.
