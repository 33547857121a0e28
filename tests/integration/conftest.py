"""Fixtures that run real fourcd processes on loopback for black-box tests.

Each server gets its own directory under pytest's tmp_path with:
  fourcd.ini         the INI configuration written from DEFAULT_CONFIG plus
                     the test's overrides (free loopback ports are filled in)
  data/              the --data directory (SQLite, TLS dev certificate, ...)
  fourcd.stderr.log  everything the server logged (logfmt lines)
  fourcd.stdout.log  anything it printed on stdout

The server binary comes from $FOURCD (default build/fourcd; a relative path is
taken from the repository root). A server counts as started when the admin
port answers GET /readyz with 200 (within 20 s, else the test fails showing the
server's stderr). On teardown it gets SIGTERM and must exit with status 0
within 10 s, without any `level=error` log line (unless the test passed
allow_errors=True) and without sanitizer reports.

Fixtures:
  fourcd_factory(config=None, env=None, allow_errors=False) -> Fourcd
      starts a server per call; torn down (and checked) after the test.
  fourcd        one default server for this test.
  server        the module's shared default server. Tests that only need
                default settings use it: it is started once per module, and
                after every test it must still be running, must not have logged
                an error during the test, and must still upgrade a fresh F1
                connection (101 + CHALLENGE): bad input never stops it serving.
  fourc_bin     path of the client binary ($FOURC, default build/fourc).
"""

from __future__ import annotations

import atexit
import http.client
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import wsraw

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

# The configuration every server starts from. Values are written verbatim;
# listen/tls_listen/admin get free ports at start.
DEFAULT_CONFIG = {
    "server": {
        "listen": None,
        "tls_listen": None,
        "admin": None,
        "loops": 1,
    },
    # Empty on purpose: cert/key default to DATA/tls/dev-cert.pem and
    # dev-key.pem, generated on first start.
    "tls": {},
    "limits": {
        "max_message": 1048576,
        "max_header_bytes": 8192,
        "max_outbound_bytes": 4194304,
        "header_timeout_ms": 2000,
        "auth_timeout_ms": 3000,
        "ping_interval_ms": 20000,
        "upgrade_rate": 1000,
        "upgrade_burst": 2000,
    },
    "accounts": {
        "invite_codes": "test-invite",
        "max_devices": 3,
    },
    "mailbox": {
        "retention_seconds": 2592000,
        "prekey_low_threshold": 5,
    },
    "log": {
        "level": "info",
    },
}

ERROR_LINE = re.compile(r"(?:^|\s)level=error(?:\s|$)")
SANITIZER_REPORT = re.compile(
    r"ERROR: (?:AddressSanitizer|LeakSanitizer|MemorySanitizer|ThreadSanitizer)"
    r"|WARNING: ThreadSanitizer|runtime error:")

# Every server process started by this session, so none outlives pytest even
# if a teardown never runs (e.g. pytest itself is killed by a timeout).
_live_procs: set = set()


def _kill_leftovers():
    for proc in list(_live_procs):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_leftovers)


def pytest_configure(config):
    # A SIGTERM (e.g. from `timeout` in scripts/check.sh) becomes a
    # KeyboardInterrupt, so pytest still runs fixture teardown and the servers
    # are stopped instead of orphaned.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)


def repo_path(env_var: str, default: str) -> Path:
    p = Path(os.environ.get(env_var) or default)
    return p if p.is_absolute() else REPO_ROOT / p


