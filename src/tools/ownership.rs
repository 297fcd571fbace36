//! Which Kasm user owns a session: a bounded cache with expiry, `kasm_id → owner user id`.
//!
//! Ownership of a `kasm_id` never changes during the session's life, so the tools learn it
//! once — when the session is created through this server, or from the single
//! `get_kasm_status` lookup the first time a session is seen — and reuse it. A session-scoped
//! call then needs exactly one Kasm request for its own work instead of listing sessions to
//! find the owner. Entries go when the session is destroyed through this server, when Kasm
//! says it does not exist, after [`OwnerCache::DEFAULT_TTL`] (so a session destroyed behind
//! this server's back is not remembered forever), and, when the cache is full, the entries
//! learned longest ago go first.
//!
//! The cache supplies a fact (who owns the session); whether the caller may touch it is the
//! access decision's job.

// foldhash, not SipHash: looked up on every session-scoped call; keyed by normalised Kasm ids
// of sessions Kasm confirmed, bounded by `capacity`.
use foldhash::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One learned owner.
#[derive(Debug, Clone)]
struct Entry {
    owner: String,
    learned: Instant,
}

/// `kasm_id → owner user id`, both normalised (32 lowercase hex digits).
#[derive(Debug)]
pub struct OwnerCache {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    ttl: Duration,
}

impl Default for OwnerCache {
    fn default() -> Self {
        OwnerCache::new(OwnerCache::DEFAULT_CAPACITY, OwnerCache::DEFAULT_TTL)
    }
}

impl OwnerCache {
    /// Far more sessions than one Kasm deployment runs at once; ~100 bytes each.
    pub const DEFAULT_CAPACITY: usize = 16_384;
    /// Long enough that a working session is looked up once, short enough that sessions
    /// destroyed elsewhere are forgotten.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 60);

    /// A cache of at most `capacity` owners (at least one), each kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        OwnerCache {
            entries: Mutex::new(HashMap::default()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The owner of `kasm_id`, if learned and not expired.
    pub fn owner(&self, kasm_id: &str) -> Option<String> {
        let mut entries = self.lock();
        match entries.get(kasm_id) {
            Some(entry) if entry.learned.elapsed() < self.ttl => Some(entry.owner.clone()),
            Some(_) => {
                entries.remove(kasm_id);
                None
            }
            None => None,
        }
    }

    /// Remember that `owner` owns `kasm_id`.
    pub fn remember(&self, kasm_id: &str, owner: &str) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(kasm_id) {
            let ttl = self.ttl;
            entries.retain(|_, e| e.learned.elapsed() < ttl);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop the oldest tenth, so this O(n) sweep
                // runs at most once per capacity/10 new sessions.
                let mut ages: Vec<Instant> = entries.values().map(|e| e.learned).collect();
                ages.sort_unstable();
                let cut = ages[(self.capacity / 10).min(ages.len() - 1)];
                entries.retain(|_, e| e.learned > cut);
            }
        }
        entries.insert(
            kasm_id.to_string(),
            Entry {
                owner: owner.to_string(),
                learned: Instant::now(),
            },
        );
    }

    /// Forget `kasm_id` (destroyed, or Kasm says it does not exist).
    pub fn forget(&self, kasm_id: &str) {
        self.lock().remove(kasm_id);
    }

    /// How many owners are cached (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_forgets_and_expires() {
        let cache = OwnerCache::new(8, Duration::from_millis(50));
        assert_eq!(cache.owner("k1"), None);
        cache.remember("k1", "u1");
        assert_eq!(cache.owner("k1").as_deref(), Some("u1"));
        cache.forget("k1");
        assert_eq!(cache.owner("k1"), None);
        cache.remember("k2", "u2");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.owner("k2"), None, "expired entries are not served");
        assert!(cache.is_empty(), "and are dropped when seen");
    }

    #[test]
    fn stays_bounded_and_keeps_the_newest() {
        let cache = OwnerCache::new(100, Duration::from_secs(60));
        for i in 0..1000 {
            cache.remember(&format!("k{i}"), "u");
            assert!(cache.len() <= 100, "{} entries", cache.len());
        }
        assert_eq!(cache.owner("k999").as_deref(), Some("u"));
        assert_eq!(cache.owner("k0"), None);
    }
}
