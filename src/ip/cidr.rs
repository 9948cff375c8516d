//! IPv4 prefixes.
