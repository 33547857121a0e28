"""Protocol behaviour of fourcd driven with raw v1 frames from an independent
Python client (tests/integration/fourcwire.py over Python `websockets`):
accounts and devices, the key directory, 1:1 delivery semantics and sync."""

from __future__ import annotations

import concurrent.futures as cf
import time

import pytest

from fourcwire import (ERR, T, Device, ServerError, frame, fresh_id, keys_body, new_user,
                       prekeys, text, u16, u32, u64)


def url(srv):
    return f"ws://127.0.0.1:{srv.port}/v1/ws"


def err_code(excinfo):
    return excinfo.value.code


# ---- accounts, authentication ------------------------------------------------------

def test_register_then_auth_on_new_connection(server):
    d = new_user(url(server))
    assert d.account > 0 and d.device == 1
    ok = d.reconnect()
    assert ok.f == {"head_seq": 0, "acked_seq": 0}


def test_bad_invite_is_refused_and_connection_stays_usable(server):
    d = Device(url(server)).connect()
    with pytest.raises(ServerError) as e:
        d.register(invite="wrong-invite")
    assert err_code(e) == ERR["BAD_INVITE"]
    d.register()  # same connection, right invite
    assert d.device == 1


def test_register_with_bad_signature_is_refused(server):
    d = Device(url(server)).connect()
    sig = d.sign(b"fourc-register-v1" + b"\0" * 32 + d.pub)  # wrong nonce
    body = text("test-invite") + d.pub + keys_body() + sig
    with pytest.raises(ServerError) as e:
        d.request(T["REGISTER"], body)
    assert err_code(e) == ERR["AUTH_FAILED"]


def test_auth_with_wrong_key_or_unknown_device_fails(server):
    d = new_user(url(server))
    imposter = Device(url(server)).connect()
    imposter.account, imposter.device = d.account, d.device
    with pytest.raises(ServerError) as e:
        imposter.auth()
    assert err_code(e) == ERR["AUTH_FAILED"]
    wrong_key = e.value.msg.f["detail"]
    imposter.device = 9
    imposter.key = d.key
    imposter.pub = d.pub
    with pytest.raises(ServerError) as e:
        imposter.auth()
    assert err_code(e) == ERR["AUTH_FAILED"]
    # The answer does not reveal whether the device exists.
    assert wrong_key == e.value.msg.f["detail"] == "authentication failed"


def test_requests_before_auth_are_refused(server):
    d = Device(url(server)).connect()
    with pytest.raises(ServerError) as e:
        d.request(T["SYNC"], u64(0) + u16(10))
    assert err_code(e) == ERR["NOT_AUTHENTICATED"]
    d.register()
    with pytest.raises(ServerError) as e:
        d.register()
    assert err_code(e) == ERR["ALREADY_AUTHENTICATED"]


def test_bad_frames_get_defined_errors_and_connection_survives(server):
    d = new_user(url(server))
    d.send_raw(b"\x01\x0b")  # shorter than a header
    m = d.recv()
    assert m.name == "ERROR" and m.f["code"] == ERR["BAD_FRAME"]
    d.send_raw(frame(T["SYNC"], 5, u64(0) + u16(1), version=2))
    m = d.recv()
    assert (m.name, m.req_id, m.f["code"]) == ("ERROR", 5, ERR["UNSUPPORTED_VERSION"])
    d.send_raw(frame(0x3E, 6, b""))
    m = d.recv()
    assert (m.req_id, m.f["code"]) == (6, ERR["UNKNOWN_TYPE"])
    d.send_raw(frame(T["SYNC"], 7, u64(0)))  # body cut short: BAD_FRAME
    m = d.recv()
    assert (m.req_id, m.f["code"]) == (7, ERR["BAD_FRAME"])
    done, _ = d.sync(0)
    assert done.f["head_seq"] == 0


