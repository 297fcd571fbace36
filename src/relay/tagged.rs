//! [`TaggedUploads`]: with `[cluster]`, where the uploads to a *tagged* ticket go on the
//! replica that receives them when another replica created the ticket — straight into
//! shared state instead of through the creating replica.
//!
//! A background job tags its stream and result tickets with its job id
//! ([`super::Relay::tag`]); the jobs layer registers the sink ([`super::Relay::set_tagged`])
//! that appends a chunk to the job's record in the shared job store, or ends the record with
//! the result. So a job's output and end reach the store even when the replica that started
//! it is slow or gone, and no chunk needs the forward hop to that replica. The tag is set by
//! the server next to the ticket's key digest; a request reaches the sink only after its key
//! was checked.

use bytes::Bytes;

use super::ticket::{TicketBinding, UploadError};

/// Receives the uploads to tagged tickets.
#[async_trait::async_trait]
pub trait TaggedUploads: Send + Sync {
    /// One chunk POSTed to a tagged stream ticket; false refuses it (404).
    async fn chunk(&self, tag: &str, body: Bytes) -> bool;
    /// The upload that used a tagged upload ticket up (exactly once cluster-wide).
    async fn result(&self, tag: &str, binding: &TicketBinding, body: Result<Bytes, UploadError>);
}
