//! The simulator's in-memory database: users, groups and sessions, plus the session
//! lifecycle clock (a session is `starting` until its `ready_at`, then `running`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::config::random_hex;
use super::images::TERMINAL_IMAGE_ID;

/// Id of the seeded user `agent@example.com` (the one tools act as by default).
pub const DEFAULT_USER_ID: &str = "4bbb6998064a4d1ea4685f3cdd05feb4";
pub const DEFAULT_USERNAME: &str = "agent@example.com";
pub const ALL_USERS_GROUP_ID: &str = "68d557ac4cac42cca9f31c7c853de0f3";
pub const ADMINS_GROUP_ID: &str = "a0b1c2d3e4f5460718293a4b5c6d7e8f";
pub const DEVELOPERS_GROUP_ID: &str = "d3e4f5a6b7c8490a1b2c3d4e5f607182";

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting { since: Instant, ready_at: Instant },
    Running,
    Paused,
    Stopped,
}

impl Phase {
    /// Kasm's `operational_status` word.
    pub fn word(self) -> &'static str {
        match self {
            Phase::Starting { .. } => "starting",
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Stopped => "stopped",
        }
    }

    /// How far a start has come, 0–100 (100 once running).
    pub fn progress(self, now: Instant) -> u8 {
        match self {
            Phase::Starting { since, ready_at } => {
                let total = ready_at.saturating_duration_since(since).as_millis().max(1);
                let done = now.saturating_duration_since(since).as_millis();
                u8::try_from((done * 100 / total).min(99)).unwrap_or(99)
            }
            _ => 100,
        }
    }
}

/// One session ("kasm").
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub kasm_id: String,
    pub user_id: String,
    pub image_id: String,
    pub phase: Phase,
    pub share_id: Option<String>,
    pub session_token: String,
    pub container_id: String,
    pub container_ip: String,
    pub server_id: String,
    pub start_date: OffsetDateTime,
    pub keepalive_date: OffsetDateTime,
    pub expiration_date: OffsetDateTime,
    /// The container's environment (`request_kasm`'s `environment` plus `KASM_URL`).
    pub environment: BTreeMap<String, String>,
}

/// How long a keepalive keeps a session alive.
pub const KEEPALIVE_EXPIRATION: Duration = Duration::from_secs(3600);

impl SessionRecord {
    /// Advance `starting` to `running` once the start delay has passed.
    pub fn refresh(&mut self, now: Instant) {
        if let Phase::Starting { ready_at, .. } = self.phase
            && now >= ready_at
        {
            self.phase = Phase::Running;
        }
    }

    /// Begin (re)starting: `starting` for `delay`, then `running`.
    pub fn start(&mut self, now: Instant, delay: Duration) {
        self.phase = Phase::Starting {
            since: now,
            ready_at: now + delay,
        };
        self.refresh(now);
    }

    /// Push the expiration out, as a keepalive does.
    pub fn touch(&mut self) {
        self.keepalive_date = OffsetDateTime::now_utc();
        self.expiration_date = self.keepalive_date + KEEPALIVE_EXPIRATION;
    }
}

/// A Kasm user.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user_id: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub organization: Option<String>,
    pub notes: Option<String>,
    pub locked: bool,
    pub disabled: bool,
    pub anonymous: bool,
    /// Group ids, in joining order.
    pub groups: Vec<String>,
    pub created: OffsetDateTime,
    pub last_session: Option<OffsetDateTime>,
    pub attributes: Map<String, Value>,
}

impl UserRecord {
    /// A new local user in "All Users" with default attributes.
    pub fn new(user_id: String, username: String) -> Self {
        UserRecord {
            user_id,
            username,
            first_name: None,
            last_name: None,
            phone: None,
            organization: None,
            notes: None,
            locked: false,
            disabled: false,
            anonymous: false,
            groups: vec![ALL_USERS_GROUP_ID.to_string()],
            created: OffsetDateTime::now_utc(),
            last_session: None,
            attributes: default_attributes(),
        }
    }
}

/// The attribute set Kasm keeps per user (`get_attributes`).
pub fn default_attributes() -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("default_image", Value::Null),
        ("preferred_language", Value::from("Auto")),
        ("preferred_timezone", Value::from("Auto")),
        ("ssh_public_key", Value::from("")),
        ("theme", Value::from("Light")),
        ("show_tips", Value::from(true)),
        ("auto_login_kasm", Value::from(false)),
        ("toggle_control_panel", Value::from(false)),
        ("chat_sfx", Value::from(true)),
    ] {
        m.insert(k.to_string(), v);
    }
    m
}

/// A group (settings that matter to the simulator are constants: stop/pause need Sessions Modify).
#[derive(Debug, Clone)]
pub struct GroupRecord {
    pub group_id: &'static str,
    pub name: &'static str,
}

