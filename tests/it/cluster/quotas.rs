//! Caps across replicas: the `[quotas]` concurrency caps are leases in Redis, so two replicas
//! together allow the configured figure, and a crashed replica's slots come back after one
//! lease time; `quotas.max_sessions` is one count in Redis (created on one replica, destroyed
//! through another); the relay's per-ticket attempt limit and the legacy `/sse` stream caps
//! are counted over every replica too.

use std::time::{Duration, Instant};

use std::sync::Arc;

use axum::body::Body;
use kasm_mcp::cluster::{Cluster, Leases, SessionCount};
use kasm_mcp::config::{ClusterConfig, RelayLimitsConfig, TokenConfig};
use kasm_mcp::relay::{KEY_HEADER, Purpose, Relay, RelayOptions, TicketBinding};
use kasm_mcp::tokens::sha256_hex;
use reqwest::StatusCode;
use serde_json::json;
use tower::ServiceExt;

use super::{Pair, RedisServer};
use crate::tasks::{processes_with, unique_sleep};

fn cluster(redis: &RedisServer, replica: &str) -> Cluster {
    let config = ClusterConfig {
        redis_url: Some(redis.url().into()),
        replica_id: Some(replica.into()),
        ..ClusterConfig::default()
    };
    Cluster::start(&config).unwrap().unwrap()
}

