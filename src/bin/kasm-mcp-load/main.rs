//! `kasm-mcp-load`: the load generator of `docs/BENCHMARKS.md`. It starts the release
//! `kasm-mcp simulator` (no start delay) and `kasm-mcp serve` against it as child processes,
//! then measures, in one run against that one backend:
//!
//! * closed-loop throughput and latency with N concurrent clients of the direct Kasm
//!   `get_kasm_status` (the limit, with the same HTTP client), `ping`, `tools/list` and
//!   `tools/call get_session_status` (admin and operator, over `/mcp` and over `/sse`),
//!   before and after 500 sessions of another user exist in Kasm;
//! * open-loop latency at a constant rate (measured from each call's intended start, so
//!   there is no coordinated omission) of the direct call and of `get_session_status`,
//!   paired (`paired.rs`): both at --rate, interleaved on one schedule over one window, so
//!   the added latency is measured on the same machine state;
//! * the relay round trip of `execute_kasm_command` `true`;
//! * idle cost: RSS at start, and (last, as the allocator keeps what they used) per open
//!   `/sse` stream and per idle `/mcp` connection;
//! * CPU per call (user + system from `/proc/PID/stat`) of the server and the simulator,
//!   and Kasm requests per call from the simulator's request counter;
//! * the same `get_session_status` served by the official Python SDK (FastMCP,
//!   `bench/fastmcp_status.py`) against the same simulator, as a ratio;
//! * the floor (`--phases floor`): the same `get_kasm_status` through a minimal axum +
//!   reqwest proxy (`floor.rs`, this program re-executed as `floor-proxy`, a process of its
//!   own), beside the direct call and kasm-mcp, closed loop and paired open loop, with the arithmetic
//!   "throughput ≈ cores / CPU per call of client + server + simulator";
//! * on request (`--phases soak`), a mixed soak: status calls, exec and small file round
//!   trips from N clients for minutes, with errors and the RSS trend.
//!
//! `--phases` picks which of these run (e.g. `--phases closed` to profile the closed loop).
//! `--rt PRIORITY` runs everything under SCHED_FIFO (`rt.rs`): a quiet machine's figures on
//! a shared one, labelled as such.
//!
//! Loopback only; every phase is bounded in time. `--quick` is the seconds-long smoke run.

#![forbid(unsafe_code)]

mod calls;
mod floor;
mod idle;
mod paired;
mod procs;
mod rt;
mod soak;
mod stats;

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use calls::{Call, LegacySession, tool_call};
use procs::{Proc, SimInfo};
use stats::{Samples, Summary};

#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for kasm-mcp (see docs/BENCHMARKS.md)")]
struct Args {
    /// Seconds per closed-loop and open-loop phase.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrent clients in closed-loop phases.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Calls per second in the open-loop phases.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Sessions of another user created in Kasm before the "large deployment" phases.
    #[arg(long, default_value_t = 500)]
    other_sessions: u32,
    /// Sequential `execute_kasm_command true` calls.
    #[arg(long, default_value_t = 30)]
    exec_runs: usize,
    /// Idle `/sse` streams to open (the run raises the server's `[legacy_sse]` caps for them).
    #[arg(long, default_value_t = 10_000)]
    sse_streams: usize,
    /// Idle `/mcp` keep-alive connections to open.
    #[arg(long, default_value_t = 10_000)]
    mcp_connections: usize,
    /// Which phases run, comma-separated: closed, floor, floor-open, large, open, relay,
    /// python, idle, soak (floor-open and soak are not in the default list: floor-open is
    /// floor's paired open loop alone, for --rt; soak lasts --soak-seconds).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "closed,floor,large,open,relay,python,idle"
    )]
    phases: Vec<Phase>,
    /// Length of the mixed soak phase.
    #[arg(long, default_value_t = 300.0)]
    soak_seconds: f64,
    /// Python with the `mcp` SDK, for the FastMCP comparison (skipped when missing).
    #[arg(long, default_value = ".venv/bin/python")]
    python: std::path::PathBuf,
    /// Seconds-long smoke run: every phase once, tiny counts (never a timed pass/fail).
    #[arg(long)]
    quick: bool,

    /// `RUST_LOG` of the server under test. `warn` leaves out the per-request log line and
    /// the audit events (`info`, the default of `kasm-mcp serve`): pass `info` to measure
    /// with them (the server's log goes to this program's stderr).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Extra environment of the server under test and of the floor proxy, `KEY=VALUE`
    /// (repeatable), e.g. `--server-env TOKIO_WORKER_THREADS=1` to try a runtime setting
    /// on the server side only (the simulator and this program keep theirs).
    #[arg(long = "server-env", value_parser = parse_env_pair)]
    server_env: Vec<(String, String)>,
    /// Run this program, and the simulator, server and floor proxy it starts, under
    /// SCHED_FIFO at this priority (1..=99) by re-executing itself under `chrt -f` (needs
    /// root or CAP_SYS_NICE). Other tenants' threads then wait while a measured thread is
    /// runnable: quiet-machine figures, not a faster server. Only with the phases open,
    /// floor-open and relay (a real-time closed loop would hold both cores for seconds).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
    rt: Option<u8>,

    #[command(subcommand)]
    command: Option<Command>,
}

/// What the floor phase re-executes this program as.
#[derive(clap::Subcommand, Debug, Clone)]
enum Command {
    /// Serve the floor proxy in front of the Kasm at --backend (credentials from
    /// KASM_API_KEY / KASM_API_SECRET); prints `listening=ADDR`.
    #[command(hide = true)]
    FloorProxy {
        #[arg(long)]
        backend: String,
    },
}

