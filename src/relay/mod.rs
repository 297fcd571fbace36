//! The relay: single-use tickets through which session containers return command output
//! and file bytes (`/relay/{ticket}`), because Kasm's `exec_command_kasm` returns nothing.
//!
//! A tool asks for an [`UploadTicket`] (the container POSTs a result to it) or a
//! [`DownloadTicket`] (the container GETs bytes from it). A ticket is 256 random bits,
//! bound to one call (principal, session, purpose), expires with the call's timeout, and is
//! removed when the ticket value is dropped — so a finished or cancelled call leaves nothing
//! behind. Each ticket also has a second secret, its *key* (256 bits), which the wrapper
//! sends in the [`KEY_HEADER`] header: a request that knows the ticket URL but not the key is
//! refused and does not use the ticket up, so a leaked URL can neither forge a result nor
//! take the bytes of a write. Refusals are counted per ticket, so a tool that gets no result
//! can say why. `wrapper.rs` writes the scripts, `frame.rs` reads what they send back; the
//! HTTP side lives in `transport::relay`.

pub mod frame;
pub mod wrapper;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// The request header that carries a ticket's key.
pub const KEY_HEADER: &str = "x-relay-key";

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
}

impl Purpose {
    fn is_download(self) -> bool {
        self == Purpose::FileDownload
    }
}

/// Who and what a ticket belongs to (kept for logs and introspection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketBinding {
    pub principal: String,
    pub kasm_id: String,
    pub purpose: Purpose,
}

/// Options for [`Relay::new`].
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// URL at which session containers reach this server (`MCP_RELAY_URL`); may be set later
    /// with [`Relay::set_base_url`] (e.g. once a port-0 listener is bound).
    pub base_url: Option<String>,
    /// Most tickets that may be pending at once (a bound on memory).
    pub max_pending: usize,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            base_url: None,
            max_pending: 10_000,
        }
    }
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
}

/// Why a ticket could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error(
        "the relay URL is not known yet: set MCP_RELAY_URL to the URL at which session containers reach this server"
    )]
    NoBaseUrl,
    #[error("too many relay transfers are in progress ({0}); try again shortly")]
    Busy(usize),
    #[error("a relay ticket cannot live {0:?}: use a shorter timeout")]
    TooLong(Duration),
}

type UploadResult = Result<Bytes, UploadError>;

enum Slot {
    Upload {
        max_bytes: usize,
        sender: oneshot::Sender<UploadResult>,
    },
    Download {
        bytes: Bytes,
    },
}

struct Entry {
    binding: TicketBinding,
    deadline: Instant,
    /// SHA-256 of the ticket's key (compared in constant time).
    key_digest: [u8; 32],
    refusals: Refusals,
    slot: Slot,
}

/// The ticket table. Shared by the tools (which create tickets) and the `/relay` routes.
pub struct Relay {
    base_url: RwLock<Option<String>>,
    max_pending: usize,
    tickets: Mutex<HashMap<String, Entry>>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("base_url", &self.base_url())
            .field("pending", &self.pending())
            .finish()
    }
}

/// Where an upload goes once its body has been read: hand it to the waiting tool.
pub struct UploadSink {
    pub binding: TicketBinding,
    pub max_bytes: usize,
    sender: oneshot::Sender<UploadResult>,
}

impl UploadSink {
    /// Deliver the body; false if the tool stopped waiting in the meantime.
    pub fn deliver(self, body: Bytes) -> bool {
        self.sender.send(Ok(body)).is_ok()
    }

    /// Tell the waiting tool the upload failed.
    pub fn fail(self, error: UploadError) {
        let _ = self.sender.send(Err(error));
    }
}

impl Relay {
    pub fn new(options: RelayOptions) -> Self {
        Relay {
            base_url: RwLock::new(options.base_url.map(trim_base)),
            max_pending: options.max_pending.max(1),
            tickets: Mutex::new(HashMap::new()),
        }
    }