#[tokio::test]
async fn leases_hold_one_global_cap_and_a_crashed_replicas_slot_expires() {
    let redis = RedisServer::start();
    const LEASE: Duration = Duration::from_millis(600);
    let x = cluster(&redis, "lease-x");
    let y = cluster(&redis, "lease-y");
    let (on_x, on_y) = (Leases::new(x.clone(), LEASE), Leases::new(y, LEASE));

    let held = on_x.take(&["exec", "p"], 1).await.unwrap().expect("free");
    assert!(
        on_y.take(&["exec", "p"], 1).await.unwrap().is_none(),
        "one global slot"
    );
    assert!(
        on_y.take(&["exec", "q"], 1).await.unwrap().is_some(),
        "per name"
    );
    // Renewed while held: still taken after three lease times.
    tokio::time::sleep(LEASE * 3).await;
    assert!(
        on_y.take(&["exec", "p"], 1).await.unwrap().is_none(),
        "renewed"
    );
    // Dropped: given back at once.
    drop(held);
    let started = Instant::now();
    let again = loop {
        if let Some(lease) = on_y.take(&["exec", "p"], 1).await.unwrap() {
            break lease;
        }
        assert!(
            started.elapsed() < LEASE / 2,
            "the dropped lease was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(again);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A replica that dies while holding a slot (no drop, no renewal): the slot expires.
    let orphan = on_x
        .take(&["exec", "p"], 1)
        .await
        .unwrap()
        .expect("free again");
    x.stop();
    std::mem::forget(orphan);
    assert!(on_y.take(&["exec", "p"], 1).await.unwrap().is_none());
    let started = Instant::now();
    loop {
        if on_y.take(&["exec", "p"], 1).await.unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < LEASE * 2,
            "the dead replica's slot never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_replicas_enforce_one_max_concurrent_exec() {
    let pair = Pair::start_with(|c| c.quotas.max_concurrent_exec = Some(1)).await;
    let kasm_id = pair.session(&pair.a).await;
    let marker = unique_sleep(3);
    let long = {
        let (url, kasm_id, marker) = (pair.a.base_url(), kasm_id.clone(), marker.clone());
        let http = pair.http.clone();
        tokio::spawn(async move {
            http.post(format!("{url}/mcp"))
                .bearer_auth(super::TOKEN)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "execute_kasm_command",
                    "arguments": {"kasm_id": kasm_id, "command": format!("sleep {marker}; echo first")}}}))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    let started = Instant::now();
    while processes_with(&marker).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the first command never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A holds the only exec slot: B refuses, naming the cap.
    let (_, refused) = pair
        .call_raw(
            &pair.b,
            "execute_kasm_command",
            json!({"kasm_id": kasm_id, "command": "echo second"}),
        )
        .await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("quotas.max_concurrent_exec"), "{refused}");
    assert!(text.contains("every replica"), "{refused}");
    let first = long.await.unwrap();
    assert!(first.contains("first"), "{first}");
    // The slot is back: B runs its command now.
    let started = Instant::now();
    loop {
        let (_, answer) = pair
            .call_raw(
                &pair.b,
                "execute_kasm_command",
                json!({"kasm_id": kasm_id, "command": "echo second"}),
            )
            .await;
        if answer["result"]["isError"] == false {
            assert_eq!(
                answer["result"]["structuredContent"]["stdout"], "second\n",
                "{answer}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot never came back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pair.sim.shutdown().await;
}

#[tokio::test]
async fn two_replicas_enforce_one_max_sessions_and_a_destroy_through_either_frees_it() {
    let pair = Pair::start_with(|c| c.quotas.max_sessions = Some(1)).await;
    let first = pair.session(&pair.a).await;
    // A created the only session the cap allows: B refuses, naming the cap.
    let (status, refused) = pair
        .call_raw(
            &pair.b,
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("quotas.max_sessions") && text.contains("every replica"),
        "{refused}"
    );
    // And so does A.
    let (_, again) = pair
        .call_raw(
            &pair.a,
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        )
        .await;
    assert_eq!(again["result"]["isError"], true, "{again}");
    // Destroyed through B (which did not create it): A may create one again, and only one.
    pair.call(&pair.b, "destroy_kasm_session", json!({"kasm_id": first}))
        .await;
    let second = pair.session(&pair.a).await;
    let (_, over) = pair
        .call_raw(
            &pair.b,
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        )
        .await;
    assert_eq!(over["result"]["isError"], true, "{over}");
    pair.call(&pair.a, "destroy_kasm_session", json!({"kasm_id": second}))
        .await;
    let third = pair.session(&pair.b).await;
    pair.call(&pair.b, "destroy_kasm_session", json!({"kasm_id": third}))
        .await;
    pair.sim.shutdown().await;
}

#[tokio::test]
async fn a_session_creation_on_a_crashed_replica_gives_its_slot_back() {
    let redis = RedisServer::start();
    const LEASE: Duration = Duration::from_millis(600);
    let x = cluster(&redis, "create-x");
    let y = cluster(&redis, "create-y");
    let on_x = SessionCount::new(Leases::new(x.clone(), LEASE));
    let on_y = SessionCount::new(Leases::new(y, LEASE));

    // A created session counts until it is forgotten, on whichever replica.
    let creating = on_x.take("p", 2).await.unwrap().expect("free");
    on_x.commit(creating, "k1").await.unwrap();
    let held = on_y.take("p", 2).await.unwrap().expect("one left");
    assert!(
        on_x.take("p", 2).await.unwrap().is_none(),
        "k1 + one creating"
    );
    drop(held); // a failed creation gives its slot back at once
    let started = Instant::now();
    while on_x.take("p", 2).await.unwrap().is_none() {
        assert!(
            started.elapsed() < LEASE / 2,
            "a failed creation kept its slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(on_y.forget("k1").await.unwrap(), "k1 was counted");
    assert!(!on_y.forget("k1").await.unwrap(), "forgotten once");
    tokio::time::sleep(Duration::from_millis(100)).await;

    // x dies in the middle of a creation (no drop, no renewal): the slot expires.
    let orphan = on_x.take("p", 1).await.unwrap().expect("free");
    x.stop();
    std::mem::forget(orphan);
    assert!(on_y.take("p", 1).await.unwrap().is_none(), "still creating");
    let started = Instant::now();
    loop {
        if on_y.take("p", 1).await.unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < LEASE * 2,
            "the dead replica's creation never gave its slot back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_relay_tickets_attempt_limit_holds_over_two_replicas() {
    let redis = RedisServer::start();
    let relay = |replica: &str| {
        Arc::new(Relay::new(RelayOptions {
            base_url: Some("http://127.0.0.1:1".into()),
            cluster: Some(cluster(&redis, replica)),
            ..RelayOptions::default()
        }))
    };
    let (x, y) = (relay("relay-x"), relay("relay-y"));
    const BURST: u32 = 3;
    let limits = RelayLimitsConfig {
        per_ticket_per_minute: 1,
        per_ticket_burst: BURST,
        ..RelayLimitsConfig::default()
    };
    let routes = [
        kasm_mcp::transport::relay::routes_with_limits(x.clone(), &limits),
        kasm_mcp::transport::relay::routes_with_limits(y.clone(), &limits),
    ];
    let binding = TicketBinding {
        principal: "p".into(),
        kasm_id: "k".into(),
        purpose: Purpose::ExecResult,
    };
    let ticket = x
        .expect_upload(binding, 100, Duration::from_secs(30))
        .await
        .unwrap();
    let post = |key: &str| {
        axum::http::Request::post(format!("/relay/{}", ticket.id()))
            .header(KEY_HEADER, key)
            .body(Body::from("x"))
            .unwrap()
    };
    // Wrong-key guesses spread over both replicas: the burst once, not once per replica.
    let mut statuses = Vec::new();
    for i in 0..2 * BURST {
        let app = routes[usize::try_from(i % 2).unwrap()].clone();
        statuses.push(app.oneshot(post("guess")).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [403, 403, 403, 429, 429, 429], "{statuses:?}");
    // The real key too is over the ticket's budget now, on either replica.
    let r = routes[1].clone().oneshot(post(ticket.key())).await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
}

/// A second and third principal for the stream caps.
const OTHER: &str = "cluster-other-token";
const THIRD: &str = "cluster-third-token";

fn more_principals(config: &mut kasm_mcp::config::Config) {
    for (name, token) in [("other", OTHER), ("third", THIRD)] {
        config.auth.tokens.push(TokenConfig {
            name: name.into(),
            sha256: sha256_hex(token).parse().unwrap(),
            role: "viewer".parse().unwrap(),
            kasm_user_id: None,
        });
    }
}

impl Pair {
    /// `GET /sse` on `base` with `token`: the status and, when 200, the open response.
    async fn sse(
        &self,
        base: &str,
        token: &str,
    ) -> (StatusCode, Option<reqwest::Response>, String) {
        let r = self
            .http
            .get(format!("{base}/sse"))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        let status = r.status();
        if status == StatusCode::OK {
            (status, Some(r), String::new())
        } else {
            (status, None, r.text().await.unwrap_or_default())
        }
    }
}

#[tokio::test]
async fn legacy_sse_caps_hold_over_replicas_and_a_killed_replicas_streams_come_back() {
    let pair = Pair::start_with(|c| {
        c.legacy_sse.max_streams = 2;
        c.legacy_sse.max_streams_per_principal = 1;
        more_principals(c);
    })
    .await;
    let (a, b) = (pair.a.base_url(), pair.b.base_url());
    let (status, first, _) = pair.sse(&a, super::TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    // The principal's one stream is on A: B refuses it another.
    let (status, _, text) = pair.sse(&b, super::TOKEN).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(
        text.contains("legacy_sse.max_streams_per_principal") && text.contains("every replica"),
        "{text}"
    );
    // Another principal takes the second of the two streams, on B.
    let (status, second, _) = pair.sse(&b, OTHER).await;
    assert_eq!(status, StatusCode::OK);
    // Two streams open over the two replicas: a third principal is refused on either.
    for base in [&a, &b] {
        let (status, _, text) = pair.sse(base, THIRD).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        assert!(text.contains("legacy_sse.max_streams"), "{text}");
    }
    // Closing a stream gives its slots back at once.
    drop(first);
    let started = Instant::now();
    let third = loop {
        let (status, open, _) = pair.sse(&b, THIRD).await;
        if status == StatusCode::OK {
            break open;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a closed stream kept its slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop((second, third));

    // A third replica, a real `kasm-mcp serve` process, holds the principal's stream and is
    // killed (SIGKILL): B admits the principal again once the dead stream's lease runs out.
    let mut killed = ServeProcess::start(&pair).await;
    let started = Instant::now();
    let held = loop {
        let (status, open, text) = pair.sse(&killed.url, super::TOKEN).await;
        if status == StatusCode::OK {
            break open;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the serve process refused a stream: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, _, text) = pair.sse(&b, super::TOKEN).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    killed.kill().await;
    let killed_at = Instant::now();
    let back = loop {
        let (status, open, _) = pair.sse(&b, super::TOKEN).await;
        if status == StatusCode::OK {
            break open;
        }
        // The lease is twice cluster.liveness_ttl_ms (1.5 s here).
        assert!(
            killed_at.elapsed() < Duration::from_secs(5),
            "the killed replica's stream never gave its slot back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop((held, back));
    pair.sim.shutdown().await;
}

/// `kasm-mcp serve` as its own process on the pair's Redis and simulator, same caps.
struct ServeProcess {
    child: tokio::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    async fn start(pair: &Pair) -> ServeProcess {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[server]\nport = 0\n\n[kasm]\napi_url = \"{}\"\nuser_id = \"{}\"\n\n\
             [legacy_sse]\nmax_streams = 2\nmax_streams_per_principal = 1\n\n\
             [cluster]\nredis_url = \"{}\"\nreplica_id = \"replica-killed\"\nliveness_ttl_ms = 1500\n\n\
             [[auth.tokens]]\nname = \"operator\"\nsha256 = \"{}\"\nrole = \"operator\"\n",
            pair.sim.base_url(),
            pair.sim.default_user_id(),
            pair.redis.url(),
            sha256_hex(super::TOKEN)
        );
        std::fs::write(dir.path().join("serve.toml"), config).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kasm-mcp"))
            .current_dir(dir.path())
            .env_clear()
            .env("RUST_LOG", "info")
            .env("KASM_API_KEY", pair.sim.api_key())
            .env("KASM_API_SECRET", pair.sim.api_secret())
            .args(["serve", "--config", "serve.toml"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(start) = line.find("http://127.0.0.1:") {
                    let url: String = line[start..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    if let Some(base) = url.strip_suffix("/mcp") {
                        return base.to_owned();
                    }
                }
            }
            panic!("serve exited before logging its URL");
        })
        .await
        .expect("serve logs its URL");
        // Keep reading its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServeProcess {
            child,
            url,
            _dir: dir,
        }
    }

    async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }
}

/// Records what reaches the tagged-upload sink.
struct Recorder(std::sync::Mutex<Vec<(String, Vec<u8>)>>);

#[async_trait::async_trait]
impl kasm_mcp::relay::TaggedUploads for Recorder {
    async fn chunk(&self, tag: &str, body: bytes::Bytes) -> bool {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((tag.to_owned(), body.to_vec()));
        }
        true
    }
    async fn result(
        &self,
        _tag: &str,
        _binding: &TicketBinding,
        _body: Result<bytes::Bytes, kasm_mcp::relay::UploadError>,
    ) {
    }
}

/// A tagged stream's chunks are stored before they are answered on every replica, the one
/// that holds the ticket included: a chunk queued there for its collector, behind one that
/// another replica stored at once, would reach the job store out of order (stdout and stderr
/// share one sequence) and be dropped as old.
#[tokio::test]
async fn a_tagged_streams_chunks_go_to_the_sink_on_the_replica_that_holds_the_ticket_too() {
    let redis = RedisServer::start();
    let relay = Arc::new(Relay::new(RelayOptions {
        base_url: Some("http://127.0.0.1:1".into()),
        cluster: Some(cluster(&redis, "tag-x")),
        ..RelayOptions::default()
    }));
    let recorder = Arc::new(Recorder(std::sync::Mutex::new(Vec::new())));
    relay.set_tagged(recorder.clone());
    let binding = TicketBinding {
        principal: "p".into(),
        kasm_id: "k".into(),
        purpose: Purpose::ExecStream,
    };
    let mut untagged = relay
        .open_stream(binding.clone(), 100, 4, Duration::from_secs(30))
        .await
        .unwrap();
    let mut stream = relay
        .open_stream(binding, 100, 4, Duration::from_secs(30))
        .await
        .unwrap();
    relay.tag(&[stream.id()], "job-1").await.unwrap();

    let sink = relay
        .begin_chunk(stream.id(), Some(stream.key()))
        .await
        .unwrap();
    assert!(
        sink.deliver(bytes::Bytes::from_static(b"one"))
            .await
            .unwrap()
    );
    assert_eq!(
        *recorder.0.lock().unwrap(),
        vec![("job-1".to_owned(), b"one".to_vec())],
        "stored through the sink before the answer"
    );
    assert!(stream.try_next().is_none(), "not also queued locally");

    // An untagged stream (a foreground call's) still feeds its own collector.
    let sink = relay
        .begin_chunk(untagged.id(), Some(untagged.key()))
        .await
        .unwrap();
    assert!(
        sink.deliver(bytes::Bytes::from_static(b"two"))
            .await
            .unwrap()
    );
    assert_eq!(untagged.try_next().as_deref(), Some(&b"two"[..]));
    assert_eq!(recorder.0.lock().unwrap().len(), 1);
}

/// A slot still in use whose lease Redis lost (a restart without persistence, or a stall
/// longer than the lease) is counted again at the holder's next renewal: otherwise a
/// long-lived holder (an open `/sse` stream) would stay uncounted for its whole life and the
/// cluster would admit up to twice the cap.
#[tokio::test]
async fn a_held_lease_that_redis_lost_is_counted_again_at_its_next_renewal() {
    let mut redis = RedisServer::start();
    const LEASE: Duration = Duration::from_millis(600);
    let x = cluster(&redis, "relost-x");
    let y = cluster(&redis, "relost-y");
    let (on_x, on_y) = (Leases::new(x, LEASE), Leases::new(y, LEASE));
    let held = on_x.take(&["sse", "p"], 1).await.unwrap().expect("free");
    redis.stop();
    redis.restart();
    let started = Instant::now();
    loop {
        match on_y.take(&["sse", "p"], 1).await {
            Ok(None) => break,
            Ok(Some(lease)) => drop(lease),
            Err(_) => {} // still reconnecting
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the held slot was never counted again after Redis lost it"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
}

/// A counted session that ended outside this server (Kasm's own expiry, its admin UI) while
/// no replica tracked it must not hold `quotas.max_sessions` for ever: at the cap, the
/// replica asks Kasm about the counted sessions and forgets the ones it no longer knows.
#[tokio::test]
async fn a_session_gone_from_kasm_behind_the_servers_back_does_not_hold_the_session_cap() {
    let pair = Pair::start_with(|c| c.quotas.max_sessions = Some(1)).await;
    let first = pair.session(&pair.a).await;
    // Destroyed straight through the Kasm API, not through any replica.
    let gone = pair
        .http
        .post(format!("{}/api/public/destroy_kasm", pair.sim.base_url()))
        .json(&json!({
            "api_key": pair.sim.api_key(),
            "api_key_secret": pair.sim.api_secret(),
            "kasm_id": first,
            "user_id": pair.sim.default_user_id(),
        }))
        .send()
        .await
        .unwrap();
    assert!(gone.status().is_success());
    // B never saw that session; it is still counted in Redis, yet B may create one.
    let (_, created) = pair
        .call_raw(
            &pair.b,
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        )
        .await;
    assert_eq!(created["result"]["isError"], false, "{created}");
    // And the cap still holds for the live one.
    let (_, over) = pair
        .call_raw(
            &pair.a,
            "create_kasm_session",
            json!({"image_name": "Terminal"}),
        )
        .await;
    assert_eq!(over["result"]["isError"], true, "{over}");
}
