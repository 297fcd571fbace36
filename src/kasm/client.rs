//! The reqwest implementation of [`super::KasmApi`].

/// Placeholder until the client lands.
pub struct KasmClient;
