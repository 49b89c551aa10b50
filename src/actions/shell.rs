//! Shell steps: a runbook's `sh` script, run on this machine only when the config says
//! `allow_shell = true`, shown in full before it runs, with the alert's context in its
//! environment. Its output (trimmed) is the outcome, so it lands in the audit log.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// A script that takes longer is killed: a console step is not a batch job.
const SHELL_TIMEOUT: Duration = Duration::from_secs(120);
/// Output kept for the outcome and the audit log.
const OUTPUT_LIMIT: usize = 8 * 1024;

/// The script in full and the variables it gets: what the confirmation shows.
pub fn describe(script: &str, env: &BTreeMap<String, String>) -> String {
    let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "runs with sh on this machine, environment: {}\n{}",
        vars.join(" "),
        script.trim_end()
    )
}

/// Runs `script` with `sh -c`, its environment extended by `env`. Ok with the output when
/// it exits 0; else Err with the exit status and output.
pub async fn run(script: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let output = match tokio::time::timeout(SHELL_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("sh failed: {e}")),
        Err(_) => {
            return Err(format!(
                "killed after {}s: the script did not finish",
                SHELL_TIMEOUT.as_secs()
            ));
        }
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let text = trim(text.trim_end());
    if output.status.success() {
        Ok(format!("exit 0\n{text}"))
    } else {
        Err(format!("{}\n{text}", output.status))
    }
}

/// The last `OUTPUT_LIMIT` bytes (the end says how it went), on a character boundary.
fn trim(text: &str) -> String {
    if text.len() <= OUTPUT_LIMIT {
        return text.to_string();
    }
    let mut start = text.len() - OUTPUT_LIMIT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[... output cut ...]\n{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_script_gets_the_alert_context_and_its_output_is_the_outcome() {
        let env = BTreeMap::from([
            (
                "FLEETDECK_CLUSTER".to_string(),
                "prod-use1-api-01".to_string(),
            ),
            (
                "FLEETDECK_LABEL_NODE".to_string(),
                "ip-10-0-1-7".to_string(),
            ),
        ]);
        let out = run(
            "echo \"$FLEETDECK_CLUSTER $FLEETDECK_LABEL_NODE\"; echo warn >&2",
            &env,
        )
        .await
        .expect("exit 0");
        assert_eq!(out, "exit 0\nprod-use1-api-01 ip-10-0-1-7\nwarn");
        let err = run("echo nope; exit 3", &env).await.expect_err("exit 3");
        assert_eq!(err, "exit status: 3\nnope");
        let shown = describe("kubectl get nodes\n", &env);
        assert_eq!(
            shown,
            "runs with sh on this machine, environment: FLEETDECK_CLUSTER=prod-use1-api-01 FLEETDECK_LABEL_NODE=ip-10-0-1-7\nkubectl get nodes"
        );
    }

    #[test]
    fn long_output_keeps_its_end() {
        let long = "x".repeat(OUTPUT_LIMIT + 10) + "END";
        let t = trim(&long);
        assert!(t.starts_with("[... output cut ...]") && t.ends_with("END"));
    }
}
