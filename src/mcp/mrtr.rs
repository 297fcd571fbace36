//! Multi round-trip requests (2026-07-28, SEP-2322): how a stateless request asks the client
//! for input. Instead of sending `elicitation/create` or `sampling/createMessage` to the
//! client, the server answers `resultType: "input_required"` with `inputRequests` and a
//! `requestState`; the client retries the same request with `inputResponses` and the state.
//!
//! Tools use one API for both eras: [`crate::mcp::Notifier::request_client_as`]. In a modern
//! request it looks the answer up in this round's [`InputRound`]; when the answer is missing
//! the request is recorded and the call fails with `ClientRequestError::InputRequired`, the
//! tool returns early, and the router answers with everything recorded. The retry re-runs the
//! tool with the answers available (answers of earlier rounds travel in the sealed state).
//!
//! `requestState` is sealed with HMAC-SHA256 and bound to the principal, the method and its
//! target (tool or prompt name), and expires: a tampered, foreign or stale state is refused.
//! The key is derived from `server.session_secret` with HKDF (`crate::keys`), so a retry
//! that reaches another replica or a restarted process still opens. Each state carries a
//! random nonce and opens once: a replay is refused — per process, and with `[cluster]` across
//! all replicas (`SET <prefix>:mrtr:<nonce> NX` with the state's remaining lifetime).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::cluster::Cluster;
use crate::mcp::jsonrpc::RpcError;

/// How long a `requestState` stays valid.
pub const REQUEST_STATE_TTL_S: u64 = 600;

/// The capability a client must declare before the server may ask it `method`.
pub fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

/// Most used nonces remembered at once (expired ones are pruned first); past it a state is
/// refused rather than risk a replay.
const MAX_USED: usize = 100_000;