def test_usernames_resolve_case_insensitively_and_are_unique(server):
    a = new_user(url(server))
    b = new_user(url(server))
    name = f"user_{fresh_id() % 10**8}"
    assert a.request(T["USERNAME_SET"], text(name)).name == "OK"
    info = b.request(T["RESOLVE"], text(name))
    assert info.f == {"account": a.account, "username": name, "devices": [1]}
    with pytest.raises(ServerError) as e:
        b.request(T["USERNAME_SET"], text(name))
    assert err_code(e) == ERR["TAKEN"]
    with pytest.raises(ServerError) as e:
        b.request(T["RESOLVE"], text("nobody_here"))
    assert err_code(e) == ERR["NOT_FOUND"]
    with pytest.raises(ServerError) as e:
        b.request(T["USERNAME_SET"], text("Bad Name!"))
    assert err_code(e) == ERR["BAD_REQUEST"]


def test_link_device_limit_and_unlink(fourcd_factory):
    srv = fourcd_factory(config={"accounts": {"max_devices": 2}})
    a1 = new_user(url(srv))
    code = a1.request(T["LINK_BEGIN"], b"")
    assert code.name == "LINK_CODE" and code.f["expires_in_s"] > 0
    a2 = Device(url(srv)).connect()
    a2.link(code.f["code"])
    assert (a2.account, a2.device) == (a1.account, 2)
    # A link code is good for one device only.
    a3 = Device(url(srv)).connect()
    with pytest.raises(ServerError) as e:
        a3.link(code.f["code"])
    assert err_code(e) == ERR["AUTH_FAILED"]
    # The account is full.
    code2 = a1.request(T["LINK_BEGIN"], b"").f["code"]
    a3 = Device(url(srv)).connect()
    with pytest.raises(ServerError) as e:
        a3.link(code2)
    assert err_code(e) == ERR["LIMIT"]
    assert a1.devices(a1.account) == [1, 2]
    # Unlinking device 2 closes its connection and frees the slot.
    assert a1.request(T["DEVICE_REMOVE"], u32(2)).name == "OK"
    with pytest.raises(Exception):
        for _ in range(5):
            a2.recv(timeout=2)
    assert a2.ws.close_code == 1008
    assert a1.devices(a1.account) == [1]


# ---- key directory --------------------------------------------------------------------

def test_one_time_prekeys_are_handed_out_exactly_once(server):
    owner = new_user(url(server), otpks=prekeys(1, 20))
    fetchers = [new_user(url(server)) for _ in range(4)]

    def fetch_all(dev):
        return [dev.bundle(owner.account, 1).f["otpk_id"] for _ in range(6)]

    with cf.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(fetch_all, fetchers))
    ids = [i for r in results for i in r]
    handed = [i for i in ids if i]
    assert sorted(handed) == list(range(1, 21))   # each of the 20 keys once
    assert ids.count(0) == 4                        # then bundles without one
    b = fetchers[0].bundle(owner.account, 1)
    assert b.f["otpk_id"] == 0 and b.f["otpk"] == b""
    assert b.f["spk_id"] == 1 and len(b.f["spk_sig"]) == 64


def test_owner_learns_when_pool_runs_low(server):
    owner = new_user(url(server), otpks=prekeys(1, 6))  # threshold is 5
    other = new_user(url(server))
    assert other.bundle(owner.account, 1).f["otpk_id"] == 1
    assert other.bundle(owner.account, 1).f["otpk_id"] == 2   # 4 left: below 5
    low = owner.wait_push("PREKEYS_LOW")
    assert low.f["remaining"] == 4
    st = owner.upload(prekeys(100, 10))
    assert st.f["remaining"] == 14
    # Offline owners hear it when they come back.
    for _ in range(11):
        other.bundle(owner.account, 1)
    owner.reconnect()
    assert owner.wait_push("PREKEYS_LOW").f["remaining"] == 3


def test_prekeys_survive_restart_without_reuse(fourcd_factory):
    srv = fourcd_factory()
    owner = new_user(url(srv), otpks=prekeys(1, 4))
    other = new_user(url(srv))
    first = [other.bundle(owner.account, 1).f["otpk_id"] for _ in range(2)]
    srv.stop()
    srv.start()
    other = new_user(url(srv))
    rest = [other.bundle(owner.account, 1).f["otpk_id"] for _ in range(3)]
    assert first == [1, 2] and rest == [3, 4, 0]


