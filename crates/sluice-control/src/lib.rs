//! The control plane: what Sluice decides outside the data path. Grants
//! are issued ([`issue`]), approvals opened, voted and settled
//! ([`approvals`]), bearer tokens authenticated ([`auth`]), expired grants
//! and approvals swept ([`sweeper`]), approvers notified ([`notify`]), and
//! every change broadcast to whoever waits on it. The HTTP API and the web
//! page call these functions; the protocol adapters reach them through
//! [`GateControl`], the gate's `Control` trait over the same state.

pub mod approvals;
pub mod auth;
mod error;
pub mod fleet;
mod gate;
pub mod issue;
pub mod notify;
mod state;
pub mod sweeper;

pub use error::{Error, Kind};
pub use gate::GateControl;
pub use state::{AppState, GrantChange, Shared, announce};
