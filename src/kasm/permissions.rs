//! Which Kasm API-key permission each classic endpoint needs (`reference/kasm-api.md` §3).
//!
//! One table serves three users: the client (to name the missing permission in a 401),
//! the simulator (to enforce per-key permission sets) and `diagnose_kasm_permissions`.

/// The Kasm permission names, as shown in the admin UI.
pub mod names {
    pub const USER: &str = "User";
    pub const GLOBAL_ADMIN: &str = "Global Admin";
    pub const USERS_VIEW: &str = "Users View";
    pub const USERS_MODIFY: &str = "Users Modify";
    pub const USERS_CREATE: &str = "Users Create";
    pub const USERS_DELETE: &str = "Users Delete";
    pub const USERS_AUTH_SESSION: &str = "Users Auth Session";
    pub const GROUPS_MODIFY: &str = "Groups Modify";
    pub const SESSIONS_VIEW: &str = "Sessions View";
    pub const SESSIONS_MODIFY: &str = "Sessions Modify";
    pub const SESSIONS_DELETE: &str = "Sessions Delete";
    pub const SESSION_RECORDINGS_VIEW: &str = "Session Recordings View";
    pub const IMAGES_VIEW: &str = "Images View";
}

use names::*;

/// An endpoint of the classic API and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSpec {
    pub name: &'static str,
    /// The permission the endpoint itself asks for.
    pub permission: &'static str,
    /// Whether a Read-Only key may call it (1.15 flags, quirks included).
    pub read_only: bool,
}

const fn ep(name: &'static str, permission: &'static str, read_only: bool) -> EndpointSpec {
    EndpointSpec {
        name,
        permission,
        read_only,
    }
}

/// Every endpoint the client implements.
pub const ENDPOINTS: &[EndpointSpec] = &[
    ep("request_kasm", USER, false),
    ep("get_kasm_status", USER, true),
    ep("get_kasms", SESSIONS_VIEW, true),
    ep("get_user_kasms", USER, true),
    ep("destroy_kasm", USER, false),
    ep("stop_kasm", USER, false),
    ep("pause_kasm", USER, false),
    ep("resume_kasm", USER, false),
    ep("exec_command_kasm", SESSIONS_MODIFY, false),
    ep("keepalive", SESSIONS_MODIFY, true),
    ep("get_kasm_screenshot", USER, true),
    ep("get_kasm_frame_stats", USER, true),
    ep("get_kasm_bottleneck_stats", USER, true),
    ep("join_kasm", USER, true),
    ep("get_images", IMAGES_VIEW, true),
    ep("get_users", USERS_VIEW, true),
    ep("get_user", USERS_VIEW, true),
    ep("create_user", USERS_CREATE, false),
    ep("update_user", USERS_MODIFY, false),
    ep("delete_user", USERS_DELETE, false),
    ep("logout_user", USERS_AUTH_SESSION, false),
    ep("get_login", USERS_AUTH_SESSION, true),
    ep("get_attributes", USERS_VIEW, true),
    ep("update_user_attributes", USERS_MODIFY, true),
    ep("add_user_group", GROUPS_MODIFY, true),
    ep("remove_user_group", GROUPS_MODIFY, true),
    ep("get_session_recordings", SESSION_RECORDINGS_VIEW, true),
];

/// Look an endpoint up by name.
pub fn endpoint(name: &str) -> Option<&'static EndpointSpec> {
    ENDPOINTS.iter().find(|e| e.name == name)
}

/// Whether a key holding `held` permissions may call an endpoint needing `needed`.
///
/// Global Admin implies every permission except `User` (Kasm's `is_authorized_action`).
pub fn grants(held: &[String], needed: &str) -> bool {
    held.iter().any(|p| p == needed) || (needed != USER && held.iter().any(|p| p == GLOBAL_ADMIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_admin_does_not_imply_user() {
        let admin = vec![GLOBAL_ADMIN.to_string()];
        assert!(grants(&admin, SESSIONS_VIEW));
        assert!(!grants(&admin, USER));
        assert!(grants(&[USER.to_string()], USER));
    }

    #[test]
    fn every_endpoint_is_listed_once() {
        for e in ENDPOINTS {
            assert_eq!(ENDPOINTS.iter().filter(|x| x.name == e.name).count(), 1);
            assert_eq!(endpoint(e.name), Some(e));
        }
    }
}