/// `KEY=VALUE` → `(KEY, VALUE)`.
fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// A part of the run (`--phases`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Closed loop: direct call, ping, tools/list, get_session_status (/mcp, /sse).
    Closed,
    /// Direct call, floor proxy and get_session_status side by side, closed loop and paired open loop.
    Floor,
    /// Only the paired open loop of `floor` (not in the default list): for `--rt` runs.
    FloorOpen,
    /// The closed loop again after --other-sessions sessions of another user exist.
    Large,
    /// Paired open loop: the direct call and get_session_status, each at --rate calls/s, interleaved.
    Open,
    /// Sequential relay round trips (`execute_kasm_command true`).
    Relay,
    /// The FastMCP implementation of get_session_status, closed loop.
    Python,
    /// Idle /sse streams and /mcp connections (RSS per connection).
    Idle,
    /// The mixed soak (--soak-seconds).
    Soak,
}

impl Args {
    fn effective(mut self) -> Args {
        if self.quick {
            self.duration = self.duration.min(0.5);
            self.clients = self.clients.min(8);
            self.rate = self.rate.min(100);
            self.other_sessions = self.other_sessions.min(10);
            self.exec_runs = self.exec_runs.min(2);
            self.sse_streams = self.sse_streams.min(20);
            self.mcp_connections = self.mcp_connections.min(20);
            self.soak_seconds = self.soak_seconds.min(2.0);
        }
        self
    }

    fn runs(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }

    /// `--rt` only with the light phases: a real-time closed loop (or 10,000 idle
    /// connections opened at once) would hold both cores for seconds, and without the
    /// kernel's RT throttling it would hang the machine.
    fn rt_refusal(&self) -> Option<String> {
        self.rt?;
        let heavy: Vec<String> = self
            .phases
            .iter()
            .filter(|p| !RT_PHASES.contains(p))
            .filter_map(|p| clap::ValueEnum::to_possible_value(p).map(|v| v.get_name().to_owned()))
            .collect();
        (!heavy.is_empty()).then(|| {
            format!(
                "kasm-mcp-load: --rt runs only the light phases (open, floor-open, relay); drop it or pick those with --phases (asked for: {})",
                heavy.join(", ")
            )
        })
    }
}

/// The phases `--rt` may run: paced or sequential, never saturating a core.
const RT_PHASES: [Phase; 3] = [Phase::Open, Phase::FloorOpen, Phase::Relay];

/// Tokens with one principal each; `/sse` streams are spread over the `stream-*` ones.
const ADMIN: &str = "load-admin-token";
const OPERATOR: &str = "load-operator-token";
/// Viewer principals the `/sse` streams are spread over (the run raises the per-principal
/// cap, so a few suffice; every configured token costs each request's token check).
const STREAM_PRINCIPALS: usize = 4;

fn stream_tokens() -> Vec<String> {
    (0..STREAM_PRINCIPALS)
        .map(|i| format!("load-stream-token-{i}"))
        .collect()
}

fn sha256_hex(text: &str) -> String {
    kasm_mcp::tokens::sha256_hex(text)
}

fn config_toml(port: u16, stream_tokens: &[String], sse_streams: usize) -> String {
    let streams = sse_streams.max(1024);
    let mut toml = format!(
        "[server]\nport = {port}\n\n[limits]\nper_ip_per_second = 1000000\nper_ip_burst = 1000000\n\
         per_principal_per_minute = 100000000\nper_principal_burst = 1000000\n\n\
         [connections]\nmax_open = 25000\nmax_open_per_ip = 0\n\n\
         [legacy_sse]\nmax_streams = {streams}\nmax_streams_per_principal = {streams}\n"
    );
    let mut token = |name: &str, secret: &str, role: &str| {
        toml.push_str(&format!(
            "\n[[auth.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\n",
            sha256_hex(secret)
        ));
    };
    token("admin", ADMIN, "admin");
    token("operator", OPERATOR, "operator");
    for (i, secret) in stream_tokens.iter().enumerate() {
        token(&format!("stream-{i}"), secret, "viewer");
    }
    toml
}

/// A private directory for the server's config file, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(format!(
            "kasm-mcp-load-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The machine's load averages, to print beside each figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The processes and the clients of one run.
struct Bench {
    args: Args,
    http: reqwest::Client,
    sim: Proc,
    sim_info: SimInfo,
    server: Proc,
    base: String,
    kasm_id: String,
}

/// One stream of a measurement: who serves it, its name in the table, and the call that
/// warms its connections up (`None`: no warm-up).
struct Stream<'a> {
    server: Option<&'a Proc>,
    name: &'a str,
    role: &'static str,
    warm_up: Option<&'a Call>,
}

/// One measured row.
struct Row {
    name: String,
    role: &'static str,
    kasm_per_call: f64,
    throughput: f64,
    summary: Summary,
    /// CPU per call of the server of this row (kasm-mcp, the floor proxy or FastMCP; NaN
    /// for the direct call).
    server_cpu_us: f64,
    sim_cpu_us: f64,
    /// CPU per call of this load generator (the client side of the call).
    client_cpu_us: f64,
    /// Voluntary context switches (thread sleeps, so wake-ups) per call of the server,
    /// the simulator and this program.
    switches: [f64; 3],
    load: String,
    first_error: Option<String>,
}

impl Bench {
    fn mcp(&self, token: &str, body: Value) -> Call {
        Call::Mcp {
            url: format!("{}/mcp", self.base),
            token: token.to_string(),
            body: body.to_string().into(),
        }
    }

    fn direct_status(&self) -> Call {
        Call::Direct {
            url: format!("{}/api/public/get_kasm_status", self.sim_info.url),
            body: json!({
                "api_key": self.sim_info.key, "api_key_secret": self.sim_info.secret,
                "kasm_id": self.kasm_id, "user_id": self.sim_info.user_id,
                "skip_agent_check": false,
            })
            .to_string()
            .into(),
        }
    }

