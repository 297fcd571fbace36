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
//! can say why. `wrapper.rs` writes the scripts, `frame.rs` reads what they send back,
//! `ticket.rs` holds the plain values; the HTTP side lives in `transport::relay`.
//!
//! With `[cluster]` (`RelayOptions::cluster`) every ticket is also published to Redis
//! (`shared.rs`): the container's request may reach any replica, which checks it there, uses
//! it up there (exactly once cluster-wide) and hands an upload to the replica whose call
//! waits. The waiting call's channel stays local; everything needed to serve the ticket is
//! shared.

pub mod frame;
mod shared;
mod tagged;
mod ticket;
pub mod wrapper;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{Cluster, Listener};
use shared::SharedTickets;
pub use tagged::TaggedUploads;
pub use ticket::{Purpose, Refusal, Refusals, TicketBinding, TicketRefused, UploadError};

/// The request header that carries a ticket's key.
pub const KEY_HEADER: &str = "x-relay-key";

/// How often a waiting call looks for a result stored by another replica, in case the
/// wake-up message was lost.
const SHARED_POLL: Duration = Duration::from_secs(1);

/// Options for [`Relay::new`].
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// URL at which session containers reach this server (`MCP_RELAY_URL`); may be set later
    /// with [`Relay::set_base_url`] (e.g. once a port-0 listener is bound).
    pub base_url: Option<String>,
    /// Most tickets that may be pending at once (a bound on memory).
    pub max_pending: usize,
    /// `[cluster]`: publish tickets to Redis so any replica can serve them.
    pub cluster: Option<Cluster>,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            base_url: None,
            max_pending: 10_000,
            cluster: None,
        }
    }
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
    #[error("cannot create a relay ticket: {0}; nothing was run in the session")]
    Shared(String),
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
    /// Many POSTs, each handed to the receiver (bounded: a full channel makes the sender
    /// wait, which holds the wrapper's request open).
    Stream {
        max_bytes: usize,
        sender: mpsc::Sender<Bytes>,
    },
}

struct Entry {
    binding: TicketBinding,
    deadline: Instant,
    /// SHA-256 of the ticket's key (compared in constant time).
    key_digest: [u8; 32],
    refusals: Refusals,
    slot: Slot,
    /// `[cluster]`: the tag of a tagged ticket (see [`Relay::tag`]).
    tag: Option<String>,
}

/// The ticket table. Shared by the tools (which create tickets) and the `/relay` routes.
pub struct Relay {
    base_url: RwLock<Option<String>>,
    max_pending: usize,
    tickets: Mutex<HashMap<String, Entry>>,
    shared: Option<SharedTickets>,
    /// `[cluster]`: where uploads to tagged tickets of other replicas go.
    tagged: OnceLock<Arc<dyn TaggedUploads>>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("base_url", &self.base_url())
            .field("pending", &self.pending())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// Where an upload goes once its body has been read: to the tool waiting on this replica, or
/// (`[cluster]`) through Redis to the replica where it waits.
pub struct UploadSink {
    pub binding: TicketBinding,
    pub max_bytes: usize,
    target: SinkTarget,
}

enum SinkTarget {
    Local(oneshot::Sender<UploadResult>),
    /// Checked in Redis, used up only when the outcome is handed over.
    Shared {
        shared: SharedTickets,
        id: String,
        owner: String,
        /// The waiting call's channel when it waits on this replica.
        local: Option<oneshot::Sender<UploadResult>>,
        /// A tagged ticket of another replica: also handed to the tagged sink here.
        tagged: Option<(Arc<dyn TaggedUploads>, String)>,
    },
}

/// How long a stored result may wait for its call (the longest a ticket lives).
const RESULT_TTL: Duration = Duration::from_secs(24 * 3600);

impl UploadSink {
    /// Deliver the body; false if the tool stopped waiting (or, with `[cluster]`, another
    /// request used the ticket first) in the meantime.
    pub async fn deliver(self, body: Bytes) -> Result<bool, TicketRefused> {
        self.hand_over(Ok(body)).await
    }

    /// Tell the waiting tool the upload failed.
    pub async fn fail(self, error: UploadError) {
        let _ = self.hand_over(Err(error)).await;
    }

