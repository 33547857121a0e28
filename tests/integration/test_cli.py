"""The reference client CLI (`fourc`) against a real fourcd: the README's
two-terminal chat, device linking and removal, and `fourc demo` over plain
WebSocket, TLS, and with its two users on different listeners."""

from __future__ import annotations

import os
import subprocess

import pytest


def fourc(bin_, *args, timeout=60, check=True):
    r = subprocess.run([str(bin_), *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"fourc {' '.join(args)}: {r.stdout}{r.stderr}"
    return r


@pytest.fixture
def dev_server(fourcd_factory):
    return fourcd_factory(config={"accounts": {"invite_codes": "dev-invite-4c",
                                               "max_devices": 3}})


def test_two_terminal_chat_link_and_unlink(dev_server, fourc_bin, tmp_path):
    url = f"ws://127.0.0.1:{dev_server.port}"
    suffix = os.urandom(3).hex()
    alice, bob, bob2 = (str(tmp_path / n) for n in ("alice", "bob", "bob2"))
    fourc(fourc_bin, "register", "--server", url, "--profile", alice,
          "--username", f"alice_{suffix}")
    fourc(fourc_bin, "register", "--server", url, "--profile", bob, "--username", f"bob_{suffix}")
    fourc(fourc_bin, "send", "--profile", bob, "--to", f"alice_{suffix}", "hi Alice, grüße 👋")
    out = fourc(fourc_bin, "listen", "--profile", alice, "--count", "1", "--timeout", "10").stdout
    assert f"[seq 1] bob_{suffix}/1: hi Alice, grüße 👋" in out
    # Bob links a second device; Alice's next message reaches both.
    fourc(fourc_bin, "link", "--profile", bob2, "--from", bob)
    devs = fourc(fourc_bin, "devices", "--profile", bob).stdout
    assert "1" in devs and "2" in devs
    fourc(fourc_bin, "send", "--profile", alice, "--to", f"bob_{suffix}", "to both")
    for p in (bob, bob2):
        out = fourc(fourc_bin, "listen", "--profile", p, "--count", "1", "--timeout", "10").stdout
        assert f"alice_{suffix}/1: to both" in out
    # Removing device 2 locks it out.
    fourc(fourc_bin, "unlink", "--profile", bob, "--device", "2")
    r = fourc(fourc_bin, "listen", "--profile", bob2, "--count", "1", "--timeout", "3",
              check=False)
    assert r.returncode != 0 and "AUTH_FAILED" in r.stderr


def test_demo_plain(dev_server, fourc_bin):
    r = fourc(fourc_bin, "demo", "--server", f"ws://127.0.0.1:{dev_server.port}",
              "--message", "demo text ✓", timeout=120)
    assert "demo text ✓" in r.stdout
    assert "demo: 5 messages, 10 deliveries, all decrypted, backlog in order: OK" in r.stdout


def test_demo_tls_and_two_listeners(dev_server, fourc_bin):
    r = fourc(fourc_bin, "demo", "--server", f"wss://127.0.0.1:{dev_server.tls_port}",
              "--insecure", timeout=120)
    assert "backlog in order: OK" in r.stdout
    r = fourc(fourc_bin, "demo", "--server", f"ws://127.0.0.1:{dev_server.port}",
              "--server", f"wss://127.0.0.1:{dev_server.tls_port}", "--insecure", timeout=120)
    assert "backlog in order: OK" in r.stdout


def test_demo_refuses_unverified_certificate(dev_server, fourc_bin):
    r = fourc(fourc_bin, "demo", "--server", f"wss://127.0.0.1:{dev_server.tls_port}",
              timeout=60, check=False)
    assert r.returncode == 1
    assert "certificate verification failed" in r.stdout + r.stderr


def test_demo_fails_clearly_without_server(fourc_bin):
    r = fourc(fourc_bin, "demo", "--server", "ws://127.0.0.1:1", timeout=60, check=False)
    assert r.returncode == 1
    assert "Connection refused" in r.stdout + r.stderr


def test_taken_username_can_be_fixed_afterwards(dev_server, fourc_bin, tmp_path):
    url = f"ws://127.0.0.1:{dev_server.port}"
    name = f"taken_{os.urandom(3).hex()}"
    fourc(fourc_bin, "register", "--server", url, "--profile", str(tmp_path / "a"),
          "--username", name)
    r = fourc(fourc_bin, "register", "--server", url, "--profile", str(tmp_path / "b"),
              "--username", name, check=False)
    assert r.returncode == 1 and "taken" in r.stdout + r.stderr
    out = fourc(fourc_bin, "username", "--profile", str(tmp_path / "b"),
                "--username", name + "_2").stdout
    assert f"is now {name}_2" in out
    out = fourc(fourc_bin, "devices", "--profile", str(tmp_path / "b")).stdout
    assert f"username {name}_2" in out


def test_version(fourc_bin):
    r = fourc(fourc_bin, "--version")
    assert r.stdout.startswith("fourc ") and "protocol version 1" in r.stdout
