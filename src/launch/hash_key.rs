//! `kasm-mcp hash-key`: mint a bearer token (or hash a given one, `-` reading it from stdin)
//! and print the SHA-256 digest the configuration stores instead of the token.

use std::io::{BufRead, Write};

use crate::tokens::{mint_token, sha256_hex, toml_snippet};

/// Print the digest of `token` (`-`: read one line from `input`), or mint a new token and
/// print it with its digest and a ready-to-paste `[[auth.tokens]]` entry.
pub fn hash_key(
    token: Option<&str>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match token {
        Some("-") => {
            let mut line = String::new();
            input.read_line(&mut line)?;
            writeln!(out, "{}", sha256_hex(line.trim_end_matches(['\r', '\n'])))
        }
        Some(token) => writeln!(out, "{}", sha256_hex(token)),
        None => {
            let token = mint_token();
            let digest = sha256_hex(&token);
            writeln!(out, "token:  {token}")?;
            writeln!(out, "sha256: {digest}")?;
            writeln!(out)?;
            writeln!(
                out,
                "Give the token to the MCP client (Authorization: Bearer <token>); store only the digest:"
            )?;
            writeln!(out)?;
            write!(out, "{}", toml_snippet("agent", &digest, "operator"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_stdin_without_the_newline_and_mints_otherwise() {
        let mut out = Vec::new();
        hash_key(Some("-"), &mut &b"secret\n"[..], &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim(), sha256_hex("secret"));
        let mut out = Vec::new();
        hash_key(None, &mut &b""[..], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let token = text
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("token:")
            .trim();
        assert!(
            text.contains(&format!("sha256 = \"{}\"", sha256_hex(token))),
            "{text}"
        );
    }
}
