//! [`JobUploads`]: with `[cluster]`, the uploads of a job's tickets that land on a replica
//! other than the one that started the job go straight into the shared job store — a chunk
//! is appended to the job's output window, the result ends the job — so no chunk takes the
//! forward hop to the starting replica, and a job's end is recorded even when that replica
//! is gone. The starting replica's collector still ends the job at its deadline and applies
//! what reaches it directly; the store takes the first end and ignores repeated chunks.

use std::sync::Arc;

use bytes::Bytes;

use super::collect::{apply, finish_of};
use crate::jobs::{JobId, JobStore};
use crate::relay::{TaggedUploads, TicketBinding, UploadError};

/// The tagged-upload sink of the relay: tags are job ids.
pub struct JobUploads {
    pub store: Arc<dyn JobStore>,
}

#[async_trait::async_trait]
impl TaggedUploads for JobUploads {
    async fn chunk(&self, tag: &str, body: Bytes) -> bool {
        match JobId::parse(tag) {
            Ok(id) => {
                apply(self.store.as_ref(), &id, body).await;
                true
            }
            Err(_) => false,
        }
    }

    async fn result(&self, tag: &str, binding: &TicketBinding, body: Result<Bytes, UploadError>) {
        if let Ok(id) = JobId::parse(tag) {
            self.store
                .finish(&id, finish_of(&binding.kasm_id, body))
                .await;
        }
    }
}
