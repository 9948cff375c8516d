//! The stack: interfaces, sockets, the poll loop.
