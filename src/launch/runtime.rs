//! The one way the commands run async work from the synchronous `main`: a fresh
//! multi-threaded runtime, errors printed for the operator.

/// Run `future` to completion on a fresh multi-threaded runtime with tokio's default worker
/// count (see [`run_async_on`]).
pub fn run_async<T, E: std::fmt::Display>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    run_async_on(what, 0, future)
}

/// Run `future` to completion on a fresh multi-threaded runtime with `worker_threads`
/// workers (`[runtime] worker_threads`; 0 = tokio's default: `TOKIO_WORKER_THREADS`, else
/// one per CPU core). A runtime that cannot start, or an error, is printed to stderr (as
/// `kasm-mcp <what>: <error>`) and gives `None`.
///
/// Only the worker count is configurable: measured with the load generator's floor phase
/// (docs/bench-notes/perf-floor.md), one worker cuts a call's thread wake-ups at low load
/// from ≈ 2–3 to ≈ 0.6–1 but caps the server at one core, so the default stays one per core.
pub fn run_async_on<T, E: std::fmt::Display>(
    what: &str,
    worker_threads: usize,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    let runtime = match builder.build() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn workers_of(worker_threads: usize) -> Option<usize> {
        run_async_on("test", worker_threads, async {
            Ok::<_, String>(tokio::runtime::Handle::current().metrics().num_workers())
        })
    }

    #[test]
    fn the_configured_worker_count_is_the_runtime_s() {
        assert_eq!(workers_of(1), Some(1));
        assert_eq!(workers_of(3), Some(3));
    }

    #[test]
    fn zero_keeps_tokio_s_default() {
        let default = tokio::runtime::Runtime::new()
            .expect("a runtime")
            .metrics()
            .num_workers();
        assert_eq!(workers_of(0), Some(default));
    }

    #[test]
    fn an_error_gives_none() {
        assert_eq!(
            run_async_on("test", 1, async { Err::<(), _>("boom") }),
            None
        );
    }
}
