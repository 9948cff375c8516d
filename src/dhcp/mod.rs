//! DHCPv4: the message format, a client and a server with its lease store.
pub mod client;
pub mod wire;

pub use client::{ClientAction, ClientConfig, ClientState, DhcpClient, Lease};
