//! The axum router and tower layers (auth, rate limit, Host/Origin guard, body limit), health,
//! readiness and metrics. Knows nothing of tool semantics.