    async fn kasm(&self, endpoint: &str, body: Value) -> Result<Value, String> {
        let mut body = body;
        body["api_key"] = json!(self.sim_info.key);
        body["api_key_secret"] = json!(self.sim_info.secret);
        let answer: Value = self
            .http
            .post(format!("{}/api/public/{endpoint}", self.sim_info.url))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match answer.get("error_message") {
            Some(e) if !e.is_null() => Err(format!("{endpoint}: {e}")),
            _ => Ok(answer),
        }
    }

    /// Kasm requests the simulator has received so far (all endpoints).
    async fn kasm_requests(&self) -> u64 {
        let counts: Value = match self
            .http
            .get(format!("{}/__simulator/requests", self.sim_info.url))
            .header("api-key", &self.sim_info.key)
            .header("api-key-secret", &self.sim_info.secret)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        counts
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }

    /// Measure `run` against kasm-mcp (see [`Bench::measured_on`]).
    async fn measured<F, Fut>(
        &self,
        name: &str,
        role: &'static str,
        warm_up: Option<&Call>,
        run: F,
    ) -> Row
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (Samples, Duration)>,
    {
        self.measured_on(Some(&self.server), name, role, warm_up, run)
            .await
    }

    /// Measure `run` with CPU (of `server`, the simulator and this program), Kasm-request and
    /// load bookkeeping around it, after sending `warm_up` (unrecorded: it opens the
    /// connections) from every client.
    async fn measured_on<F, Fut>(
        &self,
        server: Option<&Proc>,
        name: &str,
        role: &'static str,
        warm_up: Option<&Call>,
        run: F,
    ) -> Row
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (Samples, Duration)>,
    {
        let stream = Stream {
            server,
            name,
            role,
            warm_up,
        };
        let ([row], _) = self
            .measured_many([stream], move || async move {
                let (samples, elapsed) = run().await;
                ([samples], elapsed)
            })
            .await;
        row
    }

