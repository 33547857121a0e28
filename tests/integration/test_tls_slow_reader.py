"""C15: a TLS client that stops reading while the server pushes 200 messages
of 8 KiB must later receive exactly messages 1..200, in order, intact, or be
closed deliberately by the backpressure policy; never a TLS alert or a
corrupted frame. Run once plainly and once with socket writes made to fail
with EAGAIN and to come up short (LD_PRELOAD shim), so every partial-write
path of the output queue is exercised under TLS."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from websockets.sync.client import connect

from fourcwire import Device, decode, new_user

COUNT = 200
SIZE = 8 * 1024
HERE = Path(__file__).resolve().parent


def payload(i: int) -> bytes:
    body = struct.pack(">I", i) + bytes((i * 7 + k) % 251 for k in range(SIZE - 8))
    return body + struct.pack(">I", zlib.crc32(body))


def tls_device(srv, account, device, key) -> Device:
    """Authenticates over TLS with a 4 KiB receive buffer."""
    d = Device(f"wss://127.0.0.1:{srv.tls_port}/v1/ws", key=key)
    d.account, d.device = account, device
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.tls_port))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # max_queue=1: the client library stops reading from the socket as soon
    # as one message waits unread, so the server's writes back up.
    d.ws = connect(d.url, sock=sock, ssl=ctx, server_hostname="localhost", max_size=2 ** 21,
                   max_queue=1, compression=None, open_timeout=5, legacy=True)
    ch = decode(d.ws.recv(timeout=5))
    d.nonce = ch.f["nonce"]
    d.auth()
    return d


def run_slow_reader(srv):
    url = f"ws://127.0.0.1:{srv.port}/v1/ws"
    a = new_user(url)
    b = new_user(url)
    b.close()
    reader = tls_device(srv, b.account, b.device, b.key)
    for i in range(1, COUNT + 1):
        m = a.send(b.account, [(b.account, 1, payload(i))], client_msg_id=i)
        assert m.name == "ACCEPTED"
    time.sleep(5)   # the reader does not read for 5 s
    got = []
    while len(got) < COUNT:
        m = reader.recv(timeout=10)
        if m.name == "DELIVER":
            got.append(m)
    for n, m in enumerate(got, start=1):
        ct = m.f["ciphertext"]
        assert m.f["seq"] == n
        assert struct.unpack(">I", ct[:4])[0] == n
        assert zlib.crc32(ct[:-4]) == struct.unpack(">I", ct[-4:])[0], f"corrupt message {n}"
    reader.close()


@pytest.mark.slow
def test_c15_tls_slow_reader_gets_everything_in_order(fourcd_factory):
    run_slow_reader(fourcd_factory())


@pytest.mark.slow
def test_c15_tls_under_eagain_and_short_writes(fourcd_factory, tmp_path):
    if "asan" in os.environ.get("FOURCD", ""):
        pytest.skip("the sanitizer runtime must be the first preloaded library")
    shim = tmp_path / "short_writes.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(shim),
                    str(HERE / "shim" / "short_writes.c"), "-ldl"], check=True)
    run_slow_reader(fourcd_factory(env={"LD_PRELOAD": str(shim)}))


N_BIG = 120


def big(i: int) -> bytes:
    return struct.pack(">I", i) * (60 * 1024 // 4)


@pytest.mark.slow
def test_slow_reader_is_dropped_and_loses_nothing(fourcd_factory):
    """Past max_outbound_bytes of queued output the server drops a reader
    that does not read (instead of buffering without bound); the messages
    stay in its mailbox and arrive, in order, when it syncs again."""
    srv = fourcd_factory(config={"limits": {"max_outbound_bytes": 65536}})
    url = f"ws://127.0.0.1:{srv.port}/v1/ws"
    a = new_user(url)
    b = new_user(url)
    b.close()
    reader = tls_device(srv, b.account, b.device, b.key)
    # 120 x 60 KiB: more than the kernel's socket buffers and our 64 KiB
    # queue can hold together.
    for i in range(1, N_BIG + 1):
        m = a.send(b.account, [(b.account, 1, big(i))], client_msg_id=i)
        assert m.name == "ACCEPTED"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "event=slow_reader_dropped" not in srv.log_text():
        time.sleep(0.1)
    assert "event=slow_reader_dropped" in srv.log_text()
    metrics = srv.admin_get("/metrics")[2].decode()
    assert 'fourc_errors_total{kind="slow_reader"} 1' in metrics
    reader.ws.close_timeout = 1
    try:
        reader.close()
    except Exception:
        pass
    # Nothing was lost: a fresh connection syncs all 60, in order, intact.
    b.url = url
    b.reconnect()
    got, after = [], 0
    while True:
        done, frames = b.sync(after, 500)
        got += [f for f in frames if f.name == "DELIVER"]
        after = done.f["last_seq"]
        if not done.f["has_more"]:
            break
    assert [f.f["seq"] for f in got] == list(range(1, N_BIG + 1))
    assert all(f.f["ciphertext"] == big(i) for i, f in enumerate(got, start=1))
