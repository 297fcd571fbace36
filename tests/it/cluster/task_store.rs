//! The Redis `TaskStore` itself, two instances (two "replicas") on one real `redis-server`:
//! what one writes the other reads, a cancel and a completion racing never undo each other,
//! input asked on one replica is answered through the other, waiters on one replica wake on
//! the other's change, and records disappear with their ttl, index included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kasm_mcp::cluster::Cluster;
use kasm_mcp::config::ClusterConfig;
use kasm_mcp::mcp::tasks::store::MAX_RUNNING_PER_OWNER;
use kasm_mcp::mcp::tasks::{
    CancelError, Era, RedisTaskStore, TaskOutcome, TaskRecord, TaskStatus, TaskStore,
    TaskStoreError,
};
use serde_json::{Map, Value, json};

use super::RedisServer;

fn store(redis: &RedisServer, replica: &str) -> (Cluster, RedisTaskStore) {
    let config = ClusterConfig {
        redis_url: Some(redis.url().into()),
        replica_id: Some(replica.into()),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(&config).unwrap().unwrap();
    (cluster.clone(), RedisTaskStore::new(cluster))
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

#[tokio::test]
async fn two_replicas_share_tasks_through_redis() {
    let redis = RedisServer::start();
    let (ca, a) = store(&redis, "store-a");
    let (cb, b) = store(&redis, "store-b");
    subscribed(&ca).await;
    subscribed(&cb).await;

    // Created on A: read, listed on B; bound to its owner.
    let task = TaskRecord::new("alice", "execute_kasm_command", Era::Legacy, 60_000, 500);
    a.create(task.clone()).await.unwrap();
    assert_eq!(b.get(&task.id, "alice").await.unwrap(), Some(task.clone()));
    assert_eq!(b.get(&task.id, "bob").await.unwrap(), None);
    assert_eq!(b.list("alice").await.unwrap(), vec![task.clone()]);
    assert!(b.list("bob").await.unwrap().is_empty());
    assert_eq!(
        b.request_cancel(&task.id, "bob").await,
        Err(CancelError::NotFound)
    );

    // A waiter on A wakes when B changes the task (pub/sub, well before the 1 s poll).
    let a = Arc::new(a);
    let waiter = {
        let (a, id) = (a.clone(), task.id.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            a.changed(&id, Duration::from_secs(30)).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancelled = b.request_cancel(&task.id, "alice").await.unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    let waited = waiter.await.unwrap();
    assert!(waited < Duration::from_millis(900), "woke after {waited:?}");
    assert!(a.cancel_requested(&task.id).await, "A sees B's cancel");
    // A's result arriving after the cancel does not undo it.
    let outcome = TaskOutcome::Result {
        result: json!({"content": []}),
    };
    assert_eq!(
        a.finish(&task.id, TaskStatus::Completed, Some(outcome.clone()), None)
            .await,
        None
    );
    assert_eq!(
        b.get(&task.id, "alice").await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );

    // Racing: B cancels while A finishes; exactly one of them wins, and the record agrees.
    for _ in 0..20 {
        let t = TaskRecord::new("alice", "t", Era::Modern, 60_000, 500);
        a.create(t.clone()).await.unwrap();
        let (finished, cancel) = tokio::join!(
            a.finish(&t.id, TaskStatus::Completed, Some(outcome.clone()), None),
            b.request_cancel(&t.id, "alice"),
        );
        let stored = b.get(&t.id, "alice").await.unwrap().unwrap();
        match (finished.is_some(), cancel.is_ok()) {
            (true, false) => assert_eq!(stored.status, TaskStatus::Completed),
            (false, true) => {
                assert_eq!(stored.status, TaskStatus::Cancelled);
                assert!(stored.cancel_requested);
            }
            other => panic!("both or neither won: {other:?}, {stored:?}"),
        }
    }

    // Input asked by the call on A, answered through B, picked up once on A.
    let t = TaskRecord::new("alice", "t", Era::Modern, 60_000, 500);
    a.create(t.clone()).await.unwrap();
    assert!(
        a.request_input(&t.id, "k1", json!({"method": "elicitation/create"}))
            .await
    );
    let seen = b.get(&t.id, "alice").await.unwrap().unwrap();
    assert_eq!(seen.status, TaskStatus::InputRequired);
    assert!(seen.input_requests.contains_key("k1"));
    let answers: Map<String, Value> = [
        ("k1".to_string(), json!({"action": "accept"})),
        ("never-asked".to_string(), json!({})),
    ]
    .into_iter()
    .collect();
    assert_eq!(b.provide_input(&t.id, "bob", answers.clone()).await, None);
    assert_eq!(
        b.provide_input(&t.id, "alice", answers.clone()).await,
        Some(1)
    );
    assert_eq!(b.provide_input(&t.id, "alice", answers).await, Some(0));
    assert_eq!(
        a.get(&t.id, "alice").await.unwrap().unwrap().status,
        TaskStatus::Working
    );
    assert_eq!(
        a.take_input(&t.id, "k1").await,
        Some(json!({"action": "accept"}))
    );
    assert_eq!(b.take_input(&t.id, "k1").await, None, "taken once");

    // Expiry: the record and its index entry go with the ttl.
    let short = TaskRecord::new("carol", "t", Era::Legacy, 300, 100);
    a.create(short.clone()).await.unwrap();
    assert_eq!(b.list("carol").await.unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.get(&short.id, "carol").await.unwrap(), None);
    assert!(b.list("carol").await.unwrap().is_empty());
}

#[tokio::test]
async fn redis_down_is_an_error_never_not_found_a_hang_or_a_panic() {
    let mut redis = RedisServer::start();
    let (_c, a) = store(&redis, "store-down");
    let task = TaskRecord::new("alice", "t", Era::Legacy, 60_000, 500);
    a.create(task.clone()).await.unwrap();
    redis.stop();
    let started = Instant::now();
    let refused = a
        .create(TaskRecord::new("alice", "t", Era::Legacy, 60_000, 500))
        .await;
    assert!(
        matches!(&refused, Err(kasm_mcp::mcp::tasks::TaskStoreError::Unavailable(m)) if m.contains("redis_url")),
        "{refused:?}"
    );
    // A task that exists must not be reported gone because Redis is: "not found" would
    // tell the client to give up on it.
    let read = a.get(&task.id, "alice").await;
    assert!(
        matches!(&read, Err(kasm_mcp::mcp::tasks::TaskStoreError::Unavailable(m)) if m.contains("redis_url")),
        "{read:?}"
    );
    assert!(a.list("alice").await.is_err());
    let cancel = a.request_cancel(&task.id, "alice").await;
    assert!(
        matches!(&cancel, Err(kasm_mcp::mcp::tasks::CancelError::Unavailable(m)) if m.contains("redis_url")),
        "{cancel:?}"
    );
    assert!(!a.cancel_requested(&task.id).await);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the operation timeout: {:?}",
        started.elapsed()
    );
    redis.restart();
    let started = Instant::now();
    while !matches!(a.get(&task.id, "alice").await, Ok(Some(_))) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the store did not recover after Redis restarted"
        );
        if a.create(task.clone()).await.is_ok() {
            continue;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_running_cap_holds_over_two_replicas_counts_no_records_and_frees_on_end_or_expiry() {
    let redis = RedisServer::start();
    let (_ca, a) = store(&redis, "cap-a");
    let (_cb, b) = store(&redis, "cap-b");
    let task = |ttl_ms| TaskRecord::new("carol", "execute_kasm_command", Era::Legacy, ttl_ms, 500);
    // The first expires soon while running, as if its replica died before finishing it.
    let short = task(2_000);
    let short_created = Instant::now();
    a.create(short.clone()).await.unwrap();
    let mut ids = vec![short.id.clone()];
    for i in 1..MAX_RUNNING_PER_OWNER {
        let record = task(60_000);
        let on = if i % 2 == 0 { &a } else { &b };
        on.create(record.clone()).await.unwrap();
        ids.push(record.id);
    }
    let full = TaskStoreError::TooManyRunning {
        owner: "carol".into(),
        running: MAX_RUNNING_PER_OWNER,
        limit: MAX_RUNNING_PER_OWNER,
    };
    // Created half on each replica: the cap counts both.
    assert_eq!(b.create(task(60_000)).await, Err(full.clone()));
    assert_eq!(a.create(task(60_000)).await, Err(full.clone()));
    // The count is not read from the records: one made unreadable still counts as running.
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("SET")
        .arg(format!("kasm-mcp:task:{}", ids[3].as_str()))
        .arg("not json")
        .arg("KEEPTTL")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(b.create(task(60_000)).await, Err(full.clone()));
    // Another principal has its own cap.
    a.create(TaskRecord::new("dave", "t", Era::Legacy, 60_000, 500))
        .await
        .unwrap();
    // Finished on A: B may create one more, and no second.
    a.finish(&ids[1], TaskStatus::Completed, None, None)
        .await
        .unwrap();
    b.create(task(60_000)).await.unwrap();
    assert_eq!(a.create(task(60_000)).await, Err(full.clone()));
    // Cancelled on B: A may create one more.
    b.request_cancel(&ids[2], "carol").await.unwrap();
    a.create(task(60_000)).await.unwrap();
    assert_eq!(b.create(task(60_000)).await, Err(full.clone()));
    // The short task's record expired while it ran: its slot comes back by itself.
    let left = Duration::from_millis(2_100).saturating_sub(short_created.elapsed());
    tokio::time::sleep(left).await;
    b.create(task(60_000)).await.unwrap();
    assert_eq!(a.create(task(60_000)).await, Err(full));
}
