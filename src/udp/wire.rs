//! UDP wire format.
