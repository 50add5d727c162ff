//! The approvals routes of the API (`/v1/approvals`) over the control
//! plane's approvals.

pub mod routes;
