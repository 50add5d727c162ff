//! Sluice's PostgreSQL wire proxy: an agent logs in with a grant (SCRAM
//! against the grant's verifier, or an OIDC token over TLS), Sluice opens the
//! backend session with the credential it holds, and every statement is
//! analysed and checked against the connection's guardrails before it is
//! forwarded. See DESIGN.md §2–§3.

mod backend;
mod backend_catalog;
mod cancel;
mod capture;
pub mod codec;
mod completions;
mod deny;
pub mod errors;
mod frontend;
mod mask;
pub mod messages;
mod names;
mod outcome;
mod params;
mod policy;
mod pool;
mod probe;
mod proxy;
mod pump;
pub mod scram;
mod session;
mod settings;
mod side;
mod startup;

pub use errors::{ClientError, PgError};
pub use probe::{check_tls_pair, probe};
pub use proxy::PgProxy;
