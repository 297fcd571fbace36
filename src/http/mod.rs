//! The HTTP edge: tower layers (request id, tracing, draining refused bodies, metrics; the
//! checks — body limit, Host/Origin guard, bearer auth, OAuth step-up, per-IP rate limit — as
//! deciders of the one generic `refuse` layer), health, readiness and metrics,
//! and the accept loop with its connection limits (`serve`). Knows nothing of tool semantics; the
//! router that stacks these layers is assembled in `crate::app`.

pub mod activity;
pub mod auth;
pub mod body_limit;
pub mod conn_limits;
pub mod drain;
pub mod error;
pub mod health;
pub mod host_name;
pub mod host_origin;
pub mod layer_future;
pub mod metrics;
pub mod rate_limit;
pub mod refuse;
pub mod request_id;
pub mod serve;
pub mod sniff;
pub mod step_up;
pub mod trace;
