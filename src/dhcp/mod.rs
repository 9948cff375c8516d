//! DHCPv4: the message format, a client and a server with its lease store.
pub mod wire;
