//! Role decisions: which tools a role may see and call, which roles receive a session's login
//! URL, and which roles see every session rather than their own Kasm user's.

use super::Role;

/// Whether a principal with `role` may see (in `tools/list`) and call a tool that needs
/// `min_role`. Roles are ordered: each may do everything the ones before it may.
pub fn may_use_tool(role: Role, min_role: Role) -> bool {
    role >= min_role
}

/// The least role that may run commands in sessions (`execute_kasm_command`), and so also
/// read, list and kill the background jobs its commands became (`get_command_output`,
/// `list_commands`, `kill_command`): a job's output is command output, and a kill changes
/// the session as a command does. Each principal sees only its own jobs, whatever its role.
pub const COMMAND_ROLE: Role = Role::Operator;

/// Whether a principal may receive a session URL: it embeds a Kasm login token that gives
/// full interactive control of the desktop, so only roles that may change sessions get it.
pub fn may_see_session_url(role: Role) -> bool {
    role >= Role::Operator
}

/// Whether a principal sees every session of the Kasm installation (admins), rather than
/// only those of the Kasm user it acts as.
pub fn sees_every_session(role: Role) -> bool {
    role == Role::Admin
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Admin, Operator, Viewer};

    #[test]
    fn role_by_tool() {
        // (principal's role, tool's min_role, allowed)
        let table = [
            (Viewer, Viewer, true),
            (Viewer, Operator, false),
            (Viewer, Admin, false),
            (Operator, Viewer, true),
            (Operator, Operator, true),
            (Operator, Admin, false),
            (Admin, Viewer, true),
            (Admin, Operator, true),
            (Admin, Admin, true),
        ];
        for (role, min_role, allowed) in table {
            assert_eq!(
                may_use_tool(role, min_role),
                allowed,
                "{role} -> {min_role}"
            );
        }
    }

    #[test]
    fn job_tools_need_the_role_that_runs_commands() {
        assert!(!may_use_tool(Viewer, COMMAND_ROLE));
        assert!(may_use_tool(Operator, COMMAND_ROLE));
        assert!(may_use_tool(Admin, COMMAND_ROLE));
    }

    #[test]
    fn session_urls_and_every_session_by_role() {
        // (role, gets session URLs, sees every session)
        let table = [
            (Viewer, false, false),
            (Operator, true, false),
            (Admin, true, true),
        ];
        for (role, url, every) in table {
            assert_eq!(may_see_session_url(role), url, "{role}");
            assert_eq!(sees_every_session(role), every, "{role}");
        }
    }
}
