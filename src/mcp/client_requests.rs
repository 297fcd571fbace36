//! Requests the server sends to the client while a tool runs (legacy era only):
//! `sampling/createMessage`, `elicitation/create`, `roots/list`.
//!
//! The request goes out on the tool call's notification channel (the transport streams it on
//! the request's SSE response or the legacy SSE connection); the client POSTs its reply, which
//! reaches [`crate::mcp::McpServer::handle`] as a JSON-RPC response and is routed here by
//! (owner, id). Ids are random, so one client cannot answer another's request by guessing,
//! and the owner key (session or principal) must match too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::mcp::jsonrpc::RequestId;
use crate::mcp::mrtr::capability_for;

/// How long a tool waits for the client's answer unless it says otherwise.
pub const DEFAULT_CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Most server→client requests waiting at once (a runaway tool cannot exhaust memory).
const MAX_PENDING: usize = 10_000;

/// Why a server→client request produced no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientRequestError {
    #[error(
        "this request cannot reach the client (no stream back to it, or a stateless 2026-07-28 request)"
    )]
    Unsupported,
    #[error("the client did not declare the {0:?} capability")]
    CapabilityMissing(String),
    #[error("the client did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the connection to the client closed before it answered")]
    Disconnected,
    #[error("too many requests are already waiting for clients")]
    Busy,
    /// The client answered with a JSON-RPC error object.
    #[error("the client answered with an error: {0}")]
    ClientError(Value),
    /// 2026-07-28: the answer is not here yet; the server asks for it with an
    /// `input_required` result and the client retries. Return early when you see this.
    #[error("the client must supply this input and retry the request")]
    InputRequired,
}

type Waiter = oneshot::Sender<Result<Value, Value>>;

/// Server→client requests waiting for their answers, keyed by (owner, id).
#[derive(Default)]
pub struct PendingClientRequests {
    waiting: Mutex<HashMap<(String, String), Waiter>>,
}

impl std::fmt::Debug for PendingClientRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingClientRequests")
    }
}

fn id_key(id: &RequestId) -> Option<String> {
    match id {
        RequestId::Text(s) => Some(s.clone()),
        RequestId::Number(_) => None,
    }
}

impl PendingClientRequests {
    fn register(&self, owner: &str, id: &str) -> Option<oneshot::Receiver<Result<Value, Value>>> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.len() >= MAX_PENDING {
            waiting.retain(|_, tx| !tx.is_closed());
            if waiting.len() >= MAX_PENDING {
                return None;
            }
        }
        waiting.insert((owner.to_string(), id.to_string()), tx);
        Some(rx)
    }

    fn forget(&self, owner: &str, id: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.remove(&(owner.to_string(), id.to_string()));
    }

    /// Deliver a client's answer. Returns false when nothing was waiting for it (unknown,
    /// answered already, timed out, or owned by someone else): such answers are ignored.
    pub fn resolve(&self, owner: &str, id: &RequestId, outcome: Result<Value, Value>) -> bool {
        let Some(id) = id_key(id) else {
            return false;
        };
        let waiter = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.remove(&(owner.to_string(), id))
        };
        match waiter {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct ForgetOnDrop<'a> {
    pending: &'a PendingClientRequests,
    owner: &'a str,
    id: &'a str,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.pending.forget(self.owner, self.id);
    }
}

/// A handle a tool uses (through its `Notifier`) to ask the client something.
#[derive(Clone)]
pub struct ClientRequester {
    pending: Arc<PendingClientRequests>,
    owner: String,
    sender: mpsc::UnboundedSender<Value>,
    /// The capabilities the client declared at `initialize`, when the transport has a session.
    client_capabilities: Option<Value>,
    timeout: Duration,
}

impl std::fmt::Debug for ClientRequester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRequester")
            .field("owner", &self.owner)
            .field("client_capabilities", &self.client_capabilities)
            .finish_non_exhaustive()
    }
}