    async fn hand_over(self, result: UploadResult) -> Result<bool, TicketRefused> {
        let binding = self.binding;
        match self.target {
            SinkTarget::Local(sender) => Ok(sender.send(result).is_ok()),
            SinkTarget::Shared {
                shared,
                id,
                owner,
                local: Some(sender),
                ..
            } => {
                // The call waits here: use the ticket up in Redis, then hand over directly.
                let won = shared
                    .claim_upload(&id, &owner, None, RESULT_TTL)
                    .await
                    .map_err(|_| TicketRefused::Unavailable)?;
                Ok(won && sender.send(result).is_ok())
            }
            SinkTarget::Shared {
                shared,
                id,
                owner,
                local: None,
                tagged,
            } => {
                let won = shared
                    .claim_upload(&id, &owner, Some(&result), RESULT_TTL)
                    .await
                    .map_err(|_| TicketRefused::Unavailable)?;
                if let (true, Some((sink, tag))) = (won, tagged) {
                    sink.result(&tag, &binding, result).await;
                }
                Ok(won)
            }
        }
    }
}

impl Relay {
    pub fn new(options: RelayOptions) -> Self {
        Relay {
            base_url: RwLock::new(options.base_url.map(trim_base)),
            max_pending: options.max_pending.max(1),
            tickets: Mutex::new(HashMap::new()),
            shared: options.cluster.map(SharedTickets::new),
            tagged: OnceLock::new(),
        }
    }

    /// `[cluster]`: where this replica hands the uploads to tagged tickets other replicas
    /// created (set once, at start).
    pub fn set_tagged(&self, sink: Arc<dyn TaggedUploads>) {
        let _ = self.tagged.set(sink);
    }

    /// `[cluster]`: tag live tickets `ids` (of this replica) with `tag`, so the replica that
    /// receives their uploads hands them to its [`TaggedUploads`] sink — this one included:
    /// a tagged stream's chunks are all stored before they are answered, wherever they land,
    /// so the wrapper's order holds (a chunk queued here behind one stored at once by another
    /// replica would arrive out of order and be dropped). Without `[cluster]` nothing to do:
    /// every upload reaches this replica's collector in order.
    pub async fn tag(&self, ids: &[&str], tag: &str) -> Result<(), RelayError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        shared
            .tag(ids, tag)
            .await
            .map_err(|e| RelayError::Shared(e.to_string()))?;
        if let Ok(mut tickets) = self.tickets.lock() {
            for id in ids {
                if let Some(entry) = tickets.get_mut(*id) {
                    entry.tag = Some(tag.to_owned());
                }
            }
        }
        Ok(())
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

    /// `[cluster]`: this replica's handle on the shared state the tickets live in.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.shared.as_ref().map(SharedTickets::cluster)
    }

    /// Number of tickets currently pending on this replica.
    pub fn pending(&self) -> usize {
        self.tickets.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// How long a ticket created on this replica has left, and whom it is bound to (`None`
    /// once it is used, dropped or expired).
    pub fn lifetime(&self, ticket: &str) -> Option<(TicketBinding, Duration)> {
        let tickets = self.tickets.lock().ok()?;
        let entry = tickets.get(ticket)?;
        let left = entry.deadline.checked_duration_since(Instant::now())?;
        Some((entry.binding.clone(), left))
    }

    /// The purpose of `ticket` if it is live (on any replica, with `[cluster]`); `Err` when
    /// the shared table did not answer.
    pub async fn live_purpose(&self, ticket: &str) -> Result<Option<Purpose>, TicketRefused> {
        if let Some((binding, _)) = self.lifetime(ticket) {
            return Ok(Some(binding.purpose));
        }
        match &self.shared {
            Some(shared) => shared
                .live_purpose(ticket)
                .await
                .map_err(|_| TicketRefused::Unavailable),
            None => Ok(None),
        }
    }

    /// Create a ticket the container will POST at most `max_bytes` to.
    pub async fn expect_upload(
        self: &Arc<Self>,
        binding: TicketBinding,
        max_bytes: usize,
        ttl: Duration,
    ) -> Result<UploadTicket, RelayError> {
        let (sender, receiver) = oneshot::channel();
        let (id, url, key) =
            self.insert(binding.clone(), ttl, Slot::Upload { max_bytes, sender })?;
        let guard = TicketGuard {
            relay: self.clone(),
            id,
        };
        let listener = self
            .share(&guard.id, &binding, &key, max_bytes, None, ttl, true)
            .await?;
        Ok(UploadTicket {
            guard,
            url,
            key,
            receiver,
            listener,
            local_closed: false,
        })
    }

    /// Create a ticket the container will GET `bytes` from, once.
    pub async fn offer_download(
        self: &Arc<Self>,
        binding: TicketBinding,
        bytes: Bytes,
        ttl: Duration,
    ) -> Result<DownloadTicket, RelayError> {
        let (id, url, key) = self.insert(
            binding.clone(),
            ttl,
            Slot::Download {
                bytes: bytes.clone(),
            },
        )?;
        let guard = TicketGuard {
            relay: self.clone(),
            id,
        };
        self.share(&guard.id, &binding, &key, 0, Some(&bytes), ttl, false)
            .await?;
        Ok(DownloadTicket { guard, url, key })
    }

    /// With `[cluster]`: publish the ticket (listening for its upload first).
    #[allow(clippy::too_many_arguments)]
    async fn share(
        &self,
        id: &str,
        binding: &TicketBinding,
        key: &str,
        max_bytes: usize,
        download: Option<&Bytes>,
        ttl: Duration,
        listen: bool,
    ) -> Result<Option<Listener>, RelayError> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let listener = listen.then(|| shared.listen(id));
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        shared
            .publish(id, binding, &digest, max_bytes, download, ttl)
            .await
            .map_err(|e| RelayError::Shared(e.to_string()))?;
        Ok(listener)
    }