pub const GROUPS: &[GroupRecord] = &[
    GroupRecord {
        group_id: ALL_USERS_GROUP_ID,
        name: "All Users",
    },
    GroupRecord {
        group_id: ADMINS_GROUP_ID,
        name: "Administrators",
    },
    GroupRecord {
        group_id: DEVELOPERS_GROUP_ID,
        name: "Developers",
    },
];

/// Look a group up by normalised id.
pub fn group(group_id: &str) -> Option<&'static GroupRecord> {
    GROUPS.iter().find(|g| g.group_id == group_id)
}

/// The whole database.
#[derive(Debug, Default)]
pub struct Store {
    pub users: HashMap<String, UserRecord>,
    pub sessions: BTreeMap<String, SessionRecord>,
}

impl Store {
    /// The installation Kasm ships with, plus the agent user.
    pub fn seeded() -> Self {
        let mut store = Store::default();
        let mut agent = UserRecord::new(DEFAULT_USER_ID.to_string(), DEFAULT_USERNAME.into());
        agent.first_name = Some("Agent".into());
        agent.last_name = Some("Smith".into());
        agent.organization = Some("example".into());
        agent
            .attributes
            .insert("default_image".into(), Value::from(TERMINAL_IMAGE_ID));
        let mut admin = UserRecord::new(
            "f3b1c0de2a4b4c6d8e0f1a2b3c4d5e6f".into(),
            "admin@kasm.local".into(),
        );
        admin.groups.push(ADMINS_GROUP_ID.to_string());
        let user = UserRecord::new(
            "0c1d2e3f4a5b4c6d8e9fa0b1c2d3e4f5".into(),
            "user@kasm.local".into(),
        );
        for u in [agent, admin, user] {
            store.users.insert(u.user_id.clone(), u);
        }
        store
    }

    /// Advance every session's clock.
    pub fn refresh(&mut self, now: Instant) {
        for s in self.sessions.values_mut() {
            s.refresh(now);
        }
    }

    pub fn user_by_name(&self, username: &str) -> Option<&UserRecord> {
        self.users
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// Sessions of one user, oldest first.
    pub fn sessions_of<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a SessionRecord> {
        self.sessions.values().filter(move |s| s.user_id == user_id)
    }

    /// A new anonymous user (what Kasm creates when `request_kasm`/`join_kasm` get no `user_id`).
    pub fn create_anonymous_user(&mut self) -> String {
        let user_id = random_hex(16);
        let mut user = UserRecord::new(user_id.clone(), format!("anon-{}", &user_id[..8]));
        user.anonymous = true;
        self.users.insert(user_id.clone(), user);
        user_id
    }

    pub fn find_share(&self, share_id: &str) -> Option<&SessionRecord> {
        self.sessions
            .values()
            .find(|s| s.share_id.as_deref() == Some(share_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: Instant) -> SessionRecord {
        let t = OffsetDateTime::now_utc();
        SessionRecord {
            kasm_id: random_hex(16),
            user_id: DEFAULT_USER_ID.into(),
            image_id: TERMINAL_IMAGE_ID.into(),
            phase: Phase::Running,
            share_id: None,
            session_token: String::new(),
            container_id: String::new(),
            container_ip: String::new(),
            server_id: String::new(),
            start_date: t,
            keepalive_date: t,
            expiration_date: t,
            environment: BTreeMap::new(),
        }
        .started(now)
    }

    impl SessionRecord {
        fn started(mut self, now: Instant) -> Self {
            self.start(now, Duration::from_secs(10));
            self
        }
    }

    #[test]
    fn starting_becomes_running_after_the_delay() {
        let now = Instant::now();
        let mut s = session(now);
        assert_eq!(s.phase.word(), "starting");
        assert_eq!(s.phase.progress(now + Duration::from_secs(5)), 50);
        s.refresh(now + Duration::from_secs(9));
        assert_eq!(s.phase.word(), "starting");
        s.refresh(now + Duration::from_secs(10));
        assert_eq!(s.phase.word(), "running");
        assert_eq!(s.phase.progress(now), 100);
    }

    #[test]
    fn zero_delay_is_running_at_once() {
        let now = Instant::now();
        let mut s = session(now);
        s.start(now, Duration::ZERO);
        assert_eq!(s.phase, Phase::Running);
    }

    #[test]
    fn seeded_store_has_the_agent_user() {
        let store = Store::seeded();
        let agent = store.user_by_name("AGENT@example.com").unwrap();
        assert_eq!(agent.user_id, DEFAULT_USER_ID);
        assert_eq!(agent.groups, vec![ALL_USERS_GROUP_ID.to_string()]);
        assert!(group(ADMINS_GROUP_ID).is_some());
    }
}