impl ClientRequester {
    pub fn new(
        pending: Arc<PendingClientRequests>,
        owner: String,
        sender: mpsc::UnboundedSender<Value>,
        client_capabilities: Option<Value>,
    ) -> Self {
        ClientRequester {
            pending,
            owner,
            sender,
            client_capabilities,
            timeout: DEFAULT_CLIENT_REQUEST_TIMEOUT,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether the client declared `capability` (None = unknown: no session to remember it).
    pub fn client_supports(&self, capability: &str) -> Option<bool> {
        self.client_capabilities
            .as_ref()
            .map(|caps| caps.get(capability).is_some_and(|c| !c.is_null()))
    }

    /// Send `method` to the client and wait for its result.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ClientRequestError> {
        if let Some(capability) = capability_for(method)
            && self.client_supports(capability) == Some(false)
        {
            return Err(ClientRequestError::CapabilityMissing(capability.into()));
        }
        let id = format!("srv-{}", uuid::Uuid::new_v4());
        let Some(answer) = self.pending.register(&self.owner, &id) else {
            return Err(ClientRequestError::Busy);
        };
        // Forget the waiter however this ends, including when the tool's future is dropped.
        let _forget = ForgetOnDrop {
            pending: &self.pending,
            owner: &self.owner,
            id: &id,
        };
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if self.sender.send(message).is_err() {
            return Err(ClientRequestError::Disconnected);
        }
        let outcome = tokio::select! {
            answer = answer => answer.map_err(|_| ClientRequestError::Disconnected),
            _ = self.sender.closed() => Err(ClientRequestError::Disconnected),
            _ = tokio::time::sleep(self.timeout) => Err(ClientRequestError::Timeout(self.timeout)),
        };
        match outcome? {
            Ok(result) => Ok(result),
            Err(error) => Err(ClientRequestError::ClientError(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requester(
        caps: Option<Value>,
    ) -> (
        Arc<PendingClientRequests>,
        ClientRequester,
        mpsc::UnboundedReceiver<Value>,
    ) {
        let pending = Arc::new(PendingClientRequests::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let r = ClientRequester::new(pending.clone(), "owner-a".into(), tx, caps);
        (pending, r, rx)
    }

    #[tokio::test]
    async fn answer_is_routed_to_the_waiting_request() {
        let (pending, r, mut rx) = requester(Some(json!({"sampling":{}})));
        let call = tokio::spawn(async move {
            r.request("sampling/createMessage", json!({"maxTokens":1}))
                .await
        });
        let sent = rx.recv().await.unwrap();
        assert_eq!(sent["method"], "sampling/createMessage");
        let id = RequestId::from_json(&sent["id"]).unwrap();
        assert!(!pending.resolve("someone-else", &id, Ok(json!({"x":1}))));
        assert!(pending.resolve("owner-a", &id, Ok(json!({"model":"m"}))));
        assert_eq!(call.await.unwrap(), Ok(json!({"model":"m"})));
        assert!(pending.is_empty());
        assert!(
            !pending.resolve("owner-a", &id, Ok(json!({}))),
            "answered twice"
        );
    }

    #[tokio::test]
    async fn client_errors_and_missing_capabilities_are_reported() {
        let (pending, r, mut rx) = requester(Some(json!({})));
        assert_eq!(
            r.request("elicitation/create", json!({})).await,
            Err(ClientRequestError::CapabilityMissing("elicitation".into()))
        );
        let (pending2, r2, mut rx2) = requester(None);
        let call = tokio::spawn(async move { r2.request("elicitation/create", json!({})).await });
        let sent = rx2.recv().await.unwrap();
        let id = RequestId::from_json(&sent["id"]).unwrap();
        pending2.resolve("owner-a", &id, Err(json!({"code":-1,"message":"no"})));
        assert!(matches!(
            call.await.unwrap(),
            Err(ClientRequestError::ClientError(_))
        ));
        drop((pending, rx.try_recv()));
    }

    #[tokio::test]
    async fn a_dropped_request_leaves_nothing_waiting() {
        let (pending, r, mut rx) = requester(None);
        let waiting = tokio::spawn(async move { r.request("roots/list", json!({})).await });
        rx.recv().await.unwrap();
        assert_eq!(pending.len(), 1);
        waiting.abort();
        let _ = waiting.await;
        assert!(pending.is_empty());
    }

    #[tokio::test]
    async fn times_out_and_notices_a_closed_stream() {
        let (_p, r, rx) = requester(None);
        let r = r.with_timeout(Duration::from_millis(20));
        let waiting = tokio::spawn({
            let r = r.clone();
            async move { r.request("roots/list", json!({})).await }
        });
        assert_eq!(
            waiting.await.unwrap(),
            Err(ClientRequestError::Timeout(Duration::from_millis(20)))
        );
        drop(rx);
        assert_eq!(
            r.request("roots/list", json!({})).await,
            Err(ClientRequestError::Disconnected)
        );
    }
}
