//! Pure decisions: principal × tool × arguments → allow or deny with a reason. No I/O here.

pub mod paths;
pub mod principal;

pub use principal::{Principal, Role};