    /// Set (or replace) the URL containers use to reach this server.
    pub fn set_base_url(&self, url: impl Into<String>) {
        if let Ok(mut guard) = self.base_url.write() {
            *guard = Some(trim_base(url.into()));
        }
    }

    pub fn base_url(&self) -> Option<String> {
        self.base_url.read().ok().and_then(|g| g.clone())
    }

    /// Number of tickets currently pending.
    pub fn pending(&self) -> usize {
        self.tickets.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// How long a pending ticket has left, and whom it is bound to (`None` once it is used,
    /// dropped or expired).
    pub fn lifetime(&self, ticket: &str) -> Option<(TicketBinding, Duration)> {
        let tickets = self.tickets.lock().ok()?;
        let entry = tickets.get(ticket)?;
        let left = entry.deadline.checked_duration_since(Instant::now())?;
        Some((entry.binding.clone(), left))
    }

    /// Create a ticket the container will POST at most `max_bytes` to.
    pub fn expect_upload(
        self: &Arc<Self>,
        binding: TicketBinding,
        max_bytes: usize,
        ttl: Duration,
    ) -> Result<UploadTicket, RelayError> {
        let (sender, receiver) = oneshot::channel();
        let (id, url, key) = self.insert(binding, ttl, Slot::Upload { max_bytes, sender })?;
        Ok(UploadTicket {
            guard: TicketGuard {
                relay: self.clone(),
                id,
            },
            url,
            key,
            receiver,
        })
    }

    /// Create a ticket the container will GET `bytes` from, once.
    pub fn offer_download(
        self: &Arc<Self>,
        binding: TicketBinding,
        bytes: Bytes,
        ttl: Duration,
    ) -> Result<DownloadTicket, RelayError> {
        let (id, url, key) = self.insert(binding, ttl, Slot::Download { bytes })?;
        Ok(DownloadTicket {
            guard: TicketGuard {
                relay: self.clone(),
                id,
            },
            url,
            key,
        })
    }

    /// Used by `GET /relay/{ticket}`: the bytes of a live download ticket, consuming it when
    /// `key` is its key.
    pub fn take_download(
        &self,
        ticket: &str,
        key: Option<&str>,
    ) -> Result<(TicketBinding, Bytes), TicketRefused> {
        let entry = self.take(ticket, key, true)?;
        match entry.slot {
            Slot::Download { bytes } => Ok((entry.binding, bytes)),
            Slot::Upload { .. } => Err(TicketRefused::Unknown),
        }
    }

    /// Used by `POST /relay/{ticket}`: the sink of a live upload ticket, consuming it when
    /// `key` is its key.
    pub fn begin_upload(
        &self,
        ticket: &str,
        key: Option<&str>,
    ) -> Result<UploadSink, TicketRefused> {
        let entry = self.take(ticket, key, false)?;
        match entry.slot {
            Slot::Upload { max_bytes, sender } => Ok(UploadSink {
                binding: entry.binding,
                max_bytes,
                sender,
            }),
            Slot::Download { .. } => Err(TicketRefused::Unknown),
        }
    }

    /// Count a request to `ticket` that a rate limit turned away (for the tool's message when
    /// no result arrives). Unknown tickets are ignored.
    pub fn note_rate_limited(&self, ticket: &str) {
        self.note(ticket, Refusal::RateLimited);
    }

    /// The refusals counted on a pending ticket so far.
    pub fn refusals(&self, ticket: &str) -> Refusals {
        self.tickets
            .lock()
            .ok()
            .and_then(|t| t.get(ticket).map(|e| e.refusals))
            .unwrap_or_default()
    }

    fn note(&self, ticket: &str, refusal: Refusal) {
        if let Ok(mut tickets) = self.tickets.lock()
            && let Some(entry) = tickets.get_mut(ticket)
        {
            let count = match refusal {
                Refusal::WrongKey => &mut entry.refusals.wrong_key,
                Refusal::RateLimited => &mut entry.refusals.rate_limited,
            };
            *count = count.saturating_add(1);
        }
    }

    fn take(
        &self,
        ticket: &str,
        key: Option<&str>,
        download: bool,
    ) -> Result<Entry, TicketRefused> {
        let mut tickets = self.tickets.lock().map_err(|_| TicketRefused::Unknown)?;
        let now = Instant::now();
        let Some(entry) = tickets.get_mut(ticket) else {
            return Err(TicketRefused::Unknown);
        };
        if entry.deadline <= now {
            tickets.remove(ticket);
            return Err(TicketRefused::Unknown);
        }
        if entry.binding.purpose.is_download() != download {
            // A wrong-method request leaves a live ticket alone.
            return Err(TicketRefused::Unknown);
        }
        let presented = Sha256::digest(key.unwrap_or_default().as_bytes());
        if !bool::from(presented.as_slice().ct_eq(&entry.key_digest)) {
            entry.refusals.wrong_key = entry.refusals.wrong_key.saturating_add(1);
            return Err(TicketRefused::WrongKey);
        }
        tickets.remove(ticket).ok_or(TicketRefused::Unknown)
    }

    fn insert(
        &self,
        binding: TicketBinding,
        ttl: Duration,
        slot: Slot,
    ) -> Result<(String, String, String), RelayError> {
        let base = self.base_url().ok_or(RelayError::NoBaseUrl)?;
        let now = Instant::now();
        let deadline = now.checked_add(ttl).ok_or(RelayError::TooLong(ttl))?;
        let mut tickets = self.tickets.lock().map_err(|_| RelayError::Busy(0))?;
        tickets.retain(|_, e| e.deadline > now);
        if tickets.len() >= self.max_pending {
            return Err(RelayError::Busy(tickets.len()));
        }
        let id = new_ticket_id();
        let key = new_ticket_id();
        let url = format!("{base}/relay/{id}");
        tickets.insert(
            id.clone(),
            Entry {
                binding,
                deadline,
                key_digest: Sha256::digest(key.as_bytes()).into(),
                refusals: Refusals::default(),
                slot,
            },
        );
        Ok((id, url, key))
    }

    fn remove(&self, id: &str) {
        if let Ok(mut tickets) = self.tickets.lock() {
            tickets.remove(id);
        }
    }
}

fn trim_base(url: String) -> String {
    url.trim_end_matches('/').to_string()
}

/// 256 random bits from the OS, base64url without padding (43 characters).
fn new_ticket_id() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Removes its ticket when dropped.
struct TicketGuard {
    relay: Arc<Relay>,
    id: String,
}

impl Drop for TicketGuard {
    fn drop(&mut self) {
        self.relay.remove(&self.id);
    }
}

/// A ticket the container POSTs to; await [`UploadTicket::received`] for the body.
pub struct UploadTicket {
    guard: TicketGuard,
    url: String,
    key: String,
    receiver: oneshot::Receiver<UploadResult>,
}

impl fmt::Debug for UploadTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadTicket").finish_non_exhaustive()
    }
}

