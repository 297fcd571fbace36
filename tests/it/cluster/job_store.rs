//! The Redis `JobStore` itself, two instances ("replicas" A and B) on one real
//! `redis-server`: what one writes the other reads, the output window kept in Redis behaves
//! byte for byte as the in-memory `Window`, waiters on one replica wake on the other's
//! output, the running limit holds across replicas (also when they race), a kill request
//! turns the end into `killed`, a session's end reaches jobs started elsewhere, and records
//! expire with their TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kasm_mcp::cluster::Cluster;
use kasm_mcp::config::ClusterConfig;
use kasm_mcp::jobs::{
    Finish, JobError, JobId, JobRecord, JobState, JobStore, Owner, RedisJobs, Stream, Window,
};
use rand::{Rng, SeedableRng};

use super::RedisServer;

fn store(redis: &RedisServer, replica: &str, ttl: Duration, window: usize) -> (Cluster, RedisJobs) {
    let config = ClusterConfig {
        redis_url: Some(redis.url().into()),
        replica_id: Some(replica.into()),
        liveness_ttl_ms: 1_000,
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(&config).unwrap().unwrap();
    (cluster.clone(), RedisJobs::new(cluster, ttl, window))
}

async fn subscribed(cluster: &Cluster) {
    let started = Instant::now();
    while cluster.check().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "inbox never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn job(principal: &str, kasm_id: &str, deadline_in: Duration) -> JobRecord {
    let now = now_ms();
    JobRecord {
        id: JobId::random(),
        principal: principal.into(),
        kasm_id: kasm_id.into(),
        owner_user_id: Some("u1".into()),
        user: None,
        command: "sleep 1".into(),
        started_ms: now,
        ended_ms: None,
        deadline_ms: now + deadline_in.as_millis() as u64,
        state: JobState::Running,
        pgid: None,
        group: false,
        kill_requested: false,
        stdout_path: String::new(),
        stderr_path: String::new(),
        stdout: Window::default(),
        stderr: Window::default(),
        last_seq: None,
        finish: None,
        version: 0,
        replica: None,
    }
}

fn exited(code: i64) -> Finish {
    Finish {
        state: JobState::Exited,
        exit_code: Some(code),
        duration_ms: Some(5),
        incomplete: false,
        head_stdout: b"\x00head\xff".to_vec(),
        head_stderr: Vec::new(),
        note: None,
    }
}

const ALICE: Owner<'static> = Owner { principal: "alice" };
const BOB: Owner<'static> = Owner { principal: "bob" };
const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn two_replicas_share_jobs_through_redis() {
    let redis = RedisServer::start();
    let (ca, a) = store(&redis, "jobs-a", MINUTE, 16);
    let (cb, b) = store(&redis, "jobs-b", MINUTE, 16);
    subscribed(&ca).await;
    subscribed(&cb).await;
    let (a, b) = (Arc::new(a), Arc::new(b));

    // Started on A: read and listed on B, invisible to another principal.
    let j = job("alice", "k1", MINUTE);
    a.insert(j.clone(), 5).await.unwrap();
    let seen = b.get(ALICE, &j.id).await.unwrap();
    let stored = JobRecord {
        replica: Some("jobs-a".into()),
        ..j.clone()
    };
    assert_eq!(
        seen, stored,
        "B reads the record A stored, field for field (stamped with A's replica id)"
    );
    assert_eq!(
        b.get(BOB, &j.id).await,
        Err(JobError::NotFound(j.id.to_string()))
    );
    assert!(b.list(BOB).await.unwrap().is_empty());
    let listed = b.list(ALICE).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].job_id, j.id.to_string());
    assert_eq!(listed[0].state, JobState::Running);

    // The wrapper's start, stored by B, is what A reads (kill_command needs only this).
    b.started(&j.id, Some(4242), true, "/tmp/kasm-mcp-job")
        .await;
    let got = a.get(ALICE, &j.id).await.unwrap();
    assert_eq!((got.pgid, got.group), (Some(4242), true));
    assert_eq!(got.stdout_path, "/tmp/kasm-mcp-job/stdout");
    assert_eq!(got.stderr_path, "/tmp/kasm-mcp-job/stderr");

    // A waiter on A wakes on output B stored (pub/sub), well before its 1 s poll.
    let version = a.get(ALICE, &j.id).await.unwrap().version;
    let waiter = {
        let (a, id) = (a.clone(), j.id.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let now = a.wait_change(&id, version, Duration::from_secs(30)).await;
            (now, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    b.append(&j.id, 1, Stream::Stdout, 0, b"hello ").await;
    let (now, waited) = waiter.await.unwrap();
    assert!(now > version, "{now} > {version}");
    assert!(waited < Duration::from_millis(900), "woke after {waited:?}");
    // An older chunk is ignored; the window keeps the newest 16 bytes with their offsets.
    b.append(&j.id, 2, Stream::Stdout, 6, b"world, how are you")
        .await;
    a.append(&j.id, 1, Stream::Stdout, 0, b"STALE!").await;
    b.append(&j.id, 3, Stream::Stderr, 0, b"oops").await;
    let got = a.get(ALICE, &j.id).await.unwrap();
    assert_eq!(got.stdout.data, b"rld, how are you");
    assert_eq!((got.stdout.start, got.stdout.total), (8, 24));
    assert_eq!(got.stderr.data, b"oops");
    assert_eq!(got.last_seq, Some(3));
    let slice = got.stdout.read(Some(0), None, 100);
    assert_eq!((slice.from, slice.skipped, slice.next), (8, 8, 24));

    // A kill requested through B turns A's collector's end into `killed`; the first end wins.
    b.kill_requested(&j.id).await;
    a.finish(&j.id, exited(143)).await;
    b.finish(&j.id, exited(0)).await;
    let done = b.get(ALICE, &j.id).await.unwrap();
    assert_eq!(done.state, JobState::Killed);
    let finish = done.finish.unwrap();
    assert_eq!(
        (finish.state, finish.exit_code),
        (JobState::Killed, Some(143))
    );
    assert_eq!(
        finish.head_stdout, b"\x00head\xff",
        "bytes survive the JSON"
    );
    assert!(done.ended_ms.is_some());
    assert_eq!(
        b.state(&j.id).await.unwrap().map(|(s, _)| s),
        Some(JobState::Killed)
    );

    // A session ended through B ends the jobs A started in it (and only those).
    let in_k2 = job("alice", "k2", MINUTE);
    let other = job("alice", "k3", MINUTE);
    a.insert(in_k2.clone(), 5).await.unwrap();
    a.insert(other.clone(), 5).await.unwrap();
    assert_eq!(b.end_session("k2").await, 1);
    assert_eq!(
        a.get(ALICE, &in_k2.id).await.unwrap().state,
        JobState::SessionEnded
    );
    assert_eq!(
        a.get(ALICE, &other.id).await.unwrap().state,
        JobState::Running
    );
    // Its collector's late result changes nothing.
    a.finish(&in_k2.id, exited(0)).await;
    assert_eq!(
        b.get(ALICE, &in_k2.id).await.unwrap().state,
        JobState::SessionEnded
    );
    let listed = a.list(ALICE).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.job_id.clone()).collect::<Vec<_>>(),
        [&other, &in_k2, &j]
            .iter()
            .map(|j| j.id.to_string())
            .collect::<Vec<_>>(),
        "newest first"
    );
    // Unknown jobs: no panic, no record.
    let ghost = JobId::random();
    b.append(&ghost, 1, Stream::Stdout, 0, b"x").await;
    b.finish(&ghost, exited(0)).await;
    assert_eq!(a.state(&ghost).await.unwrap(), None);
    assert_eq!(a.wait_change(&ghost, 0, Duration::from_millis(50)).await, 0);
}