# ---- messaging ------------------------------------------------------------------------

def pair(srv):
    a = new_user(url(srv))
    b = new_user(url(srv))
    return a, b


def test_send_delivers_live_with_per_device_sequence(server):
    a, b = pair(server)
    for i in range(3):
        acc = a.send(b.account, [(b.account, 1, b"ct-%d" % i)], client_msg_id=100 + i)
        assert acc.name == "ACCEPTED" and acc.f["client_msg_id"] == 100 + i
    got = [b.wait_push("DELIVER") for _ in range(3)]
    assert [m.f["seq"] for m in got] == [1, 2, 3]
    assert [m.f["ciphertext"] for m in got] == [b"ct-0", b"ct-1", b"ct-2"]
    assert all(m.f["sender"] == a.account and m.f["sender_device"] == 1 for m in got)


def test_stale_device_list_is_refused_with_current_lists(server):
    a, b = pair(server)
    code = b.request(T["LINK_BEGIN"], b"").f["code"]
    b2 = Device(url(server)).connect()
    b2.link(code)
    m = a.send(b.account, [(b.account, 1, b"x")], client_msg_id=1, collect=True)[0]
    assert m.name == "STALE_DEVICES"
    assert m.f["devsets"] == {b.account: [1, 2], a.account: []}
    # Nothing was stored: b's mailbox is empty.
    done, frames = b.sync(0)
    assert frames == [] and done.f["head_seq"] == 0
    # Addressing every device works; each device gets its own ciphertext.
    acc = a.send(b.account, [(b.account, 1, b"for-1"), (b.account, 2, b"for-2")],
                 client_msg_id=1)
    assert acc.name == "ACCEPTED"
    assert b.wait_push("DELIVER").f["ciphertext"] == b"for-1"
    assert b2.wait_push("DELIVER").f["ciphertext"] == b"for-2"


def test_sender_other_devices_must_be_addressed(server):
    a, b = pair(server)
    code = a.request(T["LINK_BEGIN"], b"").f["code"]
    a2 = Device(url(server)).connect()
    a2.link(code)
    m = a.send(b.account, [(b.account, 1, b"x")], client_msg_id=5, collect=True)[0]
    assert m.f["devsets"] == {b.account: [1], a.account: [2]}
    acc = a.send(b.account, [(b.account, 1, b"to-b"), (a.account, 2, b"copy")],
                 client_msg_id=5)
    assert acc.name == "ACCEPTED"
    assert a2.wait_push("DELIVER").f["ciphertext"] == b"copy"


def test_resend_is_idempotent_and_conflicting_resend_refused(server):
    a, b = pair(server)
    first = a.send(b.account, [(b.account, 1, b"once")], client_msg_id=42)
    again = a.send(b.account, [(b.account, 1, b"once")], client_msg_id=42)
    assert again.f == first.f          # same timestamp: the original acceptance
    with pytest.raises(ServerError) as e:
        a.send(b.account, [(b.account, 1, b"different")], client_msg_id=42)
    assert err_code(e) == ERR["CONFLICT"]
    done, frames = b.sync(0)
    assert [f.f["ciphertext"] for f in frames] == [b"once"] and done.f["head_seq"] == 1


def test_racing_resends_store_one_message(server):
    a, b = pair(server)
    body = u64(77) + u64(b.account) + u16(1) + u64(b.account) + u32(1) + u32(4) + b"race"
    for rid in (11, 12, 13):   # pipelined: no wait between them
        a.send_raw(frame(T["SEND"], rid, body))
    answers = [a.recv() for _ in range(3)]
    assert sorted(m.req_id for m in answers) == [11, 12, 13]
    assert all(m.name == "ACCEPTED" for m in answers)
    assert len({m.f["timestamp_ms"] for m in answers}) == 1
    done, frames = b.sync(0)
    assert len(frames) == 1 and done.f["head_seq"] == 1


