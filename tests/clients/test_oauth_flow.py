"""The MCP authorization flow end to end: a real authorization server (oidc-provider 9, pinned
in oauth/package.json) and the official TypeScript SDK's OAuth client against
`kasm-mcp demo --oauth`. The Node script (oauth/flow_test.mjs) runs every step and asserts on
the server's answers (and runs oauth/python_flow.py, the Python SDK's OAuth client, with this
interpreter); this test runs it with Node 22 and checks that every step was reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_typescript_sdk import HERE, _node

STEPS = ["started", "bare-401", "viewer", "step-up", "static-token", "rotation", "python-sdk", "as-down", "audit", "done"]


@pytest.mark.demo_process  # starts `kasm-mcp demo --oauth` of its own
def test_oauth_flow_with_oidc_provider_and_the_typescript_sdk():
    for package in ["oidc-provider", "@modelcontextprotocol/sdk"]:
        if not (HERE / "oauth" / "node_modules" / package).exists():
            pytest.fail(f"{package} not installed in tests/clients/oauth: run scripts/setup-test-deps.sh")
    env = dict(os.environ)
    env["PYTHON"] = sys.executable
    env.setdefault("KASM_MCP_BIN", str(HERE.parents[1] / "target" / "debug" / "kasm-mcp"))
    run = subprocess.run(
        [_node(), "flow_test.mjs"],
        cwd=HERE / "oauth",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    seen = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [s["step"] for s in seen] == STEPS, run.stdout
    by_step = {s["step"]: s for s in seen}
    assert by_step["viewer"]["kid"] == "key-1"
    assert by_step["rotation"]["kid"] == "key-2"
    assert by_step["rotation"]["client_id"] != by_step["viewer"]["client_id"]
    assert by_step["python-sdk"]["client_id"] not in {by_step["viewer"]["client_id"], by_step["rotation"]["client_id"]}
    assert by_step["audit"]["tokens_checked"] >= 5
