//! The gate every protocol shares. A protocol adapter (Postgres today; SSH,
//! MySQL next) turns its wire traffic into requests that say what they do
//! ([`Subject`]), and the gate decides them the same way for all: the
//! connection's guardrails under the grant's profile, an approval hold when
//! a rule asks for one, the decision recorded before a [`Permit`] exists.
//! It also owns what a session is, whatever its protocol: the limits on
//! how many a grant may hold ([`Seats`]), its record ([`SessionRecord`]),
//! its place on the live list ([`Presence`]), and when it must end
//! ([`end_signal`]). The adapters reach the control plane through one
//! trait, [`Control`].

pub mod control;
mod decide;
mod drain;
mod ending;
mod hold;
mod meter;
mod pre_auth;
pub mod render;
mod seats;
mod session;

pub use control::{
    ApprovalOutcome, ApprovalRequest, ApprovalTicket, Control, ControlError, LoginRefused,
    is_grant_id,
};
pub use decide::{
    Decision, Denial, DenialKind, Gate, GateSpec, MAX_RECORDED_TEXT, Permit, Refusal, Run, Subject,
    record_of,
};
pub use drain::{drain, on_shutdown};
pub use ending::{EndReason, EndSignal, end_signal};
pub use hold::{Held, Holds, Tell};
pub use meter::Meter;
pub use pre_auth::{MAX_PRE_AUTH, Pending, PreAuth};
pub use seats::{Seat, Seats, SessionLimit};
pub use session::{Presence, SessionRecord, new_session_id};