    /// Measure `run`, which drives N streams at once over one window, with CPU, Kasm-request
    /// and load bookkeeping around it, after each stream's warm-up. Each row's server CPU and
    /// server wake-ups are per call of its own stream (every stream has its own server, or
    /// none); the simulator's and this program's CPU and wake-ups, and Kasm requests, serve
    /// every stream at once, so they are per call over all streams (with N = 1: its own).
    /// Also returns each stream's latencies (µs) in the order `run` recorded them.
    async fn measured_many<const N: usize, F, Fut>(
        &self,
        streams: [Stream<'_>; N],
        run: F,
    ) -> ([Row; N], [Vec<u64>; N])
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ([Samples; N], Duration)>,
    {
        for stream in &streams {
            if let Some(call) = stream.warm_up {
                self.warm_up(call).await;
            }
        }
        let load = loadavg();
        let me = std::process::id();
        let server_cpu = |s: &Stream| s.server.map_or(f64::NAN, Proc::cpu);
        let server_switches = |s: &Stream| s.server.map_or(0, Proc::switches);
        let shared_switches = || [self.sim.switches(), procs::voluntary_switches(me)];
        let servers_before = streams.each_ref().map(server_cpu);
        let server_switches_before = streams.each_ref().map(server_switches);
        let (sim_cpu, client_cpu) = (self.sim.cpu(), procs::cpu_seconds(me));
        let shared_before = shared_switches();
        let kasm_before = self.kasm_requests().await;
        let (mut samples, elapsed) = run().await;
        let client_cpu = procs::cpu_seconds(me) - client_cpu;
        let shared_after = shared_switches();
        let server_switches_after = streams.each_ref().map(server_switches);
        // (The counter endpoint is not an API call: it does not count itself.)
        let kasm_after = self.kasm_requests().await;
        let servers_after = streams.each_ref().map(server_cpu);
        let sim_cpu = self.sim.cpu() - sim_cpu;
        let recorded = samples.each_ref().map(|s| s.micros.clone());
        let all_calls = samples.iter().map(|s| s.micros.len()).sum::<usize>().max(1) as f64;
        let kasm_calls = kasm_after.saturating_sub(kasm_before) as f64;
        let [sim_switches, client_switches] =
            std::array::from_fn(|i| shared_after[i].saturating_sub(shared_before[i]) as f64);
        let rows = std::array::from_fn(|k| {
            let first_error = samples[k].first_error.clone();
            let summary = samples[k].summary();
            let calls = summary.calls.max(1) as f64;
            let server_switches =
                server_switches_after[k].saturating_sub(server_switches_before[k]) as f64;
            Row {
                name: streams[k].name.to_string(),
                role: streams[k].role,
                kasm_per_call: kasm_calls / all_calls,
                throughput: summary.calls as f64 / elapsed.as_secs_f64().max(1e-9),
                summary,
                server_cpu_us: (servers_after[k] - servers_before[k]) * 1e6 / calls,
                sim_cpu_us: sim_cpu * 1e6 / all_calls,
                client_cpu_us: client_cpu * 1e6 / all_calls,
                switches: [
                    server_switches / calls,
                    sim_switches / all_calls,
                    client_switches / all_calls,
                ],
                load: load.clone(),
                first_error,
            }
        });
        (rows, recorded)
    }

    /// A closed-loop phase of `call` to kasm-mcp, measured after a warm-up.
    async fn closed(&self, name: &str, role: &'static str, call: Call) -> Row {
        self.closed_on(Some(&self.server), name, role, call).await
    }

    /// A closed-loop phase of `call` (served by `server`, `None` for the direct call),
    /// measured after a warm-up.
    async fn closed_on(
        &self,
        server: Option<&Proc>,
        name: &str,
        role: &'static str,
        call: Call,
    ) -> Row {
        self.measured_on(server, name, role, Some(&call), || {
            self.closed_loop(call.clone())
        })
        .await
    }

    /// The paired open loop (`paired.rs`): each `(server, name, role, call)` at `--rate`,
    /// interleaved on one schedule over one window, after a warm-up of each. Returns the rows
    /// and each stream's latencies (µs) in tick order.
    async fn open_paired<const N: usize>(
        &self,
        streams: [(Option<&Proc>, &str, &'static str, &Call); N],
    ) -> ([Row; N], [Vec<u64>; N], Samples) {
        let calls = streams.map(|(.., call)| call.clone());
        let specs = streams.map(|(server, name, role, call)| Stream {
            server,
            name,
            role,
            warm_up: Some(call),
        });
        let (rate, duration) = (self.args.rate, self.args.duration);
        let lateness = std::sync::Mutex::new(Vec::new());
        let (rows, recorded) = self
            .measured_many(specs, || {
                paired::run(&self.http, &calls, rate, duration, &lateness)
            })
            .await;
        let pacer = Samples {
            micros: lateness.into_inner().unwrap_or_default(),
            ..Samples::default()
        };
        (rows, recorded, pacer)
    }

    /// Every client sends `call` a few times, unrecorded.
    async fn warm_up(&self, call: &Call) {
        let warm: Vec<_> = (0..self.args.clients)
            .map(|_| {
                let (call, http) = (call.clone(), self.http.clone());
                tokio::spawn(async move {
                    for _ in 0..4 {
                        let _ = call.send(&http).await;
                    }
                })
            })
            .collect();
        for w in warm {
            let _ = w.await;
        }
    }

    /// N clients, each sending `call` back to back for the phase's duration.
    async fn closed_loop(&self, call: Call) -> (Samples, Duration) {
        let duration = Duration::from_secs_f64(self.args.duration);
        let started = Instant::now();
        let deadline = started + duration;
        let workers: Vec<_> = (0..self.args.clients)
            .map(|_| {
                let (call, http) = (call.clone(), self.http.clone());
                tokio::spawn(async move {
                    let mut samples = Samples::default();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let outcome = call.send(&http).await;
                        samples.record(t.elapsed(), outcome);
                    }
                    samples
                })
            })
            .collect();
        let mut all = Samples::default();
        for w in workers {
            if let Ok(s) = w.await {
                all.merge(s);
            }
        }
        (all, started.elapsed())
    }

    /// N legacy `/sse` sessions (admin), each calling `get_session_status` back to back.
    async fn sse_loop(&self, tokens: Vec<String>) -> (Samples, Duration) {
        let duration = Duration::from_secs_f64(self.args.duration);
        let mut sessions = Vec::new();
        let mut failed = Samples::default();
        for i in 0..self.args.clients {
            match LegacySession::open(&self.http, &self.base, &tokens[i % tokens.len()]).await {
                Ok(s) => sessions.push(s),
                Err(e) => failed.record(Duration::ZERO, Err(e)),
            }
        }
        let started = Instant::now();
        let deadline = started + duration;
        let kasm_id = self.kasm_id.clone();
        let workers: Vec<_> = sessions
            .into_iter()
            .map(|mut session| {
                let http = self.http.clone();
                let body = tool_call("get_session_status", json!({"kasm_id": kasm_id}));
                tokio::spawn(async move {
                    let mut samples = Samples::default();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let outcome = session.request(&http, body.clone()).await;
                        let stop = outcome.is_err();
                        samples.record(t.elapsed(), outcome);
                        if stop {
                            break;
                        }
                    }
                    samples
                })
            })
            .collect();
        for w in workers {
            if let Ok(s) = w.await {
                failed.merge(s);
            }
        }
        (failed, started.elapsed())
    }

    /// Sequential `execute_kasm_command true` on the benchmark session.
    async fn exec_runs(&self) -> (Samples, Duration) {
        let call = self.mcp(
            OPERATOR,
            tool_call(
                "execute_kasm_command",
                json!({"kasm_id": self.kasm_id, "command": "true"}),
            ),
        );
        let started = Instant::now();
        let mut samples = Samples::default();
        for _ in 0..self.args.exec_runs {
            let t = Instant::now();
            let outcome = call.send(&self.http).await;
            samples.record(t.elapsed(), outcome);
        }
        (samples, started.elapsed())
    }

    /// Create `n` running sessions of a new Kasm user, directly in Kasm.
    async fn seed_other_sessions(&self, n: u32) -> Result<(), String> {
        let user = self
            .kasm(
                "create_user",
                json!({"target_user": {"username": "load-other@example.com"}}),
            )
            .await?;
        let user_id = user["user"]["user_id"]
            .as_str()
            .ok_or("create_user returned no user_id")?
            .to_string();
        let results: Vec<Result<Value, String>> = {
            use futures::StreamExt;
            futures::stream::iter(0..n)
                .map(|_| self.kasm("request_kasm", json!({"user_id": user_id})))
                .buffer_unordered(8)
                .collect()
                .await
        };
        results.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }
}

fn print_row(row: &Row, limit: Option<f64>) {
    let ratio = limit
        .filter(|l| *l > 0.0)
        .map(|l| format!("{:.2}×", row.throughput / l))
        .unwrap_or_else(|| "—".into());
    let s = &row.summary;
    // NaN: not measured for this row.
    let or_dash = |v: f64, digits: usize| {
        if v.is_nan() {
            "—".to_string()
        } else {
            format!("{v:.digits$}")
        }
    };
    println!(
        "| {} | {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {} |",
        row.name,
        row.role,
        or_dash(row.kasm_per_call, 2),
        row.throughput,
        ratio,
        s.p50,
        s.p90,
        s.p99,
        s.max,
        s.errors,
        or_dash(row.server_cpu_us, 0),
        or_dash(row.sim_cpu_us, 0),
        or_dash(row.client_cpu_us, 0),
        row.load
    );
    if let Some(e) = &row.first_error {
        eprintln!("  first error of {}: {e}", row.name);
    }
}

/// Under a paired open-loop table (`rows[0]` the direct call): what the shared columns
/// mean, each other stream's added latency over the direct call, from the same window, the
/// pacer's lateness and the wake-ups per call.
fn print_paired(rate: u32, rows: &[&Row], recorded: &[Vec<u64>], mut pacer: Samples) {
    let n = rows.len();
    println!(
        "\npaired: the {n} streams ran on one schedule over the same window, interleaved (stream k starts k/{n} of a period after the direct call), each timed from its intended start. Server CPU is per call of its own stream; Kasm req/call, sim CPU, load-gen CPU (and their wake-ups) cover all {n} streams (the simulator and this program serve them at once), per call over all of them."
    );
    let (Some(direct), Some(base)) = (rows.first(), recorded.first()) else {
        return;
    };
    for (k, (row, ours)) in rows.iter().zip(recorded).enumerate().skip(1) {
        // A failed or lost call's time is not a latency: with errors in the window the
        // per-tick differences would count them, so they are not printed.
        let errors = row.summary.errors + direct.summary.errors;
        let per_tick = match paired::differences_ms(ours, base) {
            _ if errors > 0 => format!("— ({errors} failed calls in the window)"),
            None => "—".to_string(),
            Some(d) => format!(
                "p50 {:+.3} ms, p90 {:+.3} ms, p99 {:+.3} ms",
                d.p50, d.p90, d.p99
            ),
        };
        println!(
            "added latency over the direct call at {rate} calls/s, paired (same window, interleaved, +{k}/{n} period), {}: p50 {:+.3} ms, p99 {:+.3} ms; per-tick differences (its call − the direct call of the same tick): {per_tick}",
            row.name,
            row.summary.p50 - direct.summary.p50,
            row.summary.p99 - direct.summary.p99,
        );
    }
    if pacer.micros.is_empty() {
        println!("pacer: — (its lateness was not recorded)");
    } else {
        let late = pacer.summary();
        println!(
            "pacer: each call handed to the runtime after its intended start by p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (inside every stream's latency alike)",
            late.p50, late.p99, late.max
        );
    }
    println!(
        "wake-ups per call (voluntary context switches of all threads: server / simulator / load generator; the last two over all {n} streams):"
    );
    for row in rows {
        let [server, sim, client] = row.switches;
        println!("  {}: {server:.2} / {sim:.2} / {client:.2}", row.name);
    }
}

fn header(title: &str) {
    println!("\n{title}\n");
    println!(
        "| workload | role | Kasm req/call | calls/s | vs direct | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/call | sim CPU µs/call | load-gen CPU µs/call | load avg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

async fn run(args: Args) -> Result<u64, String> {
    kasm_mcp::launch::raise_fd_limit();
    let bin = procs::kasm_mcp_binary()?;
    let dir = TempDir::new()?;
    let (sim, sim_info) = procs::start_simulator(&bin, args.other_sessions + 8).await?;
    let port = procs::free_port().map_err(|e| e.to_string())?;
    let tokens = stream_tokens();
    let server = procs::start_server(
        &bin,
        &sim_info,
        &config_toml(port, &tokens, args.sse_streams),
        dir.path(),
        port,
        &args.server_log,
        &args.server_env,
    )
    .await?;
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{port}");
    let mut bench = Bench {
        args: args.clone(),
        http,
        sim,
        sim_info,
        server,
        base,
        kasm_id: String::new(),
    };
    let mut errors = 0u64;
    println!(
        "machine: {} cores, {}; kasm-mcp {}; {} clients, {:.1} s per phase{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string()))
            .unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
        args.clients,
        args.duration,
        if args.quick {
            " (--quick smoke run: figures meaningless)"
        } else {
            ""
        },
    );
    println!("load average at start: {}", loadavg());
    println!(
        "scheduling (this program and its children): {}",
        rt::policy()
    );
    println!("server log filter (RUST_LOG): {}", args.server_log);
    if !args.server_env.is_empty() {
        let pairs: Vec<String> = args
            .server_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("server environment: {}", pairs.join(" "));
    }

    // ---- idle cost: RSS on a fresh server here, per open connection at the end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = bench.server.rss();
    let (anon, file) = bench.server.rss_split();
    println!(
        "\nserver RSS idle at start: {idle_rss} KiB ({:.1} MiB; anonymous {anon} KiB, file-backed {file} KiB)",
        idle_rss as f64 / 1024.0
    );
    // ---- one running session of the default user, created through the server.
    let created = bench
        .http
        .post(format!("{}/mcp", bench.base))
        .bearer_auth(OPERATOR)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&tool_call(
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json::<Value>()
        .await
        .map_err(|e| e.to_string())?;
    bench.kasm_id = created["result"]["structuredContent"]["kasm_id"]
        .as_str()
        .ok_or_else(|| format!("create_kasm_session failed: {created}"))?
        .to_string();

    let status_args = json!({"kasm_id": bench.kasm_id});
    if args.runs(Phase::Floor) || args.runs(Phase::FloorOpen) {
        errors += floor_phase(&bench, &status_args, args.runs(Phase::Floor)).await?;
    }
    for phase in ["", " (+ other sessions)"] {
        let wanted = if phase.is_empty() {
            Phase::Closed
        } else {
            Phase::Large
        };
        if !args.runs(wanted) {
            continue;
        }
        if !phase.is_empty() {
            let started = Instant::now();
            bench.seed_other_sessions(args.other_sessions).await?;
            println!(
                "\ncreated {} sessions of another user in Kasm in {:.1} s",
                args.other_sessions,
                started.elapsed().as_secs_f64()
            );
        }
        header(&format!(
            "closed loop, {} clients{}",
            args.clients,
            if phase.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} more sessions of another user in Kasm",
                    args.other_sessions
                )
            }
        ));
        let direct = bench
            .closed_on(
                None,
                &format!("direct Kasm get_kasm_status{phase}"),
                "—",
                bench.direct_status(),
            )
            .await;
        let direct_rate = direct.throughput;
        print_row(&direct, None);
        errors += direct.summary.errors;
        let mut rows = Vec::new();
        if phase.is_empty() {
            for method in ["ping", "tools/list"] {
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": method});
                rows.push(bench.closed(method, "admin", bench.mcp(ADMIN, body)).await);
            }
        }
        for (role, token) in [("admin", ADMIN), ("operator", OPERATOR)] {
            let body = tool_call("get_session_status", status_args.clone());
            let name = format!("get_session_status /mcp{phase}");
            rows.push(bench.closed(&name, role, bench.mcp(token, body)).await);
        }
        if phase.is_empty() {
            let sse_tokens: Vec<String> = tokens.clone();
            rows.push(
                bench
                    .measured("get_session_status /sse", "viewer", None, || {
                        bench.sse_loop(sse_tokens)
                    })
                    .await,
            );
        }
        for row in &rows {
            print_row(row, Some(direct_rate));
            errors += row.summary.errors;
        }
    }
    let rss_after = bench.server.rss();
    println!(
        "\nserver RSS after the closed-loop phases: {rss_after} KiB ({:.1} MiB)",
        rss_after as f64 / 1024.0
    );

    if args.runs(Phase::Python) {
        errors += python_phase(&bench, &status_args).await?;
    }

    // ---- open loop: added latency at a constant rate.
    if args.runs(Phase::Open) {
        header(&format!(
            "open loop, paired: direct call and get_session_status at {} calls/s each, interleaved on one schedule (latency from the intended start)",
            args.rate
        ));
        let (direct_call, tool) = (
            bench.direct_status(),
            bench.mcp(ADMIN, tool_call("get_session_status", status_args.clone())),
        );
        let ([direct, tool], recorded, pacer) = bench
            .open_paired([
                (None, "direct Kasm get_kasm_status", "—", &direct_call),
                (
                    Some(&bench.server),
                    "get_session_status /mcp",
                    "admin",
                    &tool,
                ),
            ])
            .await;
        print_row(&direct, None);
        print_row(&tool, Some(direct.throughput));
        errors += direct.summary.errors + tool.summary.errors;
        print_paired(args.rate, &[&direct, &tool], &recorded, pacer);
    }

    // ---- relay round trip.
    if args.runs(Phase::Relay) {
        header("relay round trip, sequential");
        let exec = bench
            .measured("execute_kasm_command `true`", "operator", None, || {
                bench.exec_runs()
            })
            .await;
        print_row(&exec, None);
        errors += exec.summary.errors;
    }

    if args.runs(Phase::Soak) {
        errors += soak_phase(&bench).await;
    }

    let rss_end = bench.server.rss();
    println!(
        "\nserver RSS after the load: {rss_end} KiB ({:.1} MiB)",
        rss_end as f64 / 1024.0
    );

    // ---- idle connections last, each kind on a fresh server of its own: an allocator keeps
    // (and reuses) what earlier work freed, which would hide part of the cost.
    println!();
    let idle_phases = if args.runs(Phase::Idle) {
        vec![
            (idle::Kind::Sse, args.sse_streams, tokens.clone()),
            (
                idle::Kind::Mcp,
                args.mcp_connections,
                vec![ADMIN.to_string()],
            ),
        ]
    } else {
        Vec::new()
    };
    for (kind, count, token_list) in idle_phases {
        let port = procs::free_port().map_err(|e| e.to_string())?;
        let fresh = procs::start_server(
            &bin,
            &bench.sim_info,
            &config_toml(port, &tokens, args.sse_streams),
            dir.path(),
            port,
            &args.server_log,
            &args.server_env,
        )
        .await?;
        let addr = format!("127.0.0.1:{port}");
        if matches!(kind, idle::Kind::Mcp) {
            match idle::get_mcp_status(&addr, ADMIN).await {
                Ok(405) => println!(
                    "GET /mcp: 405, no standalone /mcp SSE stream exists; an idle /mcp client holds only its keep-alive connection, which is what the next line measures"
                ),
                Ok(code) => println!(
                    "GET /mcp: {code}: the server may now offer standalone /mcp streams, which the next line does NOT measure (it holds keep-alive connections)"
                ),
                Err(e) => println!("GET /mcp failed: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = fresh.rss();
        let started = Instant::now();
        let (streams, error) = idle::open_many(kind, &addr, &token_list, count).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = fresh.rss();
        let open = streams.len();
        let per = if open > 0 {
            (after.saturating_sub(before)) as f64 / open as f64
        } else {
            0.0
        };
        println!(
            "idle {} (fresh server): {open}/{count} open in {:.1} s; server RSS {before} → {after} KiB: {per:.1} KiB per open {}{}",
            kind.label(),
            started.elapsed().as_secs_f64(),
            kind.unit(),
            error
                .map(|e| format!(" (first refusal: {e})"))
                .unwrap_or_default()
        );
        drop(streams);
        drop(fresh);
    }

    println!("load average at the end: {}", loadavg());
    drop(bench);
    Ok(errors)
}

/// kasm-mcp and the FastMCP implementation of `get_session_status`, closed loop, one after
/// the other against the same simulator; returns the errors.
async fn python_phase(bench: &Bench, status_args: &Value) -> Result<u64, String> {
    let script = std::path::Path::new("bench/fastmcp_status.py");
    if !bench.args.python.is_file() || !script.is_file() {
        println!(
            "\nPython SDK comparison skipped: {} or {} is missing (run from the repository root after scripts/setup-test-deps.sh)",
            bench.args.python.display(),
            script.display()
        );
        return Ok(0);
    }
    let port = procs::free_port().map_err(|e| e.to_string())?;
    let python = procs::start_python(&bench.args.python, script, &bench.sim_info, port).await?;
    header(&format!(
        "official Python SDK (FastMCP) vs kasm-mcp, closed loop, {} clients",
        bench.args.clients
    ));
    let body = tool_call("get_session_status", status_args.clone());
    let ours = bench
        .closed(
            "get_session_status /mcp (kasm-mcp)",
            "admin",
            bench.mcp(ADMIN, body.clone()),
        )
        .await;
    print_row(&ours, None);
    let call = Call::Mcp {
        url: format!("http://127.0.0.1:{port}/mcp"),
        token: ADMIN.to_string(),
        body: body.to_string().into(),
    };
    // The server column is the Python process here.
    let theirs = bench
        .closed_on(
            Some(&python),
            "get_session_status /mcp (FastMCP)",
            "—",
            call,
        )
        .await;
    print_row(&theirs, None);
    println!(
        "\nkasm-mcp / FastMCP throughput: {:.1}× (server CPU per call {:.0} µs vs {:.0} µs)",
        ours.throughput / theirs.throughput.max(1e-9),
        ours.server_cpu_us,
        theirs.server_cpu_us
    );
    Ok(ours.summary.errors + theirs.summary.errors)
}

/// The floor: the direct call, the floor proxy (`floor.rs`) and kasm-mcp's admin
/// `get_session_status`, closed loop (one after the other; with `closed`) then the paired
/// open loop (the three interleaved on one schedule), against the same simulator, and the
/// arithmetic of CPU per call; returns the errors.
async fn floor_phase(bench: &Bench, status_args: &Value, closed: bool) -> Result<u64, String> {
    let (proxy, proxy_url) =
        procs::start_floor_proxy(&bench.sim_info, &bench.args.server_env).await?;
    let floor_call = Call::Direct {
        url: format!("{proxy_url}/status"),
        body: json!({"kasm_id": bench.kasm_id, "user_id": bench.sim_info.user_id})
            .to_string()
            .into(),
    };
    let tool = bench.mcp(ADMIN, tool_call("get_session_status", status_args.clone()));
    let mut errors = 0;
    if closed {
        errors += floor_closed(bench, &proxy, &floor_call, &tool).await;
    }
    header(&format!(
        "floor, open loop, paired: the three at {} calls/s each, interleaved on one schedule (latency from the intended start)",
        bench.args.rate
    ));
    let direct_call = bench.direct_status();
    let ([direct_open, floor_open, ours_open], recorded, pacer) = bench
        .open_paired([
            (None, "direct Kasm get_kasm_status", "—", &direct_call),
            (Some(&proxy), FLOOR, "—", &floor_call),
            (Some(&bench.server), TOOL, "admin", &tool),
        ])
        .await;
    print_row(&direct_open, None);
    for row in [&floor_open, &ours_open] {
        print_row(row, Some(direct_open.throughput));
    }
    print_paired(
        bench.args.rate,
        &[&direct_open, &floor_open, &ours_open],
        &recorded,
        pacer,
    );
    for row in [&direct_open, &floor_open, &ours_open] {
        errors += row.summary.errors;
    }
    drop(proxy);
    Ok(errors)
}

const FLOOR: &str = "floor proxy (axum + reqwest, no MCP) → get_kasm_status";
const TOOL: &str = "get_session_status /mcp";

/// The closed loop of the floor phase, with the CPU arithmetic; returns the errors.
async fn floor_closed(bench: &Bench, proxy: &Proc, floor_call: &Call, tool: &Call) -> u64 {
    header(&format!(
        "floor: the same Kasm call direct, through a minimal proxy and through kasm-mcp (closed loop, {} clients)",
        bench.args.clients
    ));
    let direct = bench
        .closed_on(
            None,
            "direct Kasm get_kasm_status",
            "—",
            bench.direct_status(),
        )
        .await;
    let floor = bench
        .closed_on(Some(proxy), FLOOR, "—", floor_call.clone())
        .await;
    let ours = bench.closed(TOOL, "admin", tool.clone()).await;
    print_row(&direct, None);
    for row in [&floor, &ours] {
        print_row(row, Some(direct.throughput));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "
CPU per call (µs): load generator + server + simulator = sum → {cores:.0} cores / sum = predicted calls/s (measured)"
    );
    let sum = |row: &Row| {
        [row.client_cpu_us, row.server_cpu_us, row.sim_cpu_us]
            .iter()
            .filter(|v| v.is_finite())
            .sum::<f64>()
    };
    for row in [&direct, &floor, &ours] {
        let server = if row.server_cpu_us.is_finite() {
            format!("{:.0}", row.server_cpu_us)
        } else {
            "0".to_string()
        };
        println!(
            "  {}: {:.0} + {server} + {:.0} = {:.0} → {:.0}/s ({:.0}/s)",
            row.name,
            row.client_cpu_us,
            row.sim_cpu_us,
            sum(row),
            cores * 1e6 / sum(row).max(1e-9),
            row.throughput
        );
    }
    println!(
        "a server that costs no more than the floor reaches {:.2}× the direct call here by CPU ({:.2}× measured); kasm-mcp by CPU {:.2}× ({:.2}× measured). kasm-mcp over the floor: server {:+.0} µs/call, load generator (the MCP client side) {:+.0} µs/call",
        sum(&direct) / sum(&floor).max(1e-9),
        floor.throughput / direct.throughput.max(1e-9),
        sum(&direct) / sum(&ours).max(1e-9),
        ours.throughput / direct.throughput.max(1e-9),
        ours.server_cpu_us - floor.server_cpu_us,
        ours.client_cpu_us - floor.client_cpu_us
    );
    println!(
        "closed-loop wake-ups per call (voluntary context switches of all threads: server / simulator / load generator):"
    );
    for row in [&direct, &floor, &ours] {
        let [server, sim, client] = row.switches;
        println!("  {}: {server:.2} / {sim:.2} / {client:.2}", row.name);
    }
    [&direct, &floor, &ours]
        .iter()
        .map(|row| row.summary.errors)
        .sum()
}

/// The mixed soak; returns the errors.
async fn soak_phase(bench: &Bench) -> u64 {
    let duration = Duration::from_secs_f64(bench.args.soak_seconds);
    println!(
        "\nmixed soak, {} clients, {:.0} s: rounds of {} status calls, one execute_kasm_command `true`, one write_kasm_file + read_kasm_file (operator; at most {} relay calls at once)",
        bench.args.clients,
        duration.as_secs_f64(),
        soak::STATUS_PER_ROUND,
        soak::RELAY_AT_ONCE
    );
    let rounds: Vec<soak::Round> = (0..bench.args.clients)
        .map(|i| soak::Round::new(|body| bench.mcp(OPERATOR, body), &bench.kasm_id, i))
        .collect();
    let sample_every = Duration::from_secs_f64((duration.as_secs_f64() / 30.0).max(0.2));
    let rss_before = bench.server.rss();
    let (server_cpu, sim_cpu) = (bench.server.cpu(), bench.sim.cpu());
    let mut report = soak::run(&bench.http, rounds, duration, sample_every, || {
        bench.server.rss()
    })
    .await;
    header("soak (latency over the whole soak)");
    let mut errors = 0;
    for (name, samples) in [
        ("soak get_session_status", &mut report.status),
        ("soak execute_kasm_command `true`", &mut report.exec),
        ("soak write + read 40-byte file", &mut report.files),
    ] {
        let first_error = samples.first_error.clone();
        let summary = samples.summary();
        errors += summary.errors;
        print_row(
            &Row {
                name: name.to_string(),
                role: "operator",
                kasm_per_call: f64::NAN,
                throughput: summary.calls as f64 / duration.as_secs_f64(),
                summary,
                server_cpu_us: f64::NAN,
                sim_cpu_us: f64::NAN,
                client_cpu_us: f64::NAN,
                switches: [f64::NAN; 3],
                load: loadavg(),
                first_error,
            },
            None,
        );
    }
    let calls =
        (report.status.micros.len() + report.exec.micros.len() + 2 * report.files.micros.len())
            .max(1) as f64;
    println!(
        "\nsoak CPU over all {calls:.0} tool calls: server {:.0} µs/call, simulator {:.0} µs/call",
        (bench.server.cpu() - server_cpu) * 1e6 / calls,
        (bench.sim.cpu() - sim_cpu) * 1e6 / calls
    );
    let rss: Vec<String> = report
        .rss
        .iter()
        .map(|(t, kib)| format!("{t:.0}s:{:.1}", *kib as f64 / 1024.0))
        .collect();
    let half = report.rss.len() / 2;
    println!(
        "\nsoak RSS (MiB) before {:.1}; samples {}\nsoak RSS trend: {:+.0} KiB/min over the whole soak, {:+.0} KiB/min over its second half",
        rss_before as f64 / 1024.0,
        rss.join(" "),
        soak::rss_slope_kib_per_min(&report.rss),
        soak::rss_slope_kib_per_min(&report.rss[half..])
    );
    errors
}

fn main() -> std::process::ExitCode {
    let args = Args::parse().effective();
    if let Some(Command::FloorProxy { backend }) = args.command {
        // The product's runtime (`kasm-mcp serve` runs on the same one).
        let served = kasm_mcp::launch::run_async("floor-proxy", floor::serve(backend));
        return if served.is_some() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        };
    }
    if let Some(refusal) = args.rt_refusal() {
        eprintln!("{refusal}");
        return std::process::ExitCode::from(2);
    }
    if let Some(code) = rt::reexec_under_chrt(args.rt) {
        return code;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kasm-mcp-load: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("kasm-mcp-load: {errors} calls failed (see the errors column)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("kasm-mcp-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(argv: &[&str]) -> Args {
        Args::parse_from(std::iter::once("kasm-mcp-load").chain(argv.iter().copied()))
    }

    #[test]
    fn rt_runs_only_the_light_phases() {
        assert_eq!(parsed(&["--phases", "closed"]).rt_refusal(), None);
        assert_eq!(
            parsed(&["--rt", "20", "--phases", "open,floor-open,relay"]).rt_refusal(),
            None
        );
        let refusal = parsed(&["--rt", "20"]).rt_refusal().unwrap_or_default();
        for heavy in ["closed", "floor", "large", "python", "idle"] {
            assert!(refusal.contains(heavy), "{refusal}");
        }
        let soak = parsed(&["--rt", "20", "--phases", "relay,soak"]).rt_refusal();
        assert!(soak.is_some_and(|r| r.ends_with("(asked for: soak)")));
    }
}
