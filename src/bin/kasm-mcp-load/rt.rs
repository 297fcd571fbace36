//! `--rt PRIORITY`: the whole measured system under SCHED_FIFO. This program re-executes
//! itself under `chrt -f PRIORITY` (util-linux; no unsafe code here), and the simulator,
//! the server and the floor proxy it then starts inherit the policy. Real-time threads run
//! before every normal thread of the machine (up to the kernel's RT throttling,
//! `kernel.sched_rt_runtime_us`, 95 % by default), so other tenants' builds no longer delay
//! a measured thread that became runnable. It makes no process faster: its figures say what
//! the same binaries do on a quiet machine, and are labelled so.

use std::process::ExitCode;

/// Set in the re-executed child, so that it does not re-execute itself again.
// (Not `KASM_MCP_*`: the server reads every such variable as configuration.)
const CHILD_MARKER: &str = "KASMMCPLOAD_RT_CHILD";

/// With `priority`, unless this process is already the re-executed child: run this program
/// again, with the same arguments, under `chrt -f priority`, and return its exit code.
/// `None`: carry on in this process.
pub fn reexec_under_chrt(priority: Option<u8>) -> Option<ExitCode> {
    let priority = priority?;
    if std::env::var_os(CHILD_MARKER).is_some() {
        return None;
    }
    let me = match std::env::current_exe() {
        Ok(me) => me,
        Err(e) => {
            eprintln!("kasm-mcp-load --rt: cannot find this binary: {e}");
            return Some(ExitCode::FAILURE);
        }
    };
    let status = std::process::Command::new("chrt")
        .args(["-f", &priority.to_string()])
        .arg(me)
        .args(std::env::args_os().skip(1))
        .env(CHILD_MARKER, "1")
        .status();
    Some(match status {
        Ok(status) => status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .map_or(ExitCode::FAILURE, ExitCode::from),
        Err(e) => {
            eprintln!(
                "kasm-mcp-load --rt: cannot run `chrt` ({e}): install util-linux, and run as root or with CAP_SYS_NICE"
            );
            ExitCode::FAILURE
        }
    })
}

/// This process's scheduling policy as `/proc/self/sched` states it, for the run's header
/// (e.g. `SCHED_FIFO, real-time priority 20`).
pub fn policy() -> String {
    match std::fs::read_to_string("/proc/self/sched") {
        Ok(sched) => describe(&sched),
        Err(e) => format!("unknown (/proc/self/sched: {e})"),
    }
}

/// The policy stated by the text of a `/proc/PID/sched`.
fn describe(sched: &str) -> String {
    let field = |name: &str| {
        sched.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == name)
                .then(|| value.trim().parse::<i64>().ok())
                .flatten()
        })
    };
    // The kernel's `prio` of a real-time task is 99 - its real-time priority.
    match (field("policy"), field("prio")) {
        (Some(0), _) => "SCHED_OTHER (normal)".into(),
        (Some(1), Some(prio)) => format!("SCHED_FIFO, real-time priority {}", 99 - prio),
        (Some(2), Some(prio)) => format!("SCHED_RR, real-time priority {}", 99 - prio),
        (Some(3), _) => "SCHED_BATCH".into(),
        (Some(5), _) => "SCHED_IDLE".into(),
        (Some(policy), _) => format!("policy {policy}"),
        (None, _) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_read_from_proc_sched() {
        let normal = "policy                                       :                    0\nprio                                         :                  120\n";
        assert_eq!(describe(normal), "SCHED_OTHER (normal)");
        // `chrt -f 20`: the kernel shows prio 99 - 20.
        let fifo = "se.vruntime : 1.0\npolicy : 1\nprio : 79\n";
        assert_eq!(describe(fifo), "SCHED_FIFO, real-time priority 20");
        assert_eq!(describe("policy : 5\nprio : 120\n"), "SCHED_IDLE");
        assert_eq!(describe("policy : 3\nprio : 120\n"), "SCHED_BATCH");
        assert_eq!(describe("policy : 6\n"), "policy 6");
        assert_eq!(describe(""), "unknown");
    }

    #[test]
    fn without_rt_nothing_is_re_executed() {
        assert!(reexec_under_chrt(None).is_none());
    }
}