    /// Create a stream ticket: the container POSTs chunks of at most `max_bytes` to it, any
    /// number of times until it expires or is dropped; at most `depth` wait unread. With
    /// `[cluster]` it is published too, and chunks other replicas forward are fed to the same
    /// channel (in the order they arrive) until the ticket is dropped.
    pub async fn open_stream(
        self: &Arc<Self>,
        binding: TicketBinding,
        max_bytes: usize,
        depth: usize,
        ttl: Duration,
    ) -> Result<StreamTicket, RelayError> {
        let (sender, receiver) = mpsc::channel(depth.max(1));
        let (id, url, key) = self.insert(
            binding.clone(),
            ttl,
            Slot::Stream {
                max_bytes,
                sender: sender.clone(),
            },
        )?;
        let guard = TicketGuard {
            relay: self.clone(),
            id,
        };
        if let Some(shared) = &self.shared {
            let listener = shared.listen_stream(&guard.id, depth.max(1));
            self.share(&guard.id, &binding, &key, max_bytes, None, ttl, false)
                .await?;
            tokio::spawn(pump_forwarded(listener, sender));
        }
        Ok(StreamTicket {
            guard,
            url,
            key,
            receiver,
        })
    }

    /// Whether `ticket` is a live stream ticket (its requests are paced by the wrapper, not
    /// by the per-ticket retry budget).
    pub fn is_stream(&self, ticket: &str) -> bool {
        self.tickets.lock().is_ok_and(|t| {
            t.get(ticket).is_some_and(|e| {
                matches!(e.slot, Slot::Stream { .. }) && e.deadline > Instant::now()
            })
        })
    }

    /// Used by `POST /relay/{ticket}` on a stream ticket: where one chunk goes, when `key` is
    /// the ticket's key. The ticket stays live. With `[cluster]`, a stream ticket of another
    /// replica is checked in Redis and its chunk forwarded to that replica.
    pub async fn begin_chunk(
        &self,
        ticket: &str,
        key: Option<&str>,
    ) -> Result<ChunkSink, TicketRefused> {
        match (self.begin_local_chunk(ticket, key), &self.shared) {
            (Err(TicketRefused::Unknown), Some(shared)) => {
                let checked = shared.check(ticket, key, false).await?;
                if checked.binding.purpose != Purpose::ExecStream
                    || checked.owner == shared.replica_id()
                {
                    return Err(TicketRefused::Unknown);
                }
                let target = match (checked.tag, self.tagged.get()) {
                    (Some(tag), Some(sink)) => ChunkTarget::Tagged(sink.clone(), tag),
                    _ => ChunkTarget::Forward {
                        shared: shared.clone(),
                        id: ticket.to_owned(),
                        owner: checked.owner,
                    },
                };
                Ok(ChunkSink {
                    binding: checked.binding,
                    max_bytes: checked.max_bytes,
                    target,
                })
            }
            (local, _) => local,
        }
    }

