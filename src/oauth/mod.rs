//! OAuth 2.1 resource server (MCP authorization; configured by `config::OAuthConfig`): the
//! protected-resource metadata, access-token validation against the issuer's published keys (or RFC 7662 introspection
//! for opaque tokens),
//! the mapping of a token to a principal, the `WWW-Authenticate` challenges (the step-up check is `http::step_up`).
//! This server never issues tokens and never passes a client's token on (not to Kasm, not to
//! a log line). Static tokens (`http::auth`) work beside it; `http::auth` calls
//! [`OAuthVerifier::verify`] for a bearer value that is not a static token.

pub mod challenge;
pub mod discovery;
pub mod introspection;
pub mod kasm_user;
pub mod keys;
pub mod metadata;
pub mod token;
pub mod verifier;

pub use verifier::{OAuthVerifier, Refusal};
