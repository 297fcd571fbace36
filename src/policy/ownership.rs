//! Whose sessions a principal acts on: which Kasm user it acts as (its own, else the server's
//! default), and — given the owner the tool fetched from Kasm — whether it may touch a session.

use super::Principal;
use super::roles::sees_every_session;

/// No Kasm user to act as: neither the principal nor the server names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "no Kasm user to act as: set KASM_USER_ID (kasm.user_id) on the server, or kasm_user_id on this principal's token"
)]
pub struct NoKasmUser;

/// The Kasm user a principal acts as: its own (`kasm_user_id` of its token), else the server's
/// default (`kasm.user_id`). The one place this fallback is decided.
pub fn acting_kasm_user<'a>(
    principal: &'a Principal,
    server_default: Option<&'a str>,
) -> Result<&'a str, NoKasmUser> {
    principal
        .kasm_user_id
        .as_deref()
        .or(server_default)
        .ok_or(NoKasmUser)
}

/// Whether `principal`, acting as Kasm user `acting_as`, may use a session that Kasm says
/// belongs to `owner` (both ids in one normal form; `None`: Kasm named no owner). Admins may
/// use every session; everyone else only their Kasm user's (or one with no owner recorded,
/// which Kasm returned from the acting user's own list).
pub fn may_touch_session(principal: &Principal, acting_as: &str, owner: Option<&str>) -> bool {
    sees_every_session(principal.role) || owner.is_none_or(|owner| owner == acting_as)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Role::{self, Admin, Operator, Viewer};

    fn principal(role: Role, own: Option<&str>) -> Principal {
        Principal {
            name: "p".into(),
            role,
            kasm_user_id: own.map(str::to_owned),
            oauth: None,
        }
    }

    #[test]
    fn acting_user_is_the_principals_own_else_the_server_default() {
        // (principal's own user, server default, acts as)
        let table = [
            (Some("own"), Some("default"), Ok("own")),
            (Some("own"), None, Ok("own")),
            (None, Some("default"), Ok("default")),
            (None, None, Err(NoKasmUser)),
        ];
        for (own, default, expected) in table {
            for role in [Viewer, Operator, Admin] {
                let p = principal(role, own);
                assert_eq!(
                    acting_kasm_user(&p, default),
                    expected,
                    "{own:?} {default:?}"
                );
            }
        }
        assert!(NoKasmUser.to_string().contains("KASM_USER_ID"));
    }

    #[test]
    fn session_ownership() {
        // (role, acting as, owner Kasm reported, may touch)
        let table = [
            (Viewer, "u1", Some("u1"), true),
            (Viewer, "u1", Some("u2"), false),
            (Viewer, "u1", None, true),
            (Operator, "u1", Some("u1"), true),
            (Operator, "u1", Some("u2"), false),
            (Operator, "u1", None, true),
            (Admin, "u1", Some("u1"), true),
            (Admin, "u1", Some("u2"), true),
            (Admin, "u1", None, true),
        ];
        for (role, me, owner, allowed) in table {
            let p = principal(role, Some(me));
            assert_eq!(
                may_touch_session(&p, me, owner),
                allowed,
                "{role} as {me} on {owner:?}"
            );
        }
    }
}
