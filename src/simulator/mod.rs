//! The built-in Kasm simulator (an axum app faithful to `reference/kasm-api.md`).
