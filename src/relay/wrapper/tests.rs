//! Unit tests of the wrapper scripts: quoting, parsing with a real `sh`, and the input names
//! shared by the tools and the script text.

use std::collections::BTreeMap;
use std::process::Command;

use super::*;

const ALL: [Script; 6] = [
    Script::Exec,
    Script::Stream,
    Script::Read,
    Script::Write,
    Script::List,
    Script::Dispatch,
];

const NASTY: &str = "echo 'single' \"double\" $(echo sub) `tick` \\back\\slash\nline2\t$HOME ${X:-y} ; | & * ? ~ é 中文 🦀 '\"'\"'";

#[test]
fn every_script_survives_a_shell_style_split() {
    for script in ALL {
        let cmd = command_line(script);
        let argv = shlex::split(&cmd).expect("splits");
        assert_eq!(argv, vec!["sh".to_string(), "-c".into(), script.text()]);
    }
}

#[test]
fn scripts_parse_with_sh() {
    for script in ALL {
        let out = Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(script.text())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_script_reads_exactly_the_inputs_the_environment_carries() {
    let job = CommandJob {
        command: "true".into(),
        cwd: Some("/tmp".into()),
        timeout_s: 5,
        cap: 10,
        env: BTreeMap::from([("PATH".to_string(), "/x".to_string())]),
        cancel_tag: Some("0123456789abcdef0123456789abcdef".into()),
    };
    let tickets = Tickets {
        upload: Endpoint {
            url: "http://h/relay/u".into(),
            key: "k".into(),
        },
        download: None,
        stream: None,
    };
    let input = WrapperInput {
        job: Job::Exec(job),
        tickets: Some(tickets),
        budget_s: 30,
        stale_after_s: 700,
    };
    let env = input.environment();
    let text = Script::Exec.text();
    for name in env.keys() {
        if name == TICKETS_ENV || name.starts_with(USER_ENV_PREFIX) {
            continue;
        }
        assert!(
            text.contains(&format!("${{{name}-}}")),
            "{name} is not read"
        );
    }
    // The caller's PATH goes to the command only, never to the wrapper's own environment.
    assert!(!env.contains_key("PATH"));
    assert_eq!(env["KMCP_E_PATH"], "/x");
    assert_eq!(env["KMCP_ENV"], "PATH");
    assert_eq!(env[TICKETS_ENV], "http://h/relay/u k - - - -");
    // The bodies use only the shell variables: every KMCP_ name in the text is generated.
    for script in ALL {
        let text = script.text();
        for (i, _) in text.match_indices("KMCP_") {
            let rest = &text[i..];
            let known = script.vars().iter().any(|v| rest.starts_with(v.env()))
                || rest.starts_with(TICKETS_ENV)
                || rest.starts_with(USER_ENV_PREFIX)
                || rest.starts_with("KMCP_TICKETS_END")
                || rest.starts_with("KMCP_ROOTS_END")
                || rest.starts_with("KMCP_URL")
                || rest.starts_with("KMCP_CFG");
            assert!(known, "{script:?} mentions {}", &rest[..rest.len().min(20)]);
        }
    }
}

#[test]
fn env_values_arrive_byte_for_byte_through_the_dispatch_script() {
    let input = WrapperInput {
        job: Job::Dispatch(CommandJob {
            command: "printf '%s' \"$X\" > \"$OUT\"".into(),
            cwd: None,
            timeout_s: 5,
            cap: 10,
            env: BTreeMap::from([
                ("X".to_string(), NASTY.to_string()),
                ("OUT".to_string(), String::new()),
            ]),
            cancel_tag: None,
        }),
        tickets: None,
        budget_s: 5,
        stale_after_s: 5,
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut input = input;
    if let Job::Dispatch(c) = &mut input.job {
        c.env.insert("OUT".into(), out.display().to_string());
    }
    let config = input.exec_config(None);
    let argv = shlex::split(&config.cmd).unwrap();
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .envs(&config.environment)
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), NASTY);
}

#[test]
fn env_names() {
    assert!(is_valid_env_name("FOO_1"));
    assert!(is_valid_env_name("_x"));
    for bad in ["", "1A", "A-B", "A B", "KMCP_CMD", "é"] {
        assert!(!is_valid_env_name(bad), "{bad}");
    }
}
