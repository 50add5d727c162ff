//! Test support shared by every suite: each test starts its own real servers
//! on ephemeral ports, so tests run in parallel and never touch the machine's
//! own services.

pub mod fakes;
pub mod mcp;
pub mod oidc;
pub mod relay;
pub use sluice_launch::{mariadb, pg, ports, sshd};
pub mod wire;