    fn begin_local_chunk(
        &self,
        ticket: &str,
        key: Option<&str>,
    ) -> Result<ChunkSink, TicketRefused> {
        let mut tickets = self.tickets.lock().map_err(|_| TicketRefused::Unknown)?;
        let Some(entry) = tickets.get_mut(ticket) else {
            return Err(TicketRefused::Unknown);
        };
        if entry.deadline <= Instant::now() {
            return Err(TicketRefused::Unknown);
        }
        let presented = Sha256::digest(key.unwrap_or_default().as_bytes());
        if !bool::from(presented.as_slice().ct_eq(&entry.key_digest)) {
            entry.refusals.wrong_key = entry.refusals.wrong_key.saturating_add(1);
            return Err(TicketRefused::WrongKey);
        }
        match &entry.slot {
            Slot::Stream { max_bytes, sender } => Ok(ChunkSink {
                binding: entry.binding.clone(),
                max_bytes: *max_bytes,
                target: match (&entry.tag, self.tagged.get()) {
                    (Some(tag), Some(sink)) => ChunkTarget::Tagged(sink.clone(), tag.clone()),
                    _ => ChunkTarget::Local(sender.clone()),
                },
            }),
            _ => Err(TicketRefused::Unknown),
        }
    }

    /// Used by `GET /relay/{ticket}`: the bytes of a live download ticket, consuming it when
    /// `key` is its key.
    pub async fn take_download(
        &self,
        ticket: &str,
        key: Option<&str>,
    ) -> Result<(TicketBinding, Bytes), TicketRefused> {
        if let Some(shared) = &self.shared {
            let checked = shared.check(ticket, key, true).await?;
            let bytes = shared.claim_download(ticket).await?;
            self.remove(ticket);
            return Ok((checked.binding, bytes));
        }
        let entry = self.take(ticket, key, true)?;
        match entry.slot {
            Slot::Download { bytes } => Ok((entry.binding, bytes)),
            Slot::Upload { .. } | Slot::Stream { .. } => Err(TicketRefused::Unknown),
        }
    }

    /// Used by `POST /relay/{ticket}`: the sink of a live upload ticket, consuming it when
    /// `key` is its key (with `[cluster]`: when the sink hands the upload over).
    pub async fn begin_upload(
        &self,
        ticket: &str,
        key: Option<&str>,
    ) -> Result<UploadSink, TicketRefused> {
        if let Some(shared) = &self.shared {
            let checked = shared.check(ticket, key, false).await?;
            if checked.binding.purpose == Purpose::ExecStream {
                // Never use a stream ticket up as an upload.
                return Err(TicketRefused::Unknown);
            }
            let local = if checked.owner == shared.replica_id() {
                // The call waits on this replica: take its channel out of the local table.
                // An earlier attempt may have taken it and broken off before using the
                // ticket up (the upload was cut, Redis did not answer): the ticket is still
                // live in Redis, so this retry goes the shared way (stored, then the waiter
                // woken) instead of being refused — a refused retry would lose the result.
                match self.take_local_upload(ticket) {
                    Ok(sender) => sender,
                    Err(()) => return Err(TicketRefused::Unknown),
                }
            } else {
                None
            };
            let tagged = match (checked.tag, self.tagged.get(), &local) {
                (Some(tag), Some(sink), None) => Some((sink.clone(), tag)),
                _ => None,
            };
            return Ok(UploadSink {
                binding: checked.binding,
                max_bytes: checked.max_bytes,
                target: SinkTarget::Shared {
                    shared: shared.clone(),
                    id: ticket.to_owned(),
                    owner: checked.owner,
                    local,
                    tagged,
                },
            });
        }
        let entry = self.take(ticket, key, false)?;
        match entry.slot {
            Slot::Upload { max_bytes, sender } => Ok(UploadSink {
                binding: entry.binding,
                max_bytes,
                target: SinkTarget::Local(sender),
            }),
            Slot::Download { .. } | Slot::Stream { .. } => Err(TicketRefused::Unknown),
        }
    }

    /// Count a request to `ticket` that a rate limit turned away (for the tool's message when
    /// no result arrives). Unknown tickets are ignored.
    pub async fn note_rate_limited(&self, ticket: &str) {
        match &self.shared {
            Some(shared) => shared.note(ticket, Refusal::RateLimited).await,
            None => self.note(ticket, Refusal::RateLimited),
        }
    }