def free_ports(n: int) -> list:
    """n distinct free loopback ports (held open together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def merge_config(base: dict, overrides: dict | None) -> dict:
    """Section-wise merge. A value of None removes the key (or, at section
    level, the whole section)."""
    out = {sec: dict(kv) for sec, kv in base.items()}
    for sec, kv in (overrides or {}).items():
        if kv is None:
            out.pop(sec, None)
            continue
        target = out.setdefault(sec, {})
        for key, value in kv.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    return out


def render_config(cfg: dict) -> str:
    lines = []
    for sec, kv in cfg.items():
        lines.append(f"[{sec}]")
        if sec == "tls" and not kv:
            lines.append("; cert/key default to DATA/tls/dev-cert.pem and dev-key.pem, "
                         "generated on first start")
        for key, value in kv.items():
            lines.append(f"{key} = {value}")
        lines.append("")
    return "\n".join(lines)


def tail(text: str, n: int = 60) -> str:
    lines = text.splitlines()
    return "\n".join(lines[-n:]) if lines else "(empty)"


class Fourcd:
    """One fourcd process under test."""

    def __init__(self, binary: Path, workdir: Path, config: dict | None = None,
                 env: dict | None = None, allow_errors: bool = False):
        self.binary = binary
        self.workdir = workdir
        self.overrides = config
        self.extra_env = dict(env or {})
        self.allow_errors = allow_errors
        self.host = HOST
        self.data_dir = workdir / "data"
        self.config_path = workdir / "fourcd.ini"
        self.log_path = workdir / "fourcd.stderr.log"
        self.stdout_path = workdir / "fourcd.stdout.log"
        self.proc = None
        self.port = self.tls_port = self.admin_port = None
        self.config = None
        self.exit_code = None
        self.start_failed = False

    # -- lifecycle
    def start(self):
        if not self.binary.exists():
            pytest.fail(f"server binary {self.binary} does not exist; build it with `make all` "
                        f"(or set FOURCD)", pytrace=False)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        for attempt in range(3):
            self._launch()
            why = self._wait_ready()
            if why is None:
                return self
            log = self.log_text()
            # Another process may take a probed port before the server binds
            # it; only that race is retried, with fresh ports.
            if attempt < 2 and self.proc.poll() is not None and "in use" in log.lower():
                continue
            self._kill()
            # Reported here; teardown has nothing more to say about it.
            self.start_failed = True
            pytest.fail(f"fourcd did not become ready: {why}\nconfig:\n"
                        f"{self.config_path.read_text()}\nstderr:\n{tail(log)}", pytrace=False)
        return self

    def _launch(self):
        self.port, self.tls_port, self.admin_port = free_ports(3)
        cfg = merge_config(DEFAULT_CONFIG, {"server": {
            "listen": f"{HOST}:{self.port}",
            "tls_listen": f"{HOST}:{self.tls_port}",
            "admin": f"{HOST}:{self.admin_port}",
        }})
        self.config = merge_config(cfg, self.overrides)
        self.config_path.write_text(render_config(self.config))
        env = dict(os.environ)
        env.update(self.extra_env)
        with open(self.log_path, "ab") as err, open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--config", str(self.config_path),
                 "--data", str(self.data_dir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.workdir, env=env)
        _live_procs.add(self.proc)
        self.exit_code = None

    def _wait_ready(self):
        """None when /readyz answers 200, else a reason."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return f"process exited with status {rc} before it was ready"
            try:
                status, _, _ = self.admin_get("/readyz", timeout=1.0)
                if status == 200:
                    return None
                last = f"/readyz answered {status}"
            except (OSError, http.client.HTTPException) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        return f"/readyz not 200 within {READY_TIMEOUT_S:.0f} s (last: {last})"

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc:
            self.exit_code = self.proc.returncode
            _live_procs.discard(self.proc)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> list:
        """SIGTERM, wait, and return the problems found (empty when clean)."""
        problems = []
        if self.proc is None or self.start_failed:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                problems.append(f"did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM")
                self._kill()
        self.exit_code = self.proc.returncode
        _live_procs.discard(self.proc)
        if self.exit_code != 0:
            problems.append(f"exit status {self.exit_code} (expected 0)")
        problems += self.log_problems()
        if problems:
            problems.append(f"stderr tail ({self.log_path}):\n{tail(self.log_text())}")
        return problems

    # -- logs
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def error_lines(self, text: str | None = None) -> list:
        text = self.log_text() if text is None else text
        return [line for line in text.splitlines() if ERROR_LINE.search(line)]

    def log_problems(self, text: str | None = None) -> list:
        text = self.log_text() if text is None else text
        problems = []
        errors = self.error_lines(text)
        if errors and not self.allow_errors:
            problems.append("server logged level=error:\n" + "\n".join(errors[:20]))
        if SANITIZER_REPORT.search(text):
            problems.append("sanitizer report in server stderr")
        return problems

    # -- clients
    def admin_get(self, path: str, timeout: float = 5.0):
        """GET on the admin port: (status, headers dict lower-cased, body)."""
        conn = http.client.HTTPConnection(self.host, self.admin_port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def raw(self, tls: bool = False, timeout: float = 5.0, rcvbuf: int | None = None):
        return wsraw.RawConn(self.host, self.tls_port if tls else self.port, tls=tls,
                             timeout=timeout, rcvbuf=rcvbuf)

    def ws(self, tls: bool = False, request: bytes | None = None, timeout: float = 5.0,
           rcvbuf: int | None = None):
        """F1 upgrade (or ``request``) checked up to the CHALLENGE:
        returns (conn, response, challenge)."""
        return wsraw.open_ws(self.host, self.tls_port if tls else self.port, tls=tls,
                             request=request, timeout=timeout, rcvbuf=rcvbuf)

    def assert_serving(self):
        """A fresh F1 connection still gets 101 + CHALLENGE."""
        conn, _, challenge = self.ws()
        conn.close()
        assert challenge.min_version <= wsraw.PROTO_VERSION <= challenge.max_version


def _binary() -> Path:
    return repo_path("FOURCD", "build/fourcd")


@pytest.fixture
def fourcd_factory(tmp_path):
    started = []

    def start(config: dict | None = None, env: dict | None = None,
              allow_errors: bool = False) -> Fourcd:
        srv = Fourcd(_binary(), tmp_path / f"fourcd{len(started)}", config, env, allow_errors)
        started.append(srv)
        return srv.start()

    yield start
    problems = []
    for srv in started:
        problems += srv.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def fourcd(fourcd_factory) -> Fourcd:
    return fourcd_factory()


class _SharedServer:
    """The module's default server, restarted if a test killed it."""

    def __init__(self, base: Path):
        self.base = base
        self.count = 0
        self.current = None
        self.retired = []

    def get(self) -> Fourcd:
        if self.current is None or not self.current.alive():
            if self.current is not None:
                self.retired.append(self.current)
            self.count += 1
            self.current = Fourcd(_binary(), self.base / f"fourcd{self.count}")
            self.current.start()
        return self.current


@pytest.fixture(scope="module")
def _shared_server(request, tmp_path_factory):
    holder = _SharedServer(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    yield holder
    problems = []
    if holder.current is not None:
        problems += holder.current.stop()
    if problems:
        pytest.fail("shared server: " + "\n".join(problems), pytrace=False)


@pytest.fixture
def server(_shared_server) -> Fourcd:
    srv = _shared_server.get()
    offset = srv.log_size()
    yield srv
    if not srv.alive():
        rc = srv.proc.poll()
        srv.exit_code = rc
        _live_procs.discard(srv.proc)
        pytest.fail(f"the server exited (status {rc}) during this test\nstderr tail:\n"
                    f"{tail(srv.log_text())}", pytrace=False)
    problems = srv.log_problems(srv.log_since(offset))
    if problems:
        pytest.fail("during this test: " + "\n".join(problems) + "\nstderr tail:\n"
                    + tail(srv.log_since(offset)), pytrace=False)
    srv.assert_serving()


@pytest.fixture
def fourc_bin() -> Path:
    return repo_path("FOURC", "build/fourc")
