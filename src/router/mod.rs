//! The gateway runtime: several interfaces, forwarding, config. `ringstack
//! gateway --config FILE` reads its file with [`config::load`], which checks
//! everything that can be checked without touching the system, so the runtime
//! starts from a [`config::GatewayConfig`] it need not re-validate.

pub mod config;
pub mod runtime;