#[tokio::test]
async fn the_redis_window_is_byte_for_byte_the_memory_window() {
    let redis = RedisServer::start();
    let (_c, store) = store(&redis, "jobs-window", MINUTE, 64);
    let j = job("alice", "k1", MINUTE);
    store.insert(j.clone(), 5).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut expected = Window::default();
    let mut written = 0u64;
    for seq in 0..300u64 {
        // In order, repeated, overlapping, and skipping ahead (a gap the wrapper dropped).
        let offset = match rng.gen_range(0..6) {
            0 => written.saturating_sub(rng.gen_range(0..40)),
            1 => written + rng.gen_range(1..200),
            _ => written,
        };
        let len = rng.gen_range(0..100);
        let bytes: Vec<u8> = (0..len).map(|_| rng.r#gen::<u8>()).collect();
        written = written.max(offset + len as u64);
        expected.append(offset, &bytes, 64);
        store
            .append(&j.id, seq, Stream::Stdout, offset, &bytes)
            .await;
        let got = store.get(ALICE, &j.id).await.unwrap().stdout;
        assert_eq!(got, expected, "after chunk {seq} at {offset} (+{len})");
        for since in [
            0,
            expected.start.saturating_sub(1),
            expected.total / 2,
            expected.total,
        ] {
            assert_eq!(
                got.read(Some(since), None, 50),
                expected.read(Some(since), None, 50)
            );
        }
    }
}

#[tokio::test]
async fn the_running_limit_holds_across_replicas_even_when_they_race() {
    let redis = RedisServer::start();
    let (_ca, a) = store(&redis, "limit-a", MINUTE, 16);
    let (_cb, b) = store(&redis, "limit-b", MINUTE, 16);
    let (a, b) = (Arc::new(a), Arc::new(b));
    let first = job("alice", "k1", MINUTE);
    a.insert(first.clone(), 2).await.unwrap();
    b.insert(job("alice", "k1", MINUTE), 2).await.unwrap();
    assert_eq!(
        a.insert(job("alice", "k1", MINUTE), 2).await,
        Err(JobError::TooMany(2)),
        "one on A and one on B make two"
    );
    assert!(
        b.insert(job("bob", "k9", MINUTE), 2).await.is_ok(),
        "per principal"
    );
    // An ended job makes room, and is still readable.
    b.finish(&first.id, exited(0)).await;
    a.insert(job("alice", "k1", MINUTE), 2).await.unwrap();
    assert_eq!(
        a.get(ALICE, &first.id).await.unwrap().state,
        JobState::Exited
    );

    // 20 inserts at once, alternating replicas, limit 7: exactly 7 win.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.insert(job("carol", "k5", MINUTE), 7).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(JobError::TooMany(7)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 7);
    assert_eq!(b.list(Owner { principal: "carol" }).await.unwrap().len(), 7);

    // Ended jobs are kept up to the limit: the oldest go first.
    let mut ended = Vec::new();
    for _ in 0..3 {
        let j = job("dave", "k6", MINUTE);
        a.insert(j.clone(), 2).await.unwrap();
        b.finish(&j.id, exited(0)).await;
        ended.push(j.id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dave = Owner { principal: "dave" };
    let kept: Vec<String> = a
        .list(dave.clone())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.job_id)
        .collect();
    assert_eq!(
        kept,
        vec![ended[2].to_string(), ended[1].to_string()],
        "the newest ended jobs are kept, as many as the limit"
    );
    assert!(b.get(dave, &ended[0]).await.is_err(), "the oldest is gone");
}

#[tokio::test]
async fn jobs_expire_with_their_ttl_index_included() {
    let redis = RedisServer::start();
    let (_ca, a) = store(&redis, "ttl-a", Duration::from_millis(300), 16);
    let (_cb, b) = store(&redis, "ttl-b", Duration::from_millis(300), 16);
    let ended = job("erin", "k1", MINUTE);
    a.insert(ended.clone(), 3).await.unwrap();
    a.finish(&ended.id, exited(0)).await;
    // Still running, but past its deadline plus the TTL: forgotten as well.
    let stale = job("erin", "k1", Duration::from_millis(100));
    a.insert(stale.clone(), 3).await.unwrap();
    let erin = Owner { principal: "erin" };
    assert_eq!(b.list(erin.clone()).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(b.get(erin.clone(), &ended.id).await.is_err());
    assert!(b.get(erin.clone(), &stale.id).await.is_err());
    assert!(b.list(erin.clone()).await.unwrap().is_empty());
    // The running slot went with it.
    for _ in 0..3 {
        b.insert(job("erin", "k1", MINUTE), 3).await.unwrap();
    }
    // Nothing of erin's is left behind once the jobs are gone: no unbounded keys.
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(format!("kasm-mcp:job:fin:{}", hex::encode("erin")))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ttl, -2, "the ended index expired with its last job");
}

#[tokio::test]
async fn a_job_past_its_deadline_frees_its_place_and_is_ended_as_lost_by_a_reader() {
    let redis = RedisServer::start();
    let (ca, a) = store(&redis, "orphan-a", MINUTE, 16);
    let (_cb, b) = store(&redis, "orphan-b", MINUTE, 16);
    subscribed(&ca).await;
    // Started on A, whose collector (the one that ends a job at its deadline) never runs.
    let orphan = job("frank", "k1", Duration::from_millis(300));
    a.insert(orphan.clone(), 1).await.unwrap();
    assert_eq!(
        b.insert(job("frank", "k1", MINUTE), 1).await,
        Err(JobError::TooMany(1))
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Past its deadline it holds no place under the limit any more.
    b.insert(job("frank", "k1", MINUTE), 1).await.unwrap();
    let frank = Owner { principal: "frank" };
    assert_eq!(
        b.get(frank.clone(), &orphan.id).await.unwrap().state,
        JobState::Running,
        "within the grace its collector may still end it"
    );
    tokio::time::sleep(kasm_mcp::jobs::ORPHAN_GRACE).await;
    assert_eq!(
        b.get(frank.clone(), &orphan.id).await.unwrap().state,
        JobState::Running,
        "past the grace, but A is alive: its collector ends the job (Kasm may have been slow to start it)"
    );
    // A dies (no more heartbeats): after its liveness lapses, a reader ends the job.
    ca.stop();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let ended = b.get(frank.clone(), &orphan.id).await.unwrap();
    assert_eq!(ended.state, JobState::Lost, "{ended:?}");
    let note = ended.finish.unwrap().note.unwrap();
    assert!(note.contains("replica that started it is gone"), "{note}");
    // Stored, not only shown: A reads it ended too, and a late result changes nothing.
    a.finish(&orphan.id, exited(0)).await;
    assert_eq!(
        a.get(frank, &orphan.id).await.unwrap().state,
        JobState::Lost
    );
}

#[tokio::test]
async fn redis_down_is_an_error_never_a_hang_or_panic() {
    let mut redis = RedisServer::start();
    let (_c, a) = store(&redis, "jobs-down", MINUTE, 16);
    let j = job("alice", "k1", MINUTE);
    a.insert(j.clone(), 5).await.unwrap();
    redis.stop();
    let started = Instant::now();
    let refused = a.insert(job("alice", "k1", MINUTE), 5).await;
    assert!(
        matches!(&refused, Err(JobError::Unavailable(m)) if m.contains("redis_url")),
        "{refused:?}"
    );
    assert!(matches!(
        a.get(ALICE, &j.id).await,
        Err(JobError::Unavailable(_))
    ));
    assert!(matches!(a.list(ALICE).await, Err(JobError::Unavailable(_))));
    assert!(a.state(&j.id).await.is_err(), "unknown is not ended");
    a.append(&j.id, 1, Stream::Stdout, 0, b"lost").await;
    assert_eq!(a.end_session("k1").await, 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the operation timeout: {:?}",
        started.elapsed()
    );
    let waited = Instant::now();
    a.wait_change(&j.id, 0, Duration::from_millis(1500)).await;
    assert!(
        waited.elapsed() < Duration::from_secs(5),
        "{:?}",
        waited.elapsed()
    );
    redis.restart();
    // The job is gone with the restarted Redis (no persistence): reported, not invented.
    let started = Instant::now();
    loop {
        match a.get(ALICE, &j.id).await {
            Err(JobError::NotFound(_)) => break,
            other => {
                assert!(started.elapsed() < Duration::from_secs(10), "{other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    a.insert(job("alice", "k1", MINUTE), 5).await.unwrap();
}
