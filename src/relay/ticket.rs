//! The plain values of a relay ticket: what it is for, whom it is bound to, and why a request
//! to it was turned away. Shared by the in-memory table (`mod.rs`) and its Redis side
//! (`shared.rs`).

/// What a ticket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The exec wrapper POSTs exit code, stdout and stderr.
    ExecResult,
    /// The read wrapper POSTs a file's bytes.
    FileUpload,
    /// The write wrapper GETs the bytes to write.
    FileDownload,
    /// The write wrapper POSTs the outcome of a write.
    WriteStatus,
    /// The list wrapper POSTs a directory listing.
    Listing,
    /// A running command's wrapper POSTs its output chunks, many times (a stream ticket).
    ExecStream,
}

impl Purpose {
    /// Whether the container GETs (rather than POSTs) this ticket.
    pub fn is_download(self) -> bool {
        self == Purpose::FileDownload
    }

    /// The name stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ExecResult => "exec",
            Purpose::FileUpload => "read",
            Purpose::FileDownload => "download",
            Purpose::WriteStatus => "write",
            Purpose::Listing => "list",
            Purpose::ExecStream => "stream",
        }
    }

    /// [`Purpose::as_str`] back.
    pub fn parse(name: &str) -> Option<Purpose> {
        [
            Purpose::ExecResult,
            Purpose::FileUpload,
            Purpose::FileDownload,
            Purpose::WriteStatus,
            Purpose::Listing,
            Purpose::ExecStream,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }
}

/// Who and what a ticket belongs to (kept for logs and introspection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketBinding {
    pub principal: String,
    pub kasm_id: String,
    pub purpose: Purpose,
}

/// Why an upload did not arrive intact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("the container sent more than the {limit} bytes allowed for this call")]
    TooLarge { limit: usize },
    #[error("the upload from the container broke off: {0}")]
    Broken(String),
}

/// Why a request to a live ticket was turned away (counted on the ticket, which stays live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key header was missing or wrong.
    WrongKey,
    /// A rate limit refused the request before it reached the ticket.
    RateLimited,
}

/// What happened to a ticket's requests that did not deliver anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    pub wrong_key: u32,
    pub rate_limited: u32,
}

/// Why `begin_upload` / `take_download` gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRefused {
    /// Unknown, used, expired, or the wrong method: answered like an unknown ticket.
    Unknown,
    /// The ticket is live but the key is missing or wrong; the ticket stays usable.
    WrongKey,
    /// `[cluster]`: the shared ticket table (Redis) did not answer; the ticket, if live,
    /// stays usable and the sender may retry.
    Unavailable,
}
