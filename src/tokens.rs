//! Bearer tokens of MCP principals: minting new ones and the SHA-256 digest that the
//! configuration stores instead of the token (`kasm-mcp hash-key`, and the auth layer).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of minted tokens, so secret scanners and humans recognise them.
pub const TOKEN_PREFIX: &str = "kmcp_";

/// The lowercase hex SHA-256 digest of a token (what `[[auth.tokens]] sha256` holds).
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
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
        assert_eq!(config.auth.tokens[0].sha256, digest);
        assert_eq!(config.auth.tokens[0].role, "operator");
    }
}
