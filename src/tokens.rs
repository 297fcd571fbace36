//! Bearer tokens of MCP principals: minting new ones and the SHA-256 digest that the
//! configuration stores instead of the token (`kasm-mcp hash-key`, and the auth layer).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of minted tokens, so secret scanners and humans recognise them.
pub const TOKEN_PREFIX: &str = "kmcp_";

/// The lowercase hex SHA-256 digest of a token (what `[[auth.tokens]] sha256` holds).
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The SHA-256 digest of a bearer token, as `[[auth.tokens]] sha256` stores it: parsed once
/// from 64 hex digits while the configuration loads, compared in constant time.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TokenDigest([u8; 32]);

/// A `sha256` value that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a SHA-256 digest: store the token's SHA-256 hex digest (64 hex digits), as printed by `kasm-mcp hash-key`"
)]
pub struct NotADigest(String);

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `token` hashes to this digest, in time that does not depend on where they differ.
    pub fn matches(&self, token: &str) -> bool {
        self.matches_digest(&TokenDigest::of(token))
    }

    /// Whether `presented` (a presented token's digest, hashed once for comparing against
    /// many entries) is this digest, in time that does not depend on where they differ.
    pub fn matches_digest(&self, presented: &TokenDigest) -> bool {
        bool::from(presented.0.ct_eq(&self.0))
    }

    /// The lowercase hex form (64 digits).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::str::FromStr for TokenDigest {
    type Err = NotADigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(trimmed, &mut bytes) {
            Ok(()) if trimmed.len() == 64 => Ok(TokenDigest(bytes)),
            _ => Err(NotADigest(s.to_owned())),
        }
    }
}

impl TryFrom<String> for TokenDigest {
    type Error = NotADigest;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenDigest({})", self.to_hex())
    }
}

impl std::fmt::Display for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A new random token: `kmcp_` + 256 bits from the OS-seeded CSPRNG, base64url without padding.
pub fn mint_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A ready-to-paste `[[auth.tokens]]` entry for a digest.
pub fn toml_snippet(name: &str, digest: &str, role: &str) -> String {
    format!(
        "[[auth.tokens]]\nname = {name:?}\nsha256 = {digest:?}\nrole = {role:?}   # viewer | operator | admin\n# kasm_user_id = \"<the Kasm user's UUID>\"   # defaults to kasm.user_id\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_known_vectors() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn minted_tokens_are_long_random_and_distinct() {
        let a = mint_token();
        let b = mint_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        let body = &a[TOKEN_PREFIX.len()..];
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
    }

    #[test]
    fn snippet_is_valid_config() {
        let digest = sha256_hex("x");
        let snippet = toml_snippet("agent", &digest, "operator");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &snippet).unwrap();
        let config = crate::config::Config::load_from(Some(&path), &[]).unwrap();
        assert_eq!(config.auth.tokens[0].sha256.to_hex(), digest);
        assert_eq!(config.auth.tokens[0].role, crate::policy::Role::Operator);
    }

    #[test]
    fn digests_parse_once_and_match_only_their_token() {
        let digest: TokenDigest = sha256_hex("abc").parse().unwrap();
        assert!(digest.matches("abc"));
        assert!(!digest.matches("abd"));
        assert!(!digest.matches(""));
        assert_eq!(digest, TokenDigest::of("abc"));
        let upper: TokenDigest = sha256_hex("abc").to_uppercase().parse().unwrap();
        assert_eq!(upper.to_hex(), sha256_hex("abc"), "stored lowercase");
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(66)] {
            let err = bad.parse::<TokenDigest>().unwrap_err().to_string();
            assert!(err.contains("hash-key"), "{bad:?}: {err}");
        }
    }
}