def test_backlog_sync_paging_ack_and_reconnect(server):
    a, b = pair(server)
    b.close()
    for i in range(1, 51):
        a.send(b.account, [(b.account, 1, b"m%02d" % i)], client_msg_id=i)
    ok = b.reconnect()
    assert ok.f == {"head_seq": 50, "acked_seq": 0}
    b.ack(10)
    # C19 a): after=10, limit=24 -> 11..34 oldest first, has_more, no gap
    done, frames = b.sync(10, 24)
    assert [f.f["seq"] for f in frames] == list(range(11, 35))
    assert done.f == {"head_seq": 50, "last_seq": 34, "has_more": 1}
    done, frames = b.sync(34, 24)
    assert [f.f["seq"] for f in frames] == list(range(35, 50 + 1))[:16]
    assert done.f["has_more"] == 0 and done.f["last_seq"] == 50
    b.ack(50, silent=True)
    ok = b.reconnect()
    assert ok.f == {"head_seq": 50, "acked_seq": 50}
    done, frames = b.sync(0)
    assert frames == [] and done.f["last_seq"] == 0


def test_subscribe_before_fetch_has_no_gap(server):
    """C19 b): a message committed between AUTH and SYNC arrives live; the
    sync may return it too; de-duplicating by seq leaves no gap."""
    a, b = pair(server)
    b.close()
    a.send(b.account, [(b.account, 1, b"before")], client_msg_id=1)
    b.reconnect()
    a.send(b.account, [(b.account, 1, b"between")], client_msg_id=2)
    done, frames = b.sync(0)
    seen = {f.f["seq"]: f.f["ciphertext"] for f in frames}
    for m in b.pushed:
        if m.name == "DELIVER":
            seen[m.f["seq"]] = m.f["ciphertext"]
    try:
        m = b.wait_push("DELIVER", timeout=1)
        seen[m.f["seq"]] = m.f["ciphertext"]
    except TimeoutError:
        pass
    assert seen == {1: b"before", 2: b"between"}


def test_newer_connection_replaces_older_one(server):
    a, b = pair(server)
    old = b.ws
    b.ws = None
    b.connect()
    b.auth()
    with pytest.raises(Exception):
        for _ in range(3):
            old.recv(timeout=2)
    assert old.close_code == 1008
    a.send(b.account, [(b.account, 1, b"to-new")], client_msg_id=9)
    assert b.wait_push("DELIVER").f["ciphertext"] == b"to-new"


def test_expired_entries_yield_explicit_resync(fourcd_factory):
    srv = fourcd_factory(config={"mailbox": {"retention_seconds": 1,
                                             "sweep_interval_ms": 200}})
    a, b = pair(srv)
    b.close()
    for i in range(1, 4):
        a.send(b.account, [(b.account, 1, b"old%d" % i)], client_msg_id=i)
    time.sleep(2.0)
    b.reconnect()
    a.send(b.account, [(b.account, 1, b"fresh")], client_msg_id=10)
    done, frames = b.sync(0)
    resync = [f for f in frames if f.name == "RESYNC"]
    assert [(r.f["lost_from"], r.f["lost_to"]) for r in resync] == [(1, 3)]
    delivered = [f.f["ciphertext"] for f in frames if f.name == "DELIVER"]
    assert delivered == [b"fresh"] and done.f["head_seq"] == 4


def test_send_to_unknown_account_is_not_found(server):
    a = new_user(url(server))
    with pytest.raises(ServerError) as e:
        a.send(fresh_id(), [(1, 1, b"x")], client_msg_id=1)
    assert err_code(e) == ERR["NOT_FOUND"]


def test_value_rule_violation_is_bad_request(server):
    d = new_user(url(server))
    d.send_raw(frame(T["SYNC"], 8, u64(0) + u16(0)))  # limit must be 1..500
    m = d.recv()
    assert (m.name, m.req_id, m.f["code"]) == ("ERROR", 8, ERR["BAD_REQUEST"])


def test_duplicate_envelope_is_bad_request_not_stale(server):
    a, b = pair(server)
    with pytest.raises(ServerError) as e:
        a.send(b.account, [(b.account, 1, b"x"), (b.account, 1, b"y")], client_msg_id=3)
    assert err_code(e) == ERR["BAD_REQUEST"]
    done, frames = b.sync(0)
    assert frames == [] and done.f["head_seq"] == 0


