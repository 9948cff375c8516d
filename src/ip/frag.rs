//! IPv4 reassembly.
