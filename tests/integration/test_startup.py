"""fourcd start-up: bad configuration names file, line and key (exit 2); a
port or data directory already in use is refused (exit 1) instead of
silently sharing it; --help and --version."""

from __future__ import annotations

import subprocess

import pytest

from conftest import free_ports


def run(fourcd_bin, *args, timeout=10):
    return subprocess.run([str(fourcd_bin), *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def fourcd_bin():
    from conftest import repo_path
    return repo_path("FOURCD", "build/fourcd")


@pytest.mark.parametrize("text,want", [
    ("[server]\nlisten = 127.0.0.1:1\ncolour = red\n", ":3: [server] colour: unknown key"),
    ("[servr]\nlisten = 127.0.0.1:1\n", ":2: [servr] listen: unknown section"),
    ("[server]\nlisten = 127.0.0.1:notaport\n",
     ":2: [server] listen: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"),
    ("[server]\nadmin = localhost:9100\n",
     ":2: [server] admin: expected a numeric IP address, e.g. 127.0.0.1:8080 or [::1]:8080"),
    ("[limits]\nmax_message = 1\n",
     ":2: [limits] max_message: expected an integer in [1024, 16777216]"),
    ("[store]\nsync = sometimes\n", ":2: [store] sync: expected normal or full"),
])
def test_bad_config_names_file_line_key(fourcd_bin, tmp_path, text, want):
    cfg = tmp_path / "bad.ini"
    cfg.write_text(text)
    r = run(fourcd_bin, "serve", "--config", str(cfg), "--data", str(tmp_path / "d"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"fourcd: {cfg}{want}"
    assert not (tmp_path / "d").exists()   # refused before touching anything


def test_unknown_option_and_missing_value(fourcd_bin):
    r = run(fourcd_bin, "serve", "--lissten")
    assert (r.returncode, r.stderr.strip()) == (
        2, "fourcd serve: unknown option --lissten (see fourcd --help)")
    r = run(fourcd_bin, "serve", "--listen")
    assert (r.returncode, r.stderr.strip()) == (
        2, "fourcd serve: option --listen needs a value (see fourcd --help)")


def test_help_and_version(fourcd_bin):
    r = run(fourcd_bin, "--help")
    assert r.returncode == 0
    for opt in ("--config", "--listen", "--tls-listen", "--admin", "--data", "--loops",
                "--log-level"):
        assert opt in r.stdout
    r = run(fourcd_bin, "--version")
    assert r.returncode == 0 and r.stdout.startswith("fourcd ")


def test_port_in_use_is_refused_not_shared(fourcd_factory, fourcd_bin, tmp_path):
    srv = fourcd_factory()
    _, admin = free_ports(2)
    r = run(fourcd_bin, "serve", "--data", str(tmp_path / "other"),
            "--listen", f"127.0.0.1:{srv.port}", "--tls-listen", "",
            "--admin", f"127.0.0.1:{admin}")
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{srv.port}: Address already in use" in r.stderr
    srv.assert_serving()


def test_data_directory_in_use_is_refused(fourcd_factory, fourcd_bin):
    srv = fourcd_factory()
    port, admin = free_ports(2)
    r = run(fourcd_bin, "serve", "--data", str(srv.data_dir),
            "--listen", f"127.0.0.1:{port}", "--tls-listen", "",
            "--admin", f"127.0.0.1:{admin}")
    assert r.returncode == 1
    assert f"data directory {srv.data_dir} is in use by another fourcd" in r.stderr
