//! IPv4 wire format.