impl UploadTicket {
    /// The full URL the container must POST to (contains the secret ticket).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ticket id.
    pub fn id(&self) -> &str {
        &self.guard.id
    }

    /// The key the upload must carry in [`KEY_HEADER`] (secret).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Requests to this ticket turned away so far.
    pub fn refusals(&self) -> Refusals {
        self.guard.relay.refusals(&self.guard.id)
    }

    /// Wait for the upload. Cancel-safe; combine with a timeout and the call's cancellation.
    /// `Err(Broken)` also means the ticket was dropped from the table (it expired).
    pub async fn received(&mut self) -> UploadResult {
        match (&mut self.receiver).await {
            Ok(result) => result,
            Err(_) => Err(UploadError::Broken("the ticket expired".into())),
        }
    }
}

/// A ticket the container GETs its bytes from.
pub struct DownloadTicket {
    guard: TicketGuard,
    url: String,
    key: String,
}

impl fmt::Debug for DownloadTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadTicket").finish_non_exhaustive()
    }
}

impl DownloadTicket {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The ticket id.
    pub fn id(&self) -> &str {
        &self.guard.id
    }

    /// The key the download must carry in [`KEY_HEADER`] (secret).
    pub fn key(&self) -> &str {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> Arc<Relay> {
        Arc::new(Relay::new(RelayOptions {
            base_url: Some("http://127.0.0.1:9/".into()),
            max_pending: 3,
        }))
    }

    fn binding(purpose: Purpose) -> TicketBinding {
        TicketBinding {
            principal: "p".into(),
            kasm_id: "k".into(),
            purpose,
        }
    }

    #[tokio::test]
    async fn upload_ticket_is_single_use_and_delivers() {
        let relay = relay();
        let mut t = relay
            .expect_upload(binding(Purpose::ExecResult), 10, Duration::from_secs(5))
            .unwrap();
        assert_eq!(t.id().len(), 43);
        let (bound, left) = relay.lifetime(t.id()).unwrap();
        assert_eq!(bound, binding(Purpose::ExecResult));
        assert!(
            left <= Duration::from_secs(5) && left > Duration::from_secs(4),
            "{left:?}"
        );
        assert_eq!(t.url(), format!("http://127.0.0.1:9/relay/{}", t.id()));
        assert!(
            relay.take_download(t.id(), Some(t.key())).is_err(),
            "wrong method"
        );
        assert_eq!(
            relay.begin_upload(t.id(), None).err(),
            Some(TicketRefused::WrongKey),
            "no key"
        );
        assert_eq!(
            relay.begin_upload(t.id(), Some("forged")).err(),
            Some(TicketRefused::WrongKey),
            "wrong key"
        );
        assert_eq!(t.refusals().wrong_key, 2);
        let sink = relay.begin_upload(t.id(), Some(t.key())).ok().unwrap();
        assert_eq!(
            relay.begin_upload(t.id(), Some(t.key())).err(),
            Some(TicketRefused::Unknown),
            "second use"
        );
        assert!(sink.deliver(Bytes::from_static(b"hi")));
        assert_eq!(t.received().await.unwrap(), Bytes::from_static(b"hi"));
    }

    #[tokio::test]
    async fn dropped_and_expired_tickets_are_gone() {
        let relay = relay();
        let t = relay
            .expect_upload(binding(Purpose::ExecResult), 10, Duration::from_secs(5))
            .unwrap();
        let id = t.id().to_string();
        drop(t);
        assert_eq!(relay.pending(), 0);
        assert!(relay.begin_upload(&id, None).is_err());

        let d = relay
            .offer_download(
                binding(Purpose::FileDownload),
                Bytes::from_static(b"x"),
                Duration::from_millis(1),
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let id = d.url().rsplit('/').next().unwrap().to_string();
        assert_eq!(d.id(), id);
        assert!(relay.lifetime(&id).is_none(), "expired");
        assert!(relay.take_download(&id, Some(d.key())).is_err(), "expired");
    }

    #[test]
    fn pending_is_bounded_and_base_url_required() {
        let relay = relay();
        let keep: Vec<_> = (0..3)
            .map(|_| {
                relay
                    .expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5))
                    .unwrap()
            })
            .collect();
        assert!(matches!(
            relay.expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5)),
            Err(RelayError::Busy(3))
        ));
        drop(keep);
        let bare = Arc::new(Relay::new(RelayOptions::default()));
        assert!(matches!(
            bare.expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5)),
            Err(RelayError::NoBaseUrl)
        ));
        bare.set_base_url("http://h:1");
        assert!(
            bare.expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5))
                .is_ok()
        );
        assert!(matches!(
            bare.expect_upload(binding(Purpose::Listing), 1, Duration::MAX),
            Err(RelayError::TooLong(_))
        ));
    }
}
