//! Messages that belong to work on another replica (`[cluster]`). A Streamable HTTP client
//! POSTs its answer to a server→client request (`roots/list`, `elicitation/create`,
//! `sampling/createMessage`) or a `notifications/cancelled` for a running call, and the load
//! balancer may send that POST to a replica where nothing waits for it. That replica
//! broadcasts it (`Cluster::broadcast`, topic `mcp`); every replica applies it to its own
//! tables, where only the one whose call it belongs to finds a match — keyed, as locally, by
//! the owner (session) and the random request id, so nobody else's call can be touched.
//! Nothing is written to Redis on the hot path: only these rare unmatched messages travel.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mcp::jsonrpc::RequestId;

/// The topic every replica listens to.
pub const TOPIC: &str = "mcp";

/// One message for another replica's work.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unmatched {
    /// A client's answer to a server→client request.
    Reply {
        owner: String,
        id: Value,
        result: Option<Value>,
        error: Option<Value>,
    },
    /// `notifications/cancelled` for a call.
    Cancel { owner: String, id: Value },
}

impl Unmatched {
    pub fn reply(owner: &str, id: &RequestId, outcome: &Result<Value, Value>) -> Unmatched {
        let (result, error) = match outcome {
            Ok(result) => (Some(result.clone()), None),
            Err(error) => (None, Some(error.clone())),
        };
        Unmatched::Reply {
            owner: owner.to_owned(),
            id: id.to_json(),
            result,
            error,
        }
    }

    pub fn cancel(owner: &str, id: &RequestId) -> Unmatched {
        Unmatched::Cancel {
            owner: owner.to_owned(),
            id: id.to_json(),
        }
    }
}
