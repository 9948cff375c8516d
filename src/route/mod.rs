//! Routing: the longest-prefix-match table, the FIB built on it, and the
//! IPv4 forwarding path (RFC 1812) that consults them.

pub mod fib;
pub mod forward;
pub mod lpm;

#[cfg(test)]
mod tests;