/// Seals and opens `requestState` values.
pub struct StateSealer {
    key: [u8; 32],
    /// Nonces of states already opened → when the state expires anyway.
    used: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSealer(..)")
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl StateSealer {
    pub fn new(key: [u8; 32]) -> Self {
        StateSealer {
            key,
            used: Mutex::new(HashMap::new()),
        }
    }

    fn used(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record `nonce` as used; false when it was used before (a replay) or the table is full.
    fn spend(&self, nonce: &str, exp: u64) -> Result<(), &'static str> {
        let mut used = self.used();
        if used.contains_key(nonce) {
            return Err(
                "it was already used; a requestState opens once — retry the request without it",
            );
        }
        if used.len() >= MAX_USED {
            let now = now_s();
            used.retain(|_, exp| *exp >= now);
        }
        if used.len() >= MAX_USED {
            return Err("too many request states are in flight; retry the request without it");
        }
        used.insert(nonce.to_string(), exp);
        Ok(())
    }

    pub fn random() -> Self {
        StateSealer::new(rand::random())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail for a 32-byte key.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    /// Seal `payload` (plus an expiry and a nonce) for `binding`.
    pub fn seal(&self, binding: &str, payload: Value) -> String {
        let body = json!({
            "b": binding,
            "exp": now_s().saturating_add(REQUEST_STATE_TTL_S),
            "n": hex::encode(rand::random::<[u8; 16]>()),
            "p": payload,
        });
        let body = URL_SAFE_NO_PAD.encode(body.to_string());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// Open a sealed state, once; -32602 when it was altered, made for another binding,
    /// expired or already opened.
    pub fn open(&self, binding: &str, sealed: &str) -> Result<Value, RpcError> {
        self.open_spent(binding, sealed).map(|(payload, _)| payload)
    }

    /// [`StateSealer::open`], also returning the spent nonce and its expiry.
    fn open_spent(&self, binding: &str, sealed: &str) -> Result<(Value, (String, u64)), RpcError> {
        let refuse = |why: &str| RpcError::invalid_params(format!("requestState rejected: {why}"));
        let (body, tag) = sealed.split_once('.').ok_or_else(|| refuse("malformed"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| refuse("malformed"))?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| refuse("integrity check failed"))?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| refuse("malformed"))?;
        let body: Value = serde_json::from_slice(&body).map_err(|_| refuse("malformed"))?;
        if body["b"].as_str() != Some(binding) {
            return Err(refuse("it belongs to another request or principal"));
        }
        let Some(exp) = body["exp"].as_u64().filter(|exp| *exp >= now_s()) else {
            return Err(refuse("expired; retry the request without it"));
        };
        let nonce = body["n"].as_str().ok_or_else(|| refuse("malformed"))?;
        self.spend(nonce, exp).map_err(refuse)?;
        Ok((body["p"].clone(), (nonce.to_owned(), exp)))
    }
}

/// The input side of one modern request: the answers the client has given so far and the
/// requests the handler still needs.
#[derive(Debug, Default)]
pub struct InputRound {
    answers: Map<String, Value>,
    client_capabilities: Value,
    previous_state: Option<Value>,
    needed: Mutex<Map<String, Value>>,
    next_state: Mutex<Option<Value>>,
    auto_keys: Mutex<usize>,
}

impl InputRound {
    pub fn new(
        answers: Map<String, Value>,
        client_capabilities: Value,
        previous_state: Option<Value>,
    ) -> Self {
        InputRound {
            answers,
            client_capabilities,
            previous_state,
            ..InputRound::default()
        }
    }

    pub fn declares(&self, capability: &str) -> bool {
        self.client_capabilities
            .get(capability)
            .is_some_and(|c| !c.is_null())
    }

    pub fn answer(&self, key: &str) -> Option<&Value> {
        self.answers.get(key)
    }

    /// Record that the client must answer `method` under `key`.
    pub fn need(&self, key: &str, method: &str, params: Value) {
        let mut needed = self.needed.lock().unwrap_or_else(|e| e.into_inner());
        needed.insert(key.into(), json!({ "method": method, "params": params }));
    }

    /// The next automatic key (`input-1`, `input-2`, … in call order, so a re-run of the same
    /// handler asks for the same keys).
    pub fn auto_key(&self) -> String {
        let mut n = self.auto_keys.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        format!("input-{n}")
    }

    /// State the handler stored in an earlier round.
    pub fn previous_state(&self) -> Option<&Value> {
        self.previous_state.as_ref()
    }

    pub fn set_state(&self, state: Value) {
        *self.next_state.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
    }

    /// The `InputRequiredResult` when the handler asked for input, sealing the answers so far
    /// and the handler's state for the retry.
    pub fn input_required(&self, sealer: &StateSealer, binding: &str) -> Option<Value> {
        let needed = self
            .needed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if needed.is_empty() {
            return None;
        }
        let state = self
            .next_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .or_else(|| self.previous_state.clone());
        let sealed = sealer.seal(
            binding,
            json!({ "answers": self.answers, "state": state.unwrap_or(Value::Null) }),
        );
        Some(json!({
            "resultType": "input_required",
            "inputRequests": needed,
            "requestState": sealed,
        }))
    }
}

/// `[cluster]`: spend a state's nonce for every replica; refused when another replica (or
/// this one) opened it already, or when Redis cannot tell.
async fn spend_shared(cluster: &Cluster, nonce: &str, exp: u64) -> Result<(), RpcError> {
    let ttl = Duration::from_secs(exp.saturating_sub(now_s()).max(1));
    let key = cluster.redis().key(&["mrtr", nonce]);
    match cluster.redis().set_nx_px(&key, b"1", ttl).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(RpcError::invalid_params(
            "requestState rejected: it was already used; a requestState opens once — retry the request without it",
        )),
        Err(e) => Err(RpcError::internal(format!("requestState not checked: {e}"))),
    }
}

/// Read `inputResponses` and `requestState` from a modern request and build its round.
pub async fn open_round(
    sealer: &StateSealer,
    cluster: Option<&Cluster>,
    binding: &str,
    params: &Map<String, Value>,
    client_capabilities: Value,
) -> Result<InputRound, RpcError> {
    let mut answers = Map::new();
    let mut previous_state = None;
    match params.get("requestState") {
        None | Some(Value::Null) => {}
        Some(Value::String(sealed)) => {
            let (payload, (nonce, exp)) = sealer.open_spent(binding, sealed)?;
            if let Some(cluster) = cluster {
                spend_shared(cluster, &nonce, exp).await?;
            }
            if let Some(earlier) = payload.get("answers").and_then(Value::as_object) {
                answers.extend(earlier.clone());
            }
            previous_state = payload.get("state").filter(|s| !s.is_null()).cloned();
        }
        Some(_) => {
            return Err(RpcError::invalid_params(
                "params.requestState must be a string",
            ));
        }
    }
    match params.get("inputResponses") {
        None | Some(Value::Null) => {}
        Some(Value::Object(responses)) => {
            for (key, response) in responses {
                if !response.is_object() {
                    return Err(RpcError::invalid_params(format!(
                        "params.inputResponses[{key:?}] must be a result object"
                    )));
                }
                answers.insert(key.clone(), response.clone());
            }
        }
        Some(_) => {
            return Err(RpcError::invalid_params(
                "params.inputResponses must be an object keyed by input request",
            ));
        }
    }
    Ok(InputRound::new(
        answers,
        client_capabilities,
        previous_state,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_opens_once_and_on_a_sealer_with_the_same_key() {
        let key = crate::keys::derive(b"secret", crate::keys::KeyUse::RequestState);
        let sealed = StateSealer::new(key).seal("b", json!({"x": 1}));
        // Another process (a restart, another replica) with the same key opens it...
        let restarted = StateSealer::new(key);
        assert_eq!(restarted.open("b", &sealed).unwrap(), json!({"x": 1}));
        // ...once.
        let replay = restarted.open("b", &sealed).unwrap_err();
        assert!(
            replay.message.contains("already used"),
            "{}",
            replay.message
        );
    }

    #[test]
    fn sealed_state_round_trips_and_resists_tampering() {
        let sealer = StateSealer::random();
        let sealed = sealer.seal("alice|tools/call|t", json!({"x": 1}));
        assert_eq!(
            sealer.open("alice|tools/call|t", &sealed).unwrap(),
            json!({"x": 1})
        );
        assert_eq!(
            sealer.open("bob|tools/call|t", &sealed).unwrap_err().code,
            -32602,
            "bound to the principal and target"
        );
        let mut tampered = sealed.clone().into_bytes();
        tampered[3] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(sealer.open("alice|tools/call|t", &tampered).is_err());
        assert!(sealer.open("alice|tools/call|t", "garbage").is_err());
        let other = StateSealer::random();
        assert!(
            other.open("alice|tools/call|t", &sealed).is_err(),
            "other key"
        );
    }

    #[tokio::test]
    async fn rounds_accumulate_answers_across_retries() {
        let sealer = StateSealer::random();
        let first = open_round(&sealer, None, "b", &Map::new(), json!({}))
            .await
            .unwrap();
        first.need("step1", "elicitation/create", json!({}));
        let r1 = first.input_required(&sealer, "b").unwrap();
        assert_eq!(r1["resultType"], "input_required");

        let params = json!({
            "inputResponses": {"step1": {"action":"accept","content":{"name":"A"}}},
            "requestState": r1["requestState"],
        });
        let second = open_round(&sealer, None, "b", params.as_object().unwrap(), json!({}))
            .await
            .unwrap();
        assert!(second.answer("step1").is_some());
        second.need("step2", "elicitation/create", json!({}));
        let r2 = second.input_required(&sealer, "b").unwrap();
        assert_ne!(r1["requestState"], r2["requestState"]);

        let params = json!({
            "inputResponses": {"step2": {"action":"accept","content":{"color":"blue"}}},
            "requestState": r2["requestState"],
        });
        let third = open_round(&sealer, None, "b", params.as_object().unwrap(), json!({}))
            .await
            .unwrap();
        assert!(third.answer("step1").is_some() && third.answer("step2").is_some());
        assert!(third.input_required(&sealer, "b").is_none());
    }

    #[tokio::test]
    async fn malformed_inputs_are_invalid_params() {
        let sealer = StateSealer::random();
        for bad in [
            json!({"inputResponses": [1]}),
            json!({"inputResponses": {"k": "not an object"}}),
            json!({"requestState": 5}),
            json!({"requestState": "forged.state"}),
        ] {
            let err = open_round(&sealer, None, "b", bad.as_object().unwrap(), json!({}))
                .await
                .unwrap_err();
            assert_eq!(err.code, -32602, "{bad}");
        }
    }
}
