//! Routing: the longest-prefix-match table the forwarding table (FIB) will
//! be built on, and the FIB itself.
pub mod lpm;
