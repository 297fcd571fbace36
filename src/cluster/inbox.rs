//! Each replica's inbox: its own Redis pub/sub channel, `<prefix>:inbox:<replica_id>`, and the
//! channel every replica hears, `<prefix>:broadcast`, on a connection of its own (a subscribed
//! connection can do nothing else). A message is
//! `<topic>\n<body>`; the inbox hands the body to whoever listens to that topic on this
//! replica (a relay call waiting for its result, a legacy SSE stream) and drops messages for
//! topics nobody listens to. Pub/sub is fire-and-forget: a sender learns how many inboxes got
//! its message (0: the replica is gone or reconnecting), and anything that must not be lost
//! is stored in a key first, the message being only the wake-up call.
//!
//! The subscriber reconnects by itself (with a short backoff) until the replica stops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::conn::Redis;

type Routes = Arc<Mutex<HashMap<String, mpsc::Sender<Bytes>>>>;

/// This replica's inbox.
#[derive(Clone)]
pub struct Inbox {
    routes: Routes,
    connected: Arc<AtomicBool>,
}

/// Messages for one topic, until dropped.
pub struct Listener {
    messages: mpsc::Receiver<Bytes>,
    _guard: ListenGuard,
}

impl Listener {
    /// The next message for the topic (cancel-safe). Borrowing the whole listener keeps its
    /// registration alive wherever it is awaited.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.messages.recv().await
    }
}

struct ListenGuard {
    routes: Routes,
    topic: String,
}

impl Drop for ListenGuard {
    fn drop(&mut self) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(&self.topic);
        }
    }
}

/// `<topic>\n<body>`.
pub fn frame(topic: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(topic.len() + 1 + body.len());
    out.extend_from_slice(topic.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn unframe(payload: &[u8]) -> Option<(&str, &[u8])> {
    let newline = payload.iter().position(|b| *b == b'\n')?;
    let topic = std::str::from_utf8(payload.get(..newline)?).ok()?;
    Some((topic, payload.get(newline + 1..)?))
}

impl Inbox {
    /// Subscribe to `channels` in the background until `stop` is cancelled.
    pub fn start(redis: &Redis, channels: Vec<String>, stop: CancellationToken) -> Inbox {
        let inbox = Inbox {
            routes: Arc::new(Mutex::new(HashMap::new())),
            connected: Arc::new(AtomicBool::new(false)),
        };
        tokio::spawn(subscribe_loop(redis.clone(), channels, inbox.clone(), stop));
        inbox
    }

    /// Whether the subscription is up now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Receive the messages sent to `topic` on this replica (at most `capacity` waiting; more
    /// are dropped). A second listener for the same topic replaces the first.
    pub fn listen(&self, topic: &str, capacity: usize) -> Listener {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert(topic.to_owned(), tx);
        }
        Listener {
            messages: rx,
            _guard: ListenGuard {
                routes: self.routes.clone(),
                topic: topic.to_owned(),
            },
        }
    }

    fn dispatch(&self, payload: &[u8]) {
        let Some((topic, body)) = unframe(payload) else {
            tracing::warn!("cluster inbox: a message without a topic was dropped");
            return;
        };
        let sender = self.routes.lock().ok().and_then(|r| r.get(topic).cloned());
        match sender {
            Some(sender) => {
                if sender.try_send(Bytes::copy_from_slice(body)).is_err() {
                    tracing::warn!(
                        topic,
                        "cluster inbox: listener full or gone; message dropped"
                    );
                }
            }
            None => tracing::debug!(topic, "cluster inbox: nobody listens; message dropped"),
        }
    }
}

async fn subscribe_loop(
    redis: Redis,
    channels: Vec<String>,
    inbox: Inbox,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let connect = async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.subscribe(&channels).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let attempt = tokio::select! {
            _ = stop.cancelled() => return,
            attempt = tokio::time::timeout(redis.connect_timeout(), connect) => attempt,
        };
        match attempt {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                inbox.connected.store(true, Ordering::SeqCst);
                tracing::info!("cluster inbox subscribed");
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => {
                            inbox.connected.store(false, Ordering::SeqCst);
                            return;
                        }
                        message = messages.next() => match message {
                            Some(message) => inbox.dispatch(message.get_payload_bytes()),
                            None => break,
                        },
                    }
                }
                inbox.connected.store(false, Ordering::SeqCst);
                tracing::warn!("cluster inbox: the Redis subscription was lost; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster inbox: cannot subscribe; retrying"),
            Err(_) => tracing::warn!("cluster inbox: connecting to Redis timed out; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let framed = frame("relay:abc", b"\x00bytes\nmore");
        assert_eq!(
            unframe(&framed),
            Some(("relay:abc", &b"\x00bytes\nmore"[..]))
        );
        assert_eq!(unframe(b"no newline"), None);
        assert_eq!(unframe(b"\xff\n"), None);
    }
}
