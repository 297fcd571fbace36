//! `kasm-mcp simulator`: start the simulator, print how to reach it (as `NAME=value` lines a
//! shell can `eval` and a human can read), then run until Ctrl-C or SIGTERM.

use std::io::Write;

use super::{Isolation, Simulator, SimulatorConfig};

/// The lines printed on start-up, in the form of environment assignments for `serve`.
pub fn banner(sim: &Simulator) -> String {
    let isolation = match sim.isolation() {
        Isolation::Bwrap(_) => "bwrap",
        Isolation::Directory => "directory (no bwrap: no filesystem isolation)",
        Isolation::Unavailable => "unavailable (bwrap required but not usable)",
    };
    format!(
        "KASM_API_URL={}\nKASM_API_KEY={}\nKASM_API_SECRET={}\nKASM_USER_ID={}\n\
         # Kasm simulator ready; sandbox: {isolation} under {}; faults: POST /__simulator/faults; Ctrl-C to stop\n",
        sim.base_url(),
        sim.api_key(),
        sim.api_secret(),
        sim.default_user_id(),
        sim.sandbox_root().display(),
    )
}

/// Run the simulator in the foreground until Ctrl-C or SIGTERM.
pub async fn run_until_signal(config: SimulatorConfig) -> std::io::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let sim = Simulator::start(config).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(banner(&sim).as_bytes())?;
    out.flush()?;
    drop(out);
    wait_for_signal().await?;
    tracing::info!("simulator stopping");
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