def test_only_device_cannot_be_removed(server):
    a = new_user(url(server))
    with pytest.raises(ServerError) as e:
        a.request(T["DEVICE_REMOVE"], u32(1))
    assert err_code(e) == ERR["LIMIT"]
    with pytest.raises(ServerError) as e:
        a.request(T["DEVICE_REMOVE"], u32(7))
    assert err_code(e) == ERR["NOT_FOUND"]
    assert a.devices(a.account) == [1]


def test_open_verifier_admits_any_token(fourcd_factory):
    srv = fourcd_factory(config={"accounts": {"verifier": "open", "invite_codes": None}},
                         allow_errors=False)
    d = Device(url(srv)).connect()
    d.register(invite="anything-at-all")
    assert d.device == 1
    assert "event=registration_open" in srv.log_path.read_text()


def test_link_codes_are_capped_per_account(server):
    a = new_user(url(server))
    codes = [a.request(T["LINK_BEGIN"], b"").f["code"] for _ in range(4)]
    assert len(set(codes)) == 4
    with pytest.raises(ServerError) as e:
        a.request(T["LINK_BEGIN"], b"")
    assert err_code(e) == ERR["RATE_LIMITED"]
    # Another account is not affected.
    b = new_user(url(server))
    assert b.request(T["LINK_BEGIN"], b"").name == "LINK_CODE"


def metric(srv, name):
    for line in srv.admin_get("/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_closed_connection_leaves_no_presence(fourcd_factory):
    """After a normal WebSocket close handshake the device is offline: new
    messages wait in its mailbox instead of being pushed to a dead id."""
    srv = fourcd_factory()
    a, b = pair(srv)
    b.close()   # client-initiated close handshake
    time.sleep(0.3)
    before = metric(srv, "fourc_messages_delivered_total")
    for i in range(5):
        a.send(b.account, [(b.account, 1, b"later%d" % i)], client_msg_id=i + 1)
    assert metric(srv, "fourc_messages_delivered_total") == before
    b.reconnect()
    done, frames = b.sync(0)
    assert [f.f["seq"] for f in frames] == [1, 2, 3, 4, 5]
    assert "event=session_replaced" not in srv.log_path.read_text()


def test_sync_from_the_top_of_the_range_reports_no_loss(server):
    a, b = pair(server)
    a.send(b.account, [(b.account, 1, b"x")], client_msg_id=1)
    for after in (2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1):
        done, frames = b.sync(after)
        assert frames == [] and done.f["has_more"] == 0


def test_silent_ack_flood_gets_no_answers(server):
    a, b = pair(server)
    a.send(b.account, [(b.account, 1, b"x")], client_msg_id=1)
    for _ in range(300):
        b.send_raw(frame(T["ACK"], 0, u64(1)))
    time.sleep(0.5)         # let the acks in flight drain
    done, _ = b.sync(0)
    assert done.name == "SYNC_DONE"
    assert [m for m in b.pushed if m.name == "ERROR"] == []


def test_bundle_fetches_are_rate_limited_per_device(fourcd_factory):
    srv = fourcd_factory(config={"limits": {"bundle_fetch_per_min": 5}})
    owner = new_user(url(srv), otpks=prekeys(1, 20))
    other = new_user(url(srv))
    ids = [other.bundle(owner.account, 1).f["otpk_id"] for _ in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    with pytest.raises(ServerError) as e:
        other.bundle(owner.account, 1)
    assert err_code(e) == ERR["RATE_LIMITED"]
    assert 0 < e.value.msg.f["retry_after_ms"] <= 60000
    # Reconnecting does not refill the budget: it belongs to the device.
    other.reconnect()
    with pytest.raises(ServerError) as e:
        other.bundle(owner.account, 1)
    assert err_code(e) == ERR["RATE_LIMITED"]
    # The refused fetches handed out nothing: the next key is still 6.
    third = new_user(url(srv))
    assert third.bundle(owner.account, 1).f["otpk_id"] == 6
