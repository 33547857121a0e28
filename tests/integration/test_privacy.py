"""Zero knowledge: a canary plaintext sent end to end with the reference
client (real Signal-protocol encryption) must appear nowhere the server can
write: no file under the data directory (SQLite database, WAL, anything
else), no log line, no metric. Also checked in common encodings (hex,
base64, UTF-16), in case something re-encodes before storing."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest


def encodings(canary: str):
    raw = canary.encode()
    return {
        "utf8": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "utf16le": canary.encode("utf-16-le"),
    }


def scan_tree(root: Path, needles: dict) -> list:
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            data = p.read_bytes()
            for label, needle in needles.items():
                if needle in data:
                    hits.append(f"{p} contains the canary ({label})")
    return hits


@pytest.mark.slow
def test_canary_plaintext_reaches_no_store_log_or_metric(fourcd_factory, fourc_bin, tmp_path):
    srv = fourcd_factory(config={"accounts": {"invite_codes": "dev-invite-4c",
                                              "max_devices": 3}})
    canary = "CANARY-" + os.urandom(12).hex()
    run = subprocess.run(
        [str(fourc_bin), "demo", "--server", f"ws://127.0.0.1:{srv.port}",
         "--message", canary],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    # The demo really carried the canary end to end: it printed it decrypted.
    assert canary in run.stdout
    metrics = srv.admin_get("/metrics")[2]
    assert b"fourc_messages_accepted_total" in metrics
    srv.stop()   # flush and close the store, end the log
    needles = encodings(canary)
    hits = scan_tree(srv.data_dir, needles)
    log = srv.log_path.read_bytes()
    hits += [f"server log contains the canary ({k})" for k, n in needles.items() if n in log]
    hits += [f"/metrics contains the canary ({k})" for k, n in needles.items() if n in metrics]
    assert hits == []
    # Sanity: the same scan does find bytes that are there.
    assert scan_tree(srv.data_dir, {"sqlite": b"SQLite format 3"}) != []
