"""C17: reconnect storm. 2000 clients of the reference client library
(STORM_CLIENTS overrides) are connected when fourcd is killed with SIGKILL;
it restarts on the same ports 5 s later. The clients come back with the
library's own reconnect policy (exponential backoff with full jitter,
Retry-After), the server sheds excess upgrades with 503 + Retry-After.

Oracle: arrivals of upgrade requests at the restarted server (from its log,
admitted and refused alike) never put more than twice the mean rate into one
second; every client is back, re-authenticated and synced within 60 s; and
end-to-end sessions still work afterwards."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from conftest import REPO_ROOT, free_ports, repo_path

HERE = Path(__file__).resolve().parent
CLIENTS = int(os.environ.get("STORM_CLIENTS", "2000"))
UPGRADE_RATE = 400
TS = re.compile(r"^ts=(\S+) level=\S+ event=(\S+)(.*)$")


def build_storm(tmp: Path, fourcd: Path) -> Path:
    lib = fourcd.parent / "libfourc.a"
    pkgs = "libuv openssl libsodium sqlite3 inih libsignal-protocol-c"
    flags = subprocess.run(f"pkg-config --cflags --libs {pkgs}", shell=True, check=True,
                           capture_output=True, text=True).stdout.split()
    out = tmp / "storm"
    subprocess.run(["cc", "-std=gnu11", "-O2", "-pthread", f"-I{REPO_ROOT / 'src'}",
                    "-o", str(out), str(HERE / "storm" / "storm.c"), str(lib), *flags, "-lm"],
                   check=True)
    return out


def start_server(binary: Path, cfg: Path, data: Path, log: Path):
    return subprocess.Popen([str(binary), "serve", "--config", str(cfg), "--data", str(data)],
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"))


def wait_ready(admin_port: int, proc, timeout=20):
    import http.client
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "fourcd exited during start-up"
        try:
            c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("fourcd not ready")


def arrivals(log: Path) -> list:
    out = []
    for line in log.read_text().splitlines():
        m = TS.match(line)
        if not m:
            continue
        ev, rest = m.group(2), m.group(3)
        if ev == "ws_upgraded" or (ev == "http_rejected" and "status=503" in rest):
            out.append(datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp())
    return out


@pytest.mark.slow
def test_c17_reconnect_storm_is_shaped_and_everyone_returns(tmp_path):
    fourcd = repo_path("FOURCD", "build/fourcd")
    storm = build_storm(tmp_path, fourcd)
    port, tls_port, admin = free_ports(3)
    cfg = tmp_path / "fourcd.ini"
    cfg.write_text(f"""[server]
listen = 127.0.0.1:{port}
tls_listen =
admin = 127.0.0.1:{admin}
loops = 1
[limits]
upgrade_rate = {UPGRADE_RATE}
upgrade_burst = {UPGRADE_RATE}
[accounts]
invite_codes = storm-invite
[log]
level = debug
""")
    data = tmp_path / "data"
    log1, log2 = tmp_path / "fourcd1.log", tmp_path / "fourcd2.log"
    srv = start_server(fourcd, cfg, data, log1)
    client = None
    try:
        wait_ready(admin, srv)
        client = subprocess.Popen([str(storm), f"ws://127.0.0.1:{port}", "storm-invite",
                                   str(tmp_path / "clients"), str(CLIENTS), "240"],
                                  stdout=subprocess.PIPE, text=True)
        line = client.stdout.readline().strip()
        assert line == f"ready {CLIENTS}", line
        time.sleep(1)
        srv.send_signal(signal.SIGKILL)
        srv.wait(10)
        time.sleep(5)
        srv = start_server(fourcd, cfg, data, log2)
        wait_ready(admin, srv)
        back = client.stdout.readline().strip()
        assert back.startswith("all_back "), back
        back_s = float(back.split()[1])
        verified = client.stdout.readline().strip()
        assert verified == "verified 20", verified
        assert client.wait(60) == 0
    finally:
        if client and client.poll() is None:
            client.kill()
        srv.send_signal(signal.SIGTERM)
        code = srv.wait(20)
    assert code == 0
    times = arrivals(log2)
    assert len(times) >= CLIENTS        # every client came back through an upgrade
    t0 = min(times)
    buckets = Counter(int(t - t0) for t in times)
    span = max(times) - t0
    mean = len(times) / max(span, 1.0)
    peak = max(buckets.values())
    refused = sum(1 for ln in log2.read_text().splitlines()
                  if "event=http_rejected" in ln and "status=503" in ln)
    print(f"storm: clients={CLIENTS} all_back_s={back_s:.1f} arrivals={len(times)} "
          f"refused_503={refused} span_s={span:.1f} mean_per_s={mean:.0f} peak_per_s={peak} "
          f"peak_over_mean={peak / mean:.2f}")
    assert back_s < 60
    assert peak <= 2 * mean, f"arrivals bunch up: peak {peak}/s vs mean {mean:.0f}/s"
