//! The one way the commands run async work from the synchronous `main`: a fresh
//! multi-threaded runtime, errors printed for the operator.

/// Run `future` to completion on a fresh multi-threaded runtime. A runtime that cannot start,
/// or an error, is printed to stderr (as `kasm-mcp <what>: <error>`) and gives `None`.
pub fn run_async<T, E: std::fmt::Display>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return None;
        }
    };
    match runtime.block_on(future) {
        Ok(value) => Some(value),
        Err(e) => {
            eprintln!("kasm-mcp {what}: {e}");
            None
        }
    }
}

/// Log to stderr, filtered by `RUST_LOG` or else `default_filter`. Colour codes only when
/// stderr is a terminal: a log file or collector (journald, `docker logs`) gets plain text,
/// and the server does not format escape sequences around every field of every line (≈ 2 %
/// of a tool call's CPU at the default `info` level, which logs two lines per call).
pub fn init_logging(default_filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .try_init();
}
