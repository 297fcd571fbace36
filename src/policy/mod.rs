//! Pure decisions, the one place each is made: who is calling (principal, role), which tools a
//! role may use, which Kasm user a principal acts as, which sessions it may touch, which
//! container users exec may run as, which paths file tools may touch, which commands exec may
//! run (`commands`) and which environment names it may set (`env`). Tools fetch the facts
//! (from Kasm, from the configuration), ask here, and act. No I/O here, and nothing imported
//! from the layers above (`tests/it/layers.rs` checks).

pub mod client_roots;
pub mod commands;
pub mod env;
pub mod exec_users;
pub mod images;
pub mod lifetimes;
pub mod ownership;
pub mod paths;
pub mod principal;
pub mod quotas;
pub mod roles;

pub use exec_users::may_run_as;
pub use ownership::{NoKasmUser, acting_kasm_user, may_touch_session};
pub use principal::{OAUTH_PRINCIPAL_PREFIX, OAuthGrant, Principal, Role};
pub use roles::{COMMAND_ROLE, may_see_session_url, may_use_tool, sees_every_session};
