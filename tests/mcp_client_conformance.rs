//! aivm's MCP client against the official conformance tool's client scenarios (its mock
//! servers over Streamable HTTP), driven through `aivm mcp list` / `aivm mcp call` by the
//! fixture `tests/mcp/conformance/client.sh`. The scenarios that fail, and why, are listed in
//! the notes (auth is out of scope; elicitation needs a person, which the review commands
//! never ask).

mod common;

use std::process::Command;

use common::{path_str, temp_dir};

const SUITE: &str = "mcp_client_conformance";

#[test]
fn the_client_scenarios_that_apply_pass() {
    let servers = aivm_fakes::mcp::installed();
    let fixture = common::root().join("tests/mcp/conformance/client.sh");
    let command = format!("{} {}", path_str(&fixture), env!("CARGO_BIN_EXE_aivm"));
    for scenario in ["initialize", "tools_call", "sse-retry"] {
        let out = temp_dir(SUITE, scenario);
        let o = Command::new(servers.node22())
            .arg(servers.conformance())
            .args([
                "client",
                "--command",
                &command,
                "--scenario",
                scenario,
                "-o",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{scenario} ({}):\n{text}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        // Every check the scenario made, from its checks.json: none failed, some succeeded.
        let mut statuses = Vec::new();
        for run in std::fs::read_dir(&out).unwrap().flatten() {
            let checks = std::fs::read_to_string(run.path().join("checks.json")).unwrap();
            let checks: Vec<serde_json::Value> = serde_json::from_str(&checks).unwrap();
            statuses.extend(
                checks
                    .iter()
                    .map(|c| c["status"].as_str().unwrap_or("").to_string()),
            );
        }
        assert!(
            statuses.iter().any(|s| s == "SUCCESS"),
            "{scenario}: {statuses:?}\n{text}"
        );
        assert!(
            !statuses.iter().any(|s| s == "FAILURE"),
            "{scenario}: {statuses:?}\n{text}"
        );
    }
}
