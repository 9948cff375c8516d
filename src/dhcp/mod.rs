//! DHCPv4: the message format, a client and a server with its lease store.
pub mod client;
pub mod server;
pub mod store;
pub mod wire;

pub use client::{ClientAction, ClientConfig, ClientState, DhcpClient, Lease};
pub use server::{DhcpServer, Reply, ServerAction, ServerConfig};
pub use store::{
    ClientKey, FileStore, LeaseStore, MemoryStore, StoreError, StoredLease, WallClock,
};

#[cfg(test)]
mod tests;
