"""Checks the `cluster` profile of docker-compose.yml against config/nginx-cluster.conf
without a Docker engine (scripts/ops-tests.sh runs it): Redis, two replicas pointing their
[cluster] at it with distinct replica ids, and nginx whose upstream is exactly those replicas,
in round-robin without stickiness and with the SSE settings. Prints what is wrong; exit 1."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

REPO = Path(__file__).resolve().parents[2]


def problems() -> list[str]:
    found: list[str] = []
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose.get("services", {})
    cluster = {name: s for name, s in services.items() if "cluster" in (s.get("profiles") or [])}
    for name, s in services.items():
        if name not in cluster and not s.get("profiles") and name != "kasm-mcp":
            found.append(f"service {name} has no profile: it would start with a plain `docker compose up`")
    replicas = {n: s for n, s in cluster.items() if (s.get("environment") or {}).get("KASM_MCP_CLUSTER__REDIS_URL")}
    if len(replicas) < 2:
        found.append(f"the cluster profile has {len(replicas)} replicas with KASM_MCP_CLUSTER__REDIS_URL, not 2")
    redis = [n for n, s in cluster.items() if str(s.get("image", "")).startswith(("redis", "valkey"))]
    if len(redis) != 1:
        found.append(f"the cluster profile should have one Redis service, has {redis}")
    ids = set()
    upstream_expected = set()
    for name, s in replicas.items():
        env = s["environment"]
        host = urlparse(env["KASM_MCP_CLUSTER__REDIS_URL"]).hostname
        if host not in redis:
            found.append(f"{name}: KASM_MCP_CLUSTER__REDIS_URL names {host}, not the Redis service {redis}")
        rid = env.get("KASM_MCP_CLUSTER__REPLICA_ID")
        if not rid or rid in ids:
            found.append(f"{name}: KASM_MCP_CLUSTER__REPLICA_ID missing or not unique ({rid})")
        ids.add(rid)
        if (s.get("build") or {}).get("target") != "runtime":
            found.append(f"{name}: should build the `runtime` target")
        if "redis" not in str(s.get("depends_on", {})):
            found.append(f"{name}: should depend on Redis")
        if s.get("ports"):
            found.append(f"{name}: publishes ports; only the balancer should")
        upstream_expected.add(f"{name}:{env.get('MCP_SERVER_PORT', '8080')}")
    lbs = [(n, s) for n, s in cluster.items() if str(s.get("image", "")).startswith("nginx")]
    if len(lbs) != 1:
        found.append(f"the cluster profile should have one nginx service, has {[n for n, _ in lbs]}")
        return found
    lb_name, lb = lbs[0]
    if not any("config/nginx-cluster.conf" in v and "/etc/nginx/conf.d/" in v for v in lb.get("volumes", [])):
        found.append(f"{lb_name}: should mount ./config/nginx-cluster.conf into /etc/nginx/conf.d/")
    for name in replicas:
        if name not in (lb.get("depends_on") or {}):
            found.append(f"{lb_name}: should depend on {name}")
    conf = (REPO / "config" / "nginx-cluster.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    upstream = re.search(r"upstream kasm_mcp \{(.*?)\}", code, re.S)
    servers = set(re.findall(r"server (\S+?)[ ;]", upstream.group(1))) if upstream else set()
    if servers != upstream_expected:
        found.append(f"nginx upstream servers {sorted(servers)} are not the replicas {sorted(upstream_expected)}")
    for sticky in ["ip_hash", "hash ", "sticky", "least_conn"]:
        if sticky in code:
            found.append(f"config/nginx-cluster.conf uses `{sticky.strip()}`: plain round-robin is what is tested")
    for needed in ["proxy_http_version 1.1;", "proxy_buffering off;", 'proxy_set_header Connection "";', "proxy_read_timeout 1h;"]:
        if needed not in code:
            found.append(f"config/nginx-cluster.conf lacks `{needed}` (SSE through the balancer)")
    return found


if __name__ == "__main__":
    wrong = problems()
    for line in wrong:
        print(line)
    sys.exit(1 if wrong else 0)
