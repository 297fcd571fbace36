"""Renders config/nginx-cluster.conf for a loopback run: the shipped configuration with the
replicas' addresses and the listen address replaced, inside tests/cluster/nginx.conf.template.
Used by harness.py, and by scripts/ops-tests.sh (`nginx -t` of the shipped file):

    python3 tests/cluster/nginx_conf.py PREFIX LISTEN REPLICA_ADDR...
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def render(prefix: Path, listen: str, replicas: list[str]) -> Path:
    """Write PREFIX/nginx.conf and PREFIX/cluster.conf (and the temp dirs); return the former."""
    shipped = (REPO / "config" / "nginx-cluster.conf").read_text()
    upstream = re.search(r"upstream kasm_mcp \{(.*?)\n\}", shipped, re.S)
    if not upstream:
        raise ValueError("config/nginx-cluster.conf has no `upstream kasm_mcp { … }` block")
    body = upstream.group(1)
    shipped_servers = re.findall(r"^\s*server \S+( [^;]*)?;", body, re.M)
    if not shipped_servers:
        raise ValueError("the upstream block of config/nginx-cluster.conf lists no server")
    params = shipped_servers[0] or ""
    kept = re.sub(r"^\s*server \S+( [^;]*)?;\n?", "", body, flags=re.M)
    servers = "".join(f"\n    server {addr}{params};" for addr in replicas)
    conf = shipped[: upstream.start(1)] + servers + "\n" + kept.strip("\n") + shipped[upstream.end(1) :]
    conf, n = re.subn(r"^(\s*)listen 8080;", rf"\1listen {listen};", conf, flags=re.M)
    if n != 1:
        raise ValueError("config/nginx-cluster.conf should have one `listen 8080;`")
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"]:
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "cluster.conf").write_text(conf)
    main = (REPO / "tests" / "cluster" / "nginx.conf.template").read_text()
    main = main.replace("@PREFIX@", str(prefix)).replace(
        "@USER@", "user root root;" if os.geteuid() == 0 else ""
    )
    (prefix / "nginx.conf").write_text(main)
    return prefix / "nginx.conf"


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    print(render(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
