//! `exec_command_kasm`: split `exec_config.cmd` shell-style (like Docker exec: no implicit
//! shell), start it detached in the session's sandbox, answer at once with no output.

use serde_json::{Value, json};

use super::ctx::Ctx;
use super::render::{self, normalized_kasm};
use super::reply::Reply;
use super::sandbox::ExecSpec;
use super::sessions::{kasm_id, owns};
use super::state::Phase;

const BAD_PARAMS: &str = "Invalid request, check paramemters";

/// Turn `exec_config` into what the sandbox runs, or `None` for Kasm's "exec failed".
fn exec_spec(
    exec_config: &serde_json::Map<String, Value>,
    container_env: &std::collections::BTreeMap<String, String>,
) -> Option<ExecSpec> {
    let cmd = exec_config.get("cmd").and_then(Value::as_str)?;
    let argv = shlex::split(cmd).filter(|argv| !argv.is_empty())?;
    let mut env = container_env.clone();
    if let Some(extra) = exec_config.get("environment").and_then(Value::as_object) {
        for (k, v) in extra {
            match v {
                Value::Null => {}
                Value::String(s) => {
                    env.insert(k.clone(), s.clone());
                }
                other => {
                    env.insert(k.clone(), other.to_string());
                }
            }
        }
    }
    let text = |name: &str| {
        exec_config
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(ExecSpec {
        argv,
        env,
        workdir: text("workdir"),
        user: text("user"),
    })
}

pub fn exec_command_kasm(ctx: &Ctx<'_>) -> Reply {
    let id = match kasm_id(ctx, || Reply::error(BAD_PARAMS)) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(exec_config) = ctx.object("exec_config") else {
        return Reply::error(BAD_PARAMS);
    };
    if Ctx::str_in(exec_config, "cmd").is_none() {
        return Reply::error(BAD_PARAMS);
    }
    let (session_json, container_env) = {
        let store = ctx.shared.store();
        let Some(s) = store.sessions.get(&id).filter(|s| owns(ctx, s)) else {
            return Reply::error(BAD_PARAMS);
        };
        if s.phase != Phase::Running {
            return Reply::error("Kasm is not running or is not responding");
        }
        (normalized_kasm(s, &ctx.hostname), s.environment.clone())
    };
    let Some(spec) = exec_spec(exec_config, &container_env) else {
        return Reply::error("Kasm exec failed");
    };
    match ctx.shared.sandbox.exec(&id, spec) {
        Ok(pgid) => {
            tracing::debug!(kasm_id = %id, pgid, "simulator exec started");
            Reply::ok(json!({ "current_time": render::now(), "kasm": session_json }))
        }
        Err(e) => {
            tracing::info!(kasm_id = %id, error = %e, "simulator exec refused");
            Reply::error("Kasm exec failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn splits_like_docker_exec_without_a_shell() {
        let spec = exec_spec(
            &config(json!({"cmd": "sh -c 'echo hi > /home/kasm-user/x'"})),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(spec.argv, ["sh", "-c", "echo hi > /home/kasm-user/x"]);
        let literal =
            exec_spec(&config(json!({"cmd": "echo $HOME > x"})), &BTreeMap::new()).unwrap();
        assert_eq!(literal.argv, ["echo", "$HOME", ">", "x"]);
    }

    #[test]
    fn refuses_unbalanced_quotes_and_empty_commands() {
        assert!(exec_spec(&config(json!({"cmd": "sh -c 'oops"})), &BTreeMap::new()).is_none());
        assert!(exec_spec(&config(json!({"cmd": "   "})), &BTreeMap::new()).is_none());
    }

    #[test]
    fn exec_environment_overrides_the_container_environment() {
        let mut container = BTreeMap::new();
        container.insert("A".to_string(), "container".to_string());
        container.insert("B".to_string(), "kept".to_string());
        let spec = exec_spec(
            &config(json!({"cmd": "env", "environment": {"A": "exec", "N": 3},
                           "workdir": "/tmp", "user": "root"})),
            &container,
        )
        .unwrap();
        assert_eq!(spec.env["A"], "exec");
        assert_eq!(spec.env["B"], "kept");
        assert_eq!(spec.env["N"], "3");
        assert_eq!(spec.workdir.as_deref(), Some("/tmp"));
        assert_eq!(spec.user.as_deref(), Some("root"));
    }
}