    /// The refusals counted on a pending ticket so far.
    pub async fn refusals(&self, ticket: &str) -> Refusals {
        if let Some(shared) = &self.shared {
            return shared.refusals(ticket).await;
        }
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

    /// The waiting call's channel of upload ticket `ticket` on this replica: `Ok(None)` when it
    /// is not here (any more), `Err` when the ticket here is of another kind (left alone).
    fn take_local_upload(&self, ticket: &str) -> Result<Option<oneshot::Sender<UploadResult>>, ()> {
        let Ok(mut tickets) = self.tickets.lock() else {
            return Ok(None);
        };
        match tickets.get(ticket).map(|e| &e.slot) {
            None => return Ok(None),
            Some(Slot::Upload { .. }) => {}
            Some(_) => return Err(()),
        }
        match tickets.remove(ticket).map(|e| e.slot) {
            Some(Slot::Upload { sender, .. }) => Ok(Some(sender)),
            _ => Ok(None),
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
        if entry.binding.purpose.is_download() != download
            || matches!(entry.slot, Slot::Stream { .. })
        {
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
                tag: None,
            },
        );
        Ok((id, url, key))
    }

    fn remove(&self, id: &str) {
        if let Ok(mut tickets) = self.tickets.lock() {
            tickets.remove(id);
        }
    }

    /// The ticket's call ended: remove it here and from the shared table.
    fn forget(&self, id: &str) {
        self.remove(id);
        if let Some(shared) = &self.shared {
            shared.forget(id);
        }
    }

    /// With `[cluster]`: the result another replica stored for `ticket`, if any.
    async fn shared_result(&self, ticket: &str) -> Option<UploadResult> {
        let shared = self.shared.as_ref()?;
        match shared.stored_result(ticket).await {
            Ok(result) => result,
            Err(e) => {
                tracing::debug!(error = %e, "relay: could not look for a shared result");
                None
            }
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
        self.relay.forget(&self.id);
    }
}

/// A ticket the container POSTs to; await [`UploadTicket::received`] for the body.
pub struct UploadTicket {
    guard: TicketGuard,
    url: String,
    key: String,
    receiver: oneshot::Receiver<UploadResult>,
    /// `[cluster]`: wake-ups for a result another replica stored.
    listener: Option<Listener>,
    /// The local channel has finished (only the shared result can come now).
    local_closed: bool,
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
    pub async fn refusals(&self) -> Refusals {
        self.guard.relay.refusals(&self.guard.id).await
    }

    /// Wait for the upload. Cancel-safe; combine with a timeout and the call's cancellation.
    /// `Err(Broken)` also means the ticket was dropped from the table (it expired).
    pub async fn received(&mut self) -> UploadResult {
        let Some(listener) = self.listener.as_mut() else {
            return match (&mut self.receiver).await {
                Ok(result) => result,
                Err(_) => Err(UploadError::Broken("the ticket expired".into())),
            };
        };
        let relay = self.guard.relay.clone();
        let id = self.guard.id.clone();
        let mut poll = tokio::time::interval(SHARED_POLL);
        loop {
            if self.local_closed {
                tokio::select! {
                    Some(_) = listener.recv() => {}
                    _ = poll.tick() => {}
                }
            } else {
                tokio::select! {
                    local = &mut self.receiver => match local {
                        Ok(result) => return result,
                        // With [cluster] the local channel also closes when the upload this
                        // replica received was used up elsewhere first: keep looking in Redis.
                        // Never poll the finished channel again (this future may be dropped
                        // and `received` called anew).
                        Err(_) => self.local_closed = true,
                    },
                    Some(_) = listener.recv() => {}
                    _ = poll.tick() => {}
                }
            }
            if let Some(result) = relay.shared_result(&id).await {
                return result;
            }
        }
    }
}

/// Where one chunk POSTed to a stream ticket goes.
pub struct ChunkSink {
    pub binding: TicketBinding,
    pub max_bytes: usize,
    target: ChunkTarget,
}

enum ChunkTarget {
    /// The ticket's channel on this replica.
    Local(mpsc::Sender<Bytes>),
    /// `[cluster]`: the inbox of the replica that holds the ticket.
    Forward {
        shared: SharedTickets,
        id: String,
        owner: String,
    },
    /// `[cluster]`: a tagged ticket of another replica, handed to the tagged sink here.
    Tagged(Arc<dyn TaggedUploads>, String),
}

impl ChunkSink {
    /// Hand the chunk over, waiting while a local receiver is behind; `Ok(false)` when
    /// nobody receives any more (or, forwarded, the owning replica's inbox did not get it).
    pub async fn deliver(self, body: Bytes) -> Result<bool, TicketRefused> {
        match self.target {
            ChunkTarget::Local(sender) => Ok(sender.send(body).await.is_ok()),
            ChunkTarget::Forward { shared, id, owner } => {
                shared.forward_chunk(&id, &owner, &body).await.map_err(|e| {
                    tracing::warn!(error = %e, "relay: a stream chunk could not be forwarded");
                    TicketRefused::Unavailable
                })
            }
            ChunkTarget::Tagged(sink, tag) => Ok(sink.chunk(&tag, body).await),
        }
    }
}

/// `[cluster]`: feed the chunks other replicas forward to a stream ticket into its channel,
/// in arrival order, until the ticket's reader is gone.
async fn pump_forwarded(mut listener: Listener, sender: mpsc::Sender<Bytes>) {
    loop {
        tokio::select! {
            _ = sender.closed() => return,
            chunk = listener.recv() => match chunk {
                Some(chunk) => {
                    if sender.send(chunk).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}

/// A ticket the container POSTs output chunks to, many times; read them with
/// [`StreamTicket::next`]. Dropping it ends the stream.
pub struct StreamTicket {
    guard: TicketGuard,
    url: String,
    key: String,
    receiver: mpsc::Receiver<Bytes>,
}

impl fmt::Debug for StreamTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTicket").finish_non_exhaustive()
    }
}

impl StreamTicket {
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn id(&self) -> &str {
        &self.guard.id
    }

    /// The key every chunk must carry in [`KEY_HEADER`] (secret).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The next chunk (cancel-safe); `None` once the ticket is gone.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.receiver.recv().await
    }

    /// A chunk that has already arrived, without waiting.
    pub fn try_next(&mut self) -> Option<Bytes> {
        self.receiver.try_recv().ok()
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
            cluster: None,
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
            .await
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
            relay.take_download(t.id(), Some(t.key())).await.is_err(),
            "wrong method"
        );
        assert_eq!(
            relay.begin_upload(t.id(), None).await.err(),
            Some(TicketRefused::WrongKey),
            "no key"
        );
        assert_eq!(
            relay.begin_upload(t.id(), Some("forged")).await.err(),
            Some(TicketRefused::WrongKey),
            "wrong key"
        );
        assert_eq!(t.refusals().await.wrong_key, 2);
        let sink = relay
            .begin_upload(t.id(), Some(t.key()))
            .await
            .ok()
            .unwrap();
        assert_eq!(
            relay.begin_upload(t.id(), Some(t.key())).await.err(),
            Some(TicketRefused::Unknown),
            "second use"
        );
        assert!(sink.deliver(Bytes::from_static(b"hi")).await.unwrap());
        assert_eq!(t.received().await.unwrap(), Bytes::from_static(b"hi"));
    }

    #[tokio::test]
    async fn dropped_and_expired_tickets_are_gone() {
        let relay = relay();
        let t = relay
            .expect_upload(binding(Purpose::ExecResult), 10, Duration::from_secs(5))
            .await
            .unwrap();
        let id = t.id().to_string();
        drop(t);
        assert_eq!(relay.pending(), 0);
        assert!(relay.begin_upload(&id, None).await.is_err());

        let d = relay
            .offer_download(
                binding(Purpose::FileDownload),
                Bytes::from_static(b"x"),
                Duration::from_millis(1),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let id = d.url().rsplit('/').next().unwrap().to_string();
        assert_eq!(d.id(), id);
        assert!(relay.lifetime(&id).is_none(), "expired");
        assert!(
            relay.take_download(&id, Some(d.key())).await.is_err(),
            "expired"
        );
    }

    #[tokio::test]
    async fn pending_is_bounded_and_base_url_required() {
        let relay = relay();
        let mut keep = Vec::new();
        for _ in 0..3 {
            keep.push(
                relay
                    .expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5))
                    .await
                    .unwrap(),
            );
        }
        assert!(matches!(
            relay
                .expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5))
                .await,
            Err(RelayError::Busy(3))
        ));
        drop(keep);
        let bare = Arc::new(Relay::new(RelayOptions::default()));
        assert!(matches!(
            bare.expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5))
                .await,
            Err(RelayError::NoBaseUrl)
        ));
        bare.set_base_url("http://h:1");
        assert!(
            bare.expect_upload(binding(Purpose::Listing), 1, Duration::from_secs(5))
                .await
                .is_ok()
        );
        assert!(matches!(
            bare.expect_upload(binding(Purpose::Listing), 1, Duration::MAX)
                .await,
            Err(RelayError::TooLong(_))
        ));
    }
}
