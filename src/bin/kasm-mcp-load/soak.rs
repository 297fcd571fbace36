//! The mixed soak: N clients for a fixed time, each repeating a round of status calls, one
//! `execute_kasm_command` and one small file written and read back (through the relay),
//! while the server's RSS is sampled; reports errors per kind and the RSS trend. At most
//! [`RELAY_AT_ONCE`] relay calls run at once: the simulator, like a container, refuses more
//! than 32 processes per session, and every relay call is a sandboxed process group.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::calls::{Call, tool_call};
use crate::stats::Samples;

/// Status calls per round (then one exec and one file write + read).
pub const STATUS_PER_ROUND: usize = 8;
/// Relay calls (exec, file write, file read) in flight at once, over all clients.
pub const RELAY_AT_ONCE: usize = 8;

/// What the soak measured.
pub struct SoakReport {
    pub status: Samples,
    pub exec: Samples,
    pub files: Samples,
    /// (seconds since start, server RSS KiB), every `sample_every`.
    pub rss: Vec<(f64, u64)>,
}

/// Least-squares slope of RSS over time, KiB per minute (0 with fewer than two samples).
pub fn rss_slope_kib_per_min(samples: &[(f64, u64)]) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return 0.0;
    }
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_r = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, r) in samples {
        num += (t - mean_t) * (*r as f64 - mean_r);
        den += (t - mean_t) * (t - mean_t);
    }
    if den == 0.0 { 0.0 } else { num / den * 60.0 }
}

/// The three calls of a round, for one client (each client writes its own file).
pub struct Round {
    pub status: Call,
    pub exec: Call,
    pub write: Call,
    pub read: Call,
}

impl Round {
    pub fn new(mcp: impl Fn(serde_json::Value) -> Call, kasm_id: &str, client: usize) -> Round {
        let path = format!("/home/kasm-user/soak-{client}.txt");
        Round {
            status: mcp(tool_call("get_session_status", json!({"kasm_id": kasm_id}))),
            exec: mcp(tool_call(
                "execute_kasm_command",
                json!({"kasm_id": kasm_id, "command": "true"}),
            )),
            write: mcp(tool_call(
                "write_kasm_file",
                json!({"kasm_id": kasm_id, "file_path": path,
                       "content": format!("soak round trip of client {client}\n")}),
            )),
            read: mcp(tool_call(
                "read_kasm_file",
                json!({"kasm_id": kasm_id, "file_path": path}),
            )),
        }
    }
}

/// Run `rounds` (one per client) for `duration`, sampling `rss()` every `sample_every`.
pub async fn run(
    http: &reqwest::Client,
    rounds: Vec<Round>,
    duration: Duration,
    sample_every: Duration,
    rss: impl Fn() -> u64,
) -> SoakReport {
    let started = Instant::now();
    let deadline = started + duration;
    let relay = std::sync::Arc::new(tokio::sync::Semaphore::new(RELAY_AT_ONCE));
    let workers: Vec<_> = rounds
        .into_iter()
        .map(|round| {
            let http = http.clone();
            let relay = relay.clone();
            tokio::spawn(async move {
                let (mut status, mut exec, mut files) =
                    (Samples::default(), Samples::default(), Samples::default());
                while Instant::now() < deadline {
                    for _ in 0..STATUS_PER_ROUND {
                        let t = Instant::now();
                        let outcome = round.status.send(&http).await;
                        status.record(t.elapsed(), outcome);
                    }
                    let Ok(_permit) = relay.acquire().await else {
                        break;
                    };
                    let t = Instant::now();
                    let outcome = round.exec.send(&http).await;
                    exec.record(t.elapsed(), outcome);
                    let t = Instant::now();
                    let outcome = match round.write.send(&http).await {
                        Ok(()) => round.read.send(&http).await,
                        Err(e) => Err(e),
                    };
                    files.record(t.elapsed(), outcome);
                }
                (status, exec, files)
            })
        })
        .collect();
    let mut samples = vec![(0.0, rss())];
    while Instant::now() < deadline {
        tokio::time::sleep(sample_every.min(deadline.saturating_duration_since(Instant::now())))
            .await;
        samples.push((started.elapsed().as_secs_f64(), rss()));
    }
    let mut report = SoakReport {
        status: Samples::default(),
        exec: Samples::default(),
        files: Samples::default(),
        rss: samples,
    };
    for w in workers {
        if let Ok((s, e, f)) = w.await {
            report.status.merge(s);
            report.exec.merge(e);
            report.files.merge(f);
        }
    }
    report
}
