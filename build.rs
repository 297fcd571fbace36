//! Build script: code layout of the release `kasm-mcp` binary.
//!
//! Most of an idle server's RSS is the binary's mapped code, and the kernel maps code in
//! 64 KiB windows (fault-around, large folios): the ~2,000 functions a starting server runs
//! were spread over 135 of the 168 windows of `.text`, so 8.5 of 10.7 MiB of code were
//! resident although only ~2.7 MB of it ran. `link/kasm-mcp.symbol-order` lists those
//! functions (recorded from a real start by `scripts/symbol-order.sh`); lld places them first
//! and together, so an idle server maps a few windows instead. Names missing from the binary
//! (after a dependency or compiler update) are skipped, so a stale list costs RSS, never a
//! failed build; regenerate it with the script (docs/bench-notes/idle-rss.md).
//!
//! Only where the linker is known to be lld: release builds for x86_64-unknown-linux-gnu with
//! rustc ≥ 1.90 (bundled lld is the default linker there) and no linker of the user's own.
//! Everywhere else (GNU ld, other targets, debug builds) nothing changes.
#![forbid(unsafe_code)]

use std::env;
use std::process::Command;

const ORDER_FILE: &str = "link/kasm-mcp.symbol-order";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KASM_MCP_NO_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if linker_is_bundled_lld() && env::var_os("KASM_MCP_NO_SYMBOL_ORDER").is_none() {
        let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        let path = std::path::Path::new(&dir).join(ORDER_FILE);
        // Only here: a debug build does not rerun (and rebuild) when the list changes.
        println!("cargo:rerun-if-changed={ORDER_FILE}");
        // `-Wl,` splits at commas: a checkout path with one cannot be passed this way.
        if path.is_file() && !path.to_string_lossy().contains(',') {
            let arg = |flag: String| println!("cargo:rustc-link-arg-bin=kasm-mcp={flag}");
            arg(format!("-Wl,--symbol-ordering-file={}", path.display()));
            arg("-Wl,--no-warn-symbol-ordering".to_string());
        }
    }
}

/// Release build, x86_64 GNU/Linux, rustc ≥ 1.90, no linker override in the environment.
fn linker_is_bundled_lld() -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("PROFILE") != "release" || var("TARGET") != "x86_64-unknown-linux-gnu" {
        return false;
    }
    // RUSTC_LINKER: a linker set anywhere cargo reads it (environment or `.cargo/config.toml`
    // `[target.…] linker`), which may be GNU ld or gold, neither of which knows the option.
    if env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || env::var_os("RUSTC_LINKER").is_some()
    {
        return false;
    }
    // `-Clinker=…`, `-Clinker-features=-lld`, `-Clink-arg=-fuse-ld=bfd`, …: the user chose.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker") || flags.contains("fuse-ld") {
        return false;
    }
    rustc_minor().is_some_and(|minor| minor >= 90)
}

/// The minor version of the rustc cargo uses (`rustc 1.95.0 (…)` → 95).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
