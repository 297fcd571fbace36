//! The HTTP edge: tower layers (request id, tracing, body limit, Host/Origin guard, bearer
//! auth, OAuth step-up, rate limits), health, readiness and metrics. Knows nothing of tool semantics; the
//! router that stacks these layers is assembled in `crate::app`.

pub mod auth;
pub mod body_limit;
pub mod error;
pub mod health;
pub mod host_origin;
pub mod metrics;
pub mod rate_limit;
pub mod request_id;
pub mod step_up;
pub mod trace;
