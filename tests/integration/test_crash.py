"""Crash safety: kill -9 fourcd in the middle of a stream of sends, restart
it on the same data directory, let the sender retry what it has no answer
for, and check that every message reaches the recipient exactly once and in
order, and that nothing was reported accepted that is not stored."""

from __future__ import annotations

import signal
import time

import pytest

from fourcwire import T, Device, decode, frame, new_user, u16, u32, u64

N = 300
WINDOW = 16
KILL_AFTER = 100


def url(srv):
    return f"ws://127.0.0.1:{srv.port}/v1/ws"


def send_body(recipient: int, cid: int) -> bytes:
    ct = b"msg-%05d" % cid
    return u64(cid) + u64(recipient) + u16(1) + u64(recipient) + u32(1) + u32(len(ct)) + ct


@pytest.mark.slow
def test_kill9_during_sends_loses_and_duplicates_nothing(fourcd_factory):
    srv = fourcd_factory(allow_errors=True)
    a = new_user(url(srv))
    b = new_user(url(srv))
    b.close()

    accepted: dict[int, int] = {}   # client_msg_id -> timestamp
    next_id, inflight, killed = 1, set(), False
    try:
        while next_id <= N or inflight:
            while next_id <= N and len(inflight) < WINDOW:
                a.send_raw(frame(T["SEND"], next_id, send_body(b.account, next_id)))
                inflight.add(next_id)
                next_id += 1
            m = a.recv(timeout=5)
            assert m.name == "ACCEPTED", m
            assert m.req_id == m.f["client_msg_id"]
            accepted[m.req_id] = m.f["timestamp_ms"]
            inflight.discard(m.req_id)
            if len(accepted) == KILL_AFTER and not killed:
                srv.proc.send_signal(signal.SIGKILL)
                killed = True
    except Exception:
        assert killed, "the connection failed before the server was killed"
    assert killed
    srv.proc.wait(10)
    assert srv.proc.returncode == -signal.SIGKILL
    accepted_before = dict(accepted)
    assert KILL_AFTER <= len(accepted_before) < N

    restart_ms = time.time() * 1000
    srv.start()   # same data directory (ports are new)
    a.url = b.url = url(srv)
    a.ws = None
    a.reconnect()
    # Retry everything without an answer, in order, with the same ids and
    # bytes: idempotency absorbs what was committed but not acknowledged.
    for cid in range(1, N + 1):
        if cid in accepted_before:
            continue
        m = a.request(T["SEND"], send_body(b.account, cid))
        assert m.name == "ACCEPTED" and m.f["client_msg_id"] == cid
        accepted[cid] = m.f["timestamp_ms"]
    # Re-sending an already accepted one returns its original timestamp.
    probe = sorted(accepted_before)[len(accepted_before) // 2]
    m = a.request(T["SEND"], send_body(b.account, probe))
    assert m.f["timestamp_ms"] == accepted_before[probe]

    b.reconnect()
    got = []
    after = 0
    while True:
        done, frames = b.sync(after, 500)
        got += [f for f in frames if f.name == "DELIVER"]
        after = done.f["last_seq"]
        if not done.f["has_more"]:
            break
    cids = [int(f.f["ciphertext"][4:]) for f in got]
    seqs = [f.f["seq"] for f in got]
    assert seqs == list(range(1, N + 1)), "per-mailbox sequence has gaps"
    assert cids == list(range(1, N + 1)), "lost, duplicated or reordered messages"
    # Retries answered with a timestamp from before the restart were
    # committed before the kill but never acknowledged: absorbed, not doubled.
    absorbed = sum(1 for c, ts in accepted.items()
                   if c not in accepted_before and ts < restart_ms)
    print(f"crash: sent={N} accepted_before_kill={len(accepted_before)} "
          f"committed_unacked={absorbed} delivered={len(got)} duplicated=0 lost=0")
