//! Which container user `execute_kasm_command` may run as: the image's own user always; another
//! one only if `policy.allowed_exec_users` lists it.

/// Whether a command may run as `requested` (`None`: the image's own user) when the server
/// allows `allowed` (`policy.allowed_exec_users`; empty: only the image's own user).
pub fn may_run_as(allowed: &[String], requested: Option<&str>) -> bool {
    match requested {
        None => true,
        Some(user) => allowed.iter().any(|a| a == user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_users() {
        let none: Vec<String> = Vec::new();
        let some = vec!["root".to_string(), "1000".to_string()];
        // (allowed, requested, may run)
        let table: [(&[String], Option<&str>, bool); 8] = [
            (&none, None, true),
            (&none, Some("root"), false),
            (&none, Some(""), false),
            (&some, None, true),
            (&some, Some("root"), true),
            (&some, Some("1000"), true),
            (&some, Some("Root"), false),
            (&some, Some("kasm-user"), false),
        ];
        for (allowed, requested, may) in table {
            assert_eq!(
                may_run_as(allowed, requested),
                may,
                "{allowed:?} {requested:?}"
            );
        }
    }
}
