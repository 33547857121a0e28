"""WebSocket framing and lifecycle against a real fourcd (cases C01, C03, C04,
C05, C07, C08, C15, C17 of the shared edge-case list, plus the handshake,
CHALLENGE, header and authentication deadlines).

Inputs are the byte-exact vectors of the cases, sent after an F1 upgrade to
/v1/ws. Client frames are masked with the F2 key 37 fa 21 3d. Server failure
closes are exactly `88 02 <code>` (F3) and a client close is echoed per C05.
Our protocol is binary: a complete valid TEXT message is refused with 1003,
which is how tests observe that a text message was reassembled and validated
(a broken reassembly would fail with 1002 or 1007 instead). The `server`
fixture re-checks after every test that a fresh F1 connection still gets
101 + CHALLENGE.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import ssl
import struct
import time
import zlib

import pytest

import wsraw
from wsraw import (CLOSE_INVALID_DATA, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_PROTOCOL,
                   CLOSE_TOO_BIG, CLOSE_UNSUPPORTED, F1_ACCEPT, OP_BINARY, OP_CLOSE,
                   OP_CONT, OP_PING, OP_PONG, OP_TEXT, build_frame, close_payload)

MAX_MESSAGE = 1048576


def hx(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


PONG_X = hx("8a 01 78")
PING_X = hx("89 81 37 fa 21 3d 4f")
TEXT_HELLO = hx("81 85 37 fa 21 3d 7f 9f 4d 51 58")
# "κόσμε", a UTF-16 surrogate (ED A0 80), "edited": the C05 f) close reason.
C05F_REASON = hx("ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80") + b"edited"


def deflate_raw(data: bytes) -> bytes:
    """F4: raw DEFLATE, Z_SYNC_FLUSH, trailing 00 00 ff ff removed."""
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def assert_quiet(conn, seconds: float, why: str):
    assert conn.quiet_for(seconds), (
        f"server reacted too early ({why}); received: {bytes(conn.buf[:32]).hex(' ')}"
        f"{' and closed' if conn.eof else ''}")


# ------------------------------------------------------------ vectors (offline)

def test_f2_vector_masked_hello():
    assert build_frame(OP_TEXT, b"Hello") == TEXT_HELLO
    assert wsraw.mask_bytes(wsraw.mask_bytes(b"Hello")) == b"Hello"


@pytest.mark.parametrize("literal, frame", [
    ("09 82 37 fa 21 3d 5f 9f", build_frame(OP_PING, b"he", fin=False)),
    ("80 82 37 fa 21 3d 5b 95", build_frame(OP_CONT, b"lo")),
    ("01 83 37 fa 21 3d 7f 9f 4d", build_frame(OP_TEXT, b"Hel", fin=False)),
    ("89 81 37 fa 21 3d 4f", build_frame(OP_PING, b"x")),
    ("81 82 37 fa 21 3d f7 55", build_frame(OP_TEXT, hx("c0 af"))),
    ("81 83 37 fa 21 3d da 5a a1", build_frame(OP_TEXT, hx("ed a0 80"))),
    ("81 84 37 fa 21 3d c3 6a a1 bd", build_frame(OP_TEXT, hx("f4 90 80 80"))),
    ("01 81 37 fa 21 3d d5", build_frame(OP_TEXT, "€".encode()[:1], fin=False)),
    ("80 82 37 fa 21 3d b5 56", build_frame(OP_CONT, "€".encode()[1:])),
    ("01 83 37 fa 21 3d 56 98 ef", build_frame(OP_TEXT, b"ab\xce", fin=False)),
    ("81 05 48 65 6c 6c 6f", build_frame(OP_TEXT, b"Hello", masked=False)),
    ("88 80 37 fa 21 3d", build_frame(OP_CLOSE)),
    ("88 81 37 fa 21 3d 34", build_frame(OP_CLOSE, b"\x03")),
    ("88 82 37 fa 21 3d 34 12", build_frame(OP_CLOSE, close_payload(1000))),
    ("88 82 37 fa 21 3d 24 72", build_frame(OP_CLOSE, close_payload(5000))),
    ("88 96 37 fa 21 3d 34 12 ef 87 d6 47 98 f2 b4 34 9d f3 82 17 81 bd 52 9e 48 49 52 9e",
     build_frame(OP_CLOSE, close_payload(1000, C05F_REASON))),
    ("82 ff 00 00 00 01 00 00 00 00 37 fa 21 3d",
     build_frame(OP_BINARY, length=1 << 32, length_form="64")),
    ("81 fe 00 05 37 fa 21 3d 7f 9f 4d 51 58",
     build_frame(OP_TEXT, b"Hello", length_form="16")),
], ids=lambda v: v.replace(" ", "")[:24] if isinstance(v, str) else "built")
def test_case_vectors_match_frame_builder(literal, frame):
    assert hx(literal) == frame


def test_case_f4_deflate_sizes():
    # C07 states the compressed sizes; they pin down the F4 procedure.
    assert len(deflate_raw(bytes(65537))) == 79
    assert len(deflate_raw(bytes(65536))) == 79
    assert len(deflate_raw(bytes(1 << 20))) == 1033


def test_c05f_reason_is_invalid_utf8():
    with pytest.raises(UnicodeDecodeError):
        C05F_REASON.decode("utf-8")


# -------------------------------------------------------- handshake, CHALLENGE

def test_f1_upgrade_accept_and_challenge(server):
    conn, resp, challenge = server.ws()
    with conn:
        assert resp.status == 101
        assert resp.header("Sec-WebSocket-Accept") == F1_ACCEPT
        assert resp.header("Sec-WebSocket-Extensions") is None
        assert challenge.min_version <= wsraw.PROTO_VERSION <= challenge.max_version
        assert challenge.nonce != bytes(32)
        assert abs(challenge.server_time_ms - time.time() * 1000) < 60_000
    conn2, _, challenge2 = server.ws()
    conn2.close()
    assert challenge2.nonce != challenge.nonce, "CHALLENGE nonce repeated across connections"


def test_challenge_frame_bytes(server):
    conn = server.raw()
    with conn:
        resp = conn.ws_handshake()
        wsraw.check_upgrade_response(resp)
        head = conn.read_exact(2, what="CHALLENGE frame header")
        # One unmasked, final binary frame with a 54-byte payload.
        assert head == hx("82 36")
        payload = conn.read_exact(54, what="CHALLENGE payload")
        assert payload[:12] == hx("01 40 00 00 00 00 00 00 00 00 00 2a")
        wsraw.parse_challenge(payload)


def test_accept_is_computed_from_the_key(server):
    key = base64.b64encode(os.urandom(16)).decode()
    req = wsraw.ws_request(replace={"Sec-WebSocket-Key": key})
    conn = server.raw()
    with conn:
        resp = conn.ws_handshake(req)
        wsraw.check_upgrade_response(resp, key=key)
        wsraw.read_challenge(conn)


def test_challenge_over_tls(server):
    conn, resp, challenge = server.ws(tls=True)
    with conn:
        assert resp.header("Sec-WebSocket-Accept") == F1_ACCEPT
        conn.send(PING_X)
        assert conn.read_frame().raw == PONG_X


def test_ping_pong_then_text_refused_1003(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(PING_X)
        assert conn.read_frame().raw == PONG_X
        # C01c's "Hello" as one frame: valid text, but the protocol is binary.
        conn.send(TEXT_HELLO)
        conn.expect_close(CLOSE_UNSUPPORTED, exact=False)


def test_websockets_library_interop(server):
    """An independent client implementation (offering permessage-deflate,
    which the server must decline) upgrades, receives the CHALLENGE, gets a
    pong and completes a normal close."""
    from websockets.sync.client import connect
    with connect(f"ws://{server.host}:{server.port}/v1/ws", proxy=None, open_timeout=5,
                 close_timeout=5, ping_interval=None) as ws:
        message = ws.recv(timeout=5)
        assert isinstance(message, bytes)
        wsraw.parse_challenge(message)
        assert ws.ping(b"abc").wait(5), "no pong"
        ws.close()
    assert ws.close_code == CLOSE_NORMAL


def test_websockets_library_over_tls(server):
    from websockets.sync.client import connect
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with connect(f"wss://{server.host}:{server.tls_port}/v1/ws", ssl=ctx, proxy=None,
                 open_timeout=5, close_timeout=5, ping_interval=None) as ws:
        wsraw.parse_challenge(ws.recv(timeout=5))
        ws.close()
    assert ws.close_code == CLOSE_NORMAL


# ---------------------------------------------------------------------- C01

def test_c01a_fragmented_ping_fails_1002(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("09 82 37 fa 21 3d 5f 9f"))
        conn.send_lenient(hx("80 82 37 fa 21 3d 5b 95"))
        conn.expect_close(CLOSE_PROTOCOL)  # and no pong before it


def test_c01b_ping_with_126_byte_payload_fails_1002(server):
    frame = build_frame(OP_PING, bytes(range(126)))
    assert frame[:8] == hx("89 fe 00 7e 37 fa 21 3d") and len(frame) == 134
    conn, _, _ = server.ws()
    with conn:
        conn.send_lenient(frame)
        conn.expect_close(CLOSE_PROTOCOL)


def test_c01c_ping_between_text_fragments(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("01 83 37 fa 21 3d 7f 9f 4d"))
        conn.send(PING_X)
        assert conn.read_frame().raw == PONG_X
        conn.send(hx("80 82 37 fa 21 3d 5b 95"))
        # Exactly one complete, valid text message "Hello" was reassembled:
        # refused as text (1003), not as a protocol (1002) or UTF-8 (1007) error.
        conn.expect_close(CLOSE_UNSUPPORTED, exact=False)


def test_c01_close_between_fragments_is_handled(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("01 83 37 fa 21 3d 7f 9f 4d"))
        conn.send(build_frame(OP_CLOSE, close_payload(1000)))
        conn.expect_close(CLOSE_NORMAL, reply=False)


# ---------------------------------------------------------------------- C03

@pytest.mark.parametrize("frame", [
    pytest.param("81 82 37 fa 21 3d f7 55", id="a-overlong-slash"),
    pytest.param("81 83 37 fa 21 3d da 5a a1", id="b-surrogate"),
    pytest.param("81 84 37 fa 21 3d c3 6a a1 bd", id="c-above-10ffff"),
    pytest.param("81 83 37 fa 21 3d 56 98 ef", id="truncated-at-fin"),
])
def test_c03_invalid_utf8_fails_1007(server, frame):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx(frame))
        conn.expect_close(CLOSE_INVALID_DATA)


def test_c03d_euro_split_across_fragments_is_valid(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("01 81 37 fa 21 3d d5"))
        assert_quiet(conn, 0.3, "E2 alone is a valid prefix of a split character")
        conn.send(hx("80 82 37 fa 21 3d b5 56"))
        conn.expect_close(CLOSE_UNSUPPORTED, exact=False)


def test_c03e_invalid_continuation_byte_fails_1007(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("01 83 37 fa 21 3d 56 98 ef"))
        assert_quiet(conn, 0.3, "\"ab\" + CE is a valid prefix")
        conn.send(hx("80 81 37 fa 21 3d 4f"))
        conn.expect_close(CLOSE_INVALID_DATA)


def test_c03e_fails_fast_without_waiting_for_fin(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("01 83 37 fa 21 3d 56 98 ef"))
        conn.send(build_frame(OP_CONT, b"x", fin=False))
        conn.expect_close(CLOSE_INVALID_DATA, timeout=2.0)


# ---------------------------------------------------------------------- C04

@pytest.mark.parametrize("frame", [
    pytest.param("81 05 48 65 6c 6c 6f", id="text-hello"),
    pytest.param("82 03 01 02 03", id="binary"),
    pytest.param("89 01 78", id="ping"),
    pytest.param("88 02 03 e8", id="close"),
])
def test_c04_unmasked_frame_closes_connection(server, frame):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx(frame))
        # The server must not wait for a mask key that will never come.
        rest = conn.read_to_close(3.0)
        assert rest in (b"", wsraw.server_close_frame(CLOSE_PROTOCOL)), (
            f"expected TCP close, optionally after 88 02 03 ea; got {rest.hex(' ')}")


# ---------------------------------------------------------------------- C05

def test_c05a_empty_close_gets_empty_close(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("88 80 37 fa 21 3d"))
        frame = conn.read_close()
        assert frame.raw == hx("88 00"), f"expected 88 00, got {frame.raw.hex(' ')}"
        assert conn.closed_within(3.0)


@pytest.mark.parametrize("frame", [
    pytest.param("88 81 37 fa 21 3d 34", id="b-1-byte-body"),
    pytest.param("88 82 37 fa 21 3d 34 17", id="d-1005"),
    pytest.param("88 82 37 fa 21 3d 34 14", id="d-1006"),
    pytest.param("88 82 37 fa 21 3d 34 16", id="d-1004"),
    pytest.param("88 82 37 fa 21 3d 34 1d", id="d-999"),
    pytest.param("88 82 37 fa 21 3d 34 0d", id="d-1015"),
    pytest.param("88 82 37 fa 21 3d 34 02", id="d-1016"),
    pytest.param("88 82 37 fa 21 3d 3c 4d", id="d-2999"),
    pytest.param("88 82 37 fa 21 3d 24 72", id="d-5000"),
])
def test_c05_invalid_close_fails_1002(server, frame):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx(frame))
        conn.expect_close(CLOSE_PROTOCOL, reply=False)


def test_c05g_close_with_126_byte_payload_fails_1002(server):
    frame = build_frame(OP_CLOSE, close_payload(1000, b"a" * 124))
    assert frame[:8] == hx("88 fe 00 7e 37 fa 21 3d")
    conn, _, _ = server.ws()
    with conn:
        conn.send_lenient(frame)
        conn.expect_close(CLOSE_PROTOCOL, reply=False)


@pytest.mark.parametrize("frame, code", [
    pytest.param("88 82 37 fa 21 3d 34 12", 1000, id="c-1000"),
    pytest.param("88 82 37 fa 21 3d 3c 42", 3000, id="e-3000"),
    pytest.param("88 82 37 fa 21 3d 24 7d", 4999, id="e-4999"),
    pytest.param(build_frame(OP_CLOSE, close_payload(1001)).hex(), 1001, id="1001"),
    pytest.param(build_frame(OP_CLOSE, close_payload(1000, "bye €".encode())).hex(), 1000,
                 id="1000-with-reason"),
])
def test_c05_valid_close_is_echoed(server, frame, code):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx(frame))
        conn.expect_close(code, reply=False)


def test_c05f_invalid_utf8_reason_fails_1007(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("88 96 37 fa 21 3d 34 12 ef 87 d6 47 98 f2 b4 34 9d f3 82 17 81 bd "
                     "52 9e 48 49 52 9e"))
        conn.expect_close(CLOSE_INVALID_DATA, reply=False)


# ---------------------------------------------------------------------- C07

DEFLATE_OFFER = wsraw.ws_request(add=[("Sec-WebSocket-Extensions", "permessage-deflate")])


def _c07_inputs():
    a = deflate_raw(bytes(65537))
    b = deflate_raw(bytes(65536))
    c = deflate_raw(bytes(1 << 20))
    big = deflate_raw(bytes(4 << 20))
    d = build_frame(OP_BINARY, big[:64], fin=False, rsv=4)
    for i in range(64, min(len(big), 64 * 40), 64):
        d += build_frame(OP_CONT, big[i:i + 64], fin=False)
    return [
        pytest.param(build_frame(OP_BINARY, a, rsv=4), id="a-65537-zeros"),
        pytest.param(build_frame(OP_BINARY, b, rsv=4), id="b-65536-zeros"),
        pytest.param(build_frame(OP_BINARY, c, rsv=4), id="c-1MiB-zeros"),
        pytest.param(d, id="d-fragmented"),
    ]


@pytest.mark.parametrize("payload", _c07_inputs())
def test_c07_compressed_frames_without_negotiation_fail_1002(server, payload):
    """We never negotiate permessage-deflate, so RSV1 is always a protocol
    error: nothing is ever inflated and no bomb can go off."""
    conn, resp, _ = server.ws(request=DEFLATE_OFFER)
    with conn:
        assert resp.header("Sec-WebSocket-Extensions") is None
        conn.send_lenient(payload)
        conn.expect_close(CLOSE_PROTOCOL)


def test_c07_header_declares_rsv1():
    frame = _c07_inputs()[0].values[0]
    assert frame[:6] == hx("c2 cf 37 fa 21 3d")
    frame_c = _c07_inputs()[2].values[0]
    assert frame_c[:8] == hx("c2 fe 04 09 37 fa 21 3d")


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_rsv_bits_without_extension_fail_1002(server, rsv):
    conn, _, _ = server.ws()
    with conn:
        conn.send(build_frame(OP_BINARY, b"abc", rsv=rsv))
        conn.expect_close(CLOSE_PROTOCOL)


def test_extension_offer_with_parameters_is_declined(server):
    offer = "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame"
    req = wsraw.ws_request(add=[("Sec-WebSocket-Extensions", offer)])
    conn, resp, _ = server.ws(request=req)
    conn.close()
    assert resp.header("Sec-WebSocket-Extensions") is None


# ---------------------------------------------------------------------- C08

def test_c08a_length_msb_set_fails_1002(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx("82 ff 80 00 00 00 00 00 00 00 37 fa 21 3d"))
        conn.expect_close(CLOSE_PROTOCOL)


@pytest.mark.parametrize("header", [
    pytest.param("82 ff 00 00 00 01 00 00 00 00 37 fa 21 3d", id="b-4GiB"),
    pytest.param(build_frame(OP_BINARY, length=MAX_MESSAGE + 1).hex(), id="max-plus-1"),
    pytest.param(build_frame(OP_TEXT, length=MAX_MESSAGE + 1).hex(), id="text-max-plus-1"),
])
def test_c08b_declared_length_over_limit_fails_1009_after_header(server, header):
    conn, _, _ = server.ws()
    with conn:
        conn.send(hx(header))
        t0 = time.monotonic()
        # No payload is sent: the decision must come from the header alone.
        conn.expect_close(CLOSE_TOO_BIG, timeout=2.0)
        assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_c08c_endless_fragments_fail_1009_past_limit(server, opcode):
    chunk = b"a" * (60 * 1024)
    first = build_frame(opcode, chunk, fin=False)
    cont = build_frame(OP_CONT, chunk, fin=False)
    limit_frames = MAX_MESSAGE // len(chunk) + 1  # first frame taking the total past 1 MiB
    conn, _, _ = server.ws()
    with conn:
        sent = 0
        for i in range(2000):
            if not conn.send_lenient(first if i == 0 else cont):
                break
            sent += 1
            if sent == limit_frames - 1:
                assert_quiet(conn, 0.3, f"{sent * len(chunk)} bytes are within the 1 MiB limit")
            if conn.readable(0.05 if sent >= limit_frames else 0):
                break
        assert sent >= limit_frames, f"closed after only {sent} fragments"
        conn.expect_close(CLOSE_TOO_BIG)
        assert sent <= limit_frames + 16, f"server kept reading {sent} fragments past the limit"


def _invalid_proto_message(size: int, request_id: int = 7) -> bytes:
    """A binary message of exactly ``size`` bytes that is a well-formed fourc
    frame header (version 1, consistent body_len) of a type a client may not
    send (CHALLENGE is server-to-client only)."""
    body = bytes(size - wsraw.PROTO_HEADER_LEN)
    return wsraw.build_proto_frame(wsraw.PROTO_CHALLENGE, body, request_id=request_id)


def _expect_error_then_alive(conn):
    frame = conn.read_frame(5.0)
    assert frame.opcode == OP_BINARY and frame.fin, frame.describe()
    pf = wsraw.parse_proto_frame(frame.payload)
    assert (pf.version, pf.type) == (wsraw.PROTO_VERSION, wsraw.PROTO_ERROR), (
        f"expected an ERROR frame, got header {frame.payload[:12].hex(' ')}")
    # The stream is still in sync: a ping right after is answered.
    conn.send(PING_X)
    assert conn.read_frame().raw == PONG_X


def test_c08d_64k_message_with_8_byte_length_is_read_whole(server):
    message = _invalid_proto_message(65536)
    frame = build_frame(OP_BINARY, message, length_form="64")
    assert frame[:14] == hx("82 ff 00 00 00 00 00 01 00 00 37 fa 21 3d")
    conn, _, _ = server.ws()
    with conn:
        conn.send(frame)
        _expect_error_then_alive(conn)


def test_message_of_exactly_max_size_is_accepted(server):
    conn, _, _ = server.ws()
    with conn:
        conn.send(build_frame(OP_BINARY, _invalid_proto_message(MAX_MESSAGE)))
        _expect_error_then_alive(conn)


def test_fragmented_message_of_exactly_max_size_is_accepted(server):
    message = _invalid_proto_message(MAX_MESSAGE)
    half = MAX_MESSAGE // 2
    conn, _, _ = server.ws()
    with conn:
        conn.send(build_frame(OP_BINARY, message[:half], fin=False))
        conn.send(build_frame(OP_CONT, message[half:]))
        _expect_error_then_alive(conn)


@pytest.mark.parametrize("frame", [
    pytest.param("81 fe 00 05 37 fa 21 3d 7f 9f 4d 51 58", id="e-16bit-for-5"),
    pytest.param(build_frame(OP_BINARY, b"Hello", length_form="64").hex(), id="64bit-for-5"),
    pytest.param(build_frame(OP_BINARY, bytes(200), length_form="64").hex(), id="64bit-for-200"),
    pytest.param(build_frame(OP_PING, b"x", length_form="16").hex(), id="ping-16bit"),
])
def test_c08e_non_minimal_length_fails_1002(server, frame):
    conn, _, _ = server.ws()
    with conn:
        conn.send_lenient(hx(frame))
        conn.expect_close(CLOSE_PROTOCOL)


# ---------------------------------------------------------- other framing faults

@pytest.mark.parametrize("frame", [
    pytest.param(build_frame(OP_CONT, b"x"), id="continuation-without-start"),
    pytest.param(build_frame(OP_BINARY, b"a", fin=False) + build_frame(OP_BINARY, b"b"),
                 id="new-message-inside-fragmented"),
    pytest.param(build_frame(0x3, b"x"), id="reserved-opcode-3"),
    pytest.param(build_frame(0xB, b"x"), id="reserved-control-opcode-b"),
])
def test_framing_errors_fail_1002(server, frame):
    conn, _, _ = server.ws()
    with conn:
        conn.send(frame)
        conn.expect_close(CLOSE_PROTOCOL)


# --------------------------------------------------------------- deadlines

def test_header_deadline_not_extended_by_trickled_bytes(server):
    header_timeout = 2.0
    conn = server.raw()
    with conn:
        t0 = conn.connected_at
        conn.send(b"GET /v1/ws HTTP/1.1\r\n")
        rest = wsraw.ws_request().split(b"\r\n", 1)[1]
        i = 0
        while time.monotonic() - t0 < header_timeout + 2.0 and i < len(rest):
            if conn.readable(0.5):
                break
            conn.send_lenient(rest[i:i + 1], timeout=1.0)
            i += 1
        resp = conn.read_response(timeout=max(0.1, t0 + header_timeout + 1.0 - time.monotonic()))
        assert resp.status == 408, str(resp)
        assert conn.closed_within(max(0.1, t0 + header_timeout + 1.0 - time.monotonic())), (
            "connection not closed after 408")
        elapsed = time.monotonic() - t0
        assert elapsed <= header_timeout + 1.0, f"closed {elapsed:.2f} s after connect"
        assert elapsed >= header_timeout / 2, f"408 already after {elapsed:.2f} s"


def test_header_deadline_for_silent_connection(server):
    conn = server.raw()
    with conn:
        t0 = conn.connected_at
        data = conn.read_to_close(4.0)
        elapsed = time.monotonic() - t0
        assert elapsed <= 3.0, f"idle connection closed after {elapsed:.2f} s"
        # A 408 is expected; a server may also just close a silent connection.
        if data:
            assert wsraw.parse_response_head(data.split(b"\r\n\r\n")[0]).status == 408


@pytest.mark.slow
def test_auth_deadline_closes_1008(server):
    """Two upgraded connections never authenticate; one stays silent, the
    other pings every 500 ms (pings are not authentication and must not extend
    the deadline). Both get close 1008 within auth_timeout_ms + 1 s."""
    auth_timeout = 3.0
    conns = {"idle": server.ws()[0], "pinging": server.ws()[0]}
    closed = {}
    next_ping = time.monotonic()
    try:
        while len(closed) < 2 and time.monotonic() - conns["idle"].connected_at < auth_timeout + 2:
            if "pinging" not in closed and time.monotonic() >= next_ping:
                conns["pinging"].send_lenient(PING_X, timeout=1.0)
                next_ping += 0.5
            for name, conn in conns.items():
                if name in closed or not conn.readable(0.02):
                    continue
                frame = conn.read_frame(2.0)
                if frame.opcode == OP_CLOSE:
                    closed[name] = (time.monotonic() - conn.connected_at, frame)
                else:
                    assert name == "pinging" and frame.raw == PONG_X, frame.describe()
        for name, conn in conns.items():
            assert name in closed, f"{name} connection not closed by the auth deadline"
            elapsed, frame = closed[name]
            assert frame.close_code == CLOSE_POLICY, f"{name}: {frame.describe()}"
            assert auth_timeout / 2 <= elapsed <= auth_timeout + 1.0, (
                f"{name} closed {elapsed:.2f} s after connect")
            conn.send_lenient(build_frame(OP_CLOSE, close_payload(CLOSE_POLICY)), timeout=1.0)
            assert conn.closed_within(3.0), f"{name}: TCP not closed after close 1008"
    finally:
        for conn in conns.values():
            conn.close()


# --------------------------------------------------------------------- C17

def test_c17_upgrade_admission_503_with_retry_after(fourcd_factory):
    srv = fourcd_factory(config={"limits": {"upgrade_rate": 5, "upgrade_burst": 5}})
    held = []
    refused = None
    t0 = time.monotonic()
    try:
        for _ in range(20):
            conn = srv.raw()
            resp = conn.ws_handshake()
            if resp.status == 101:
                wsraw.check_upgrade_response(resp)
                held.append(conn)
                continue
            refused = (conn, resp)
            break
        elapsed = time.monotonic() - t0
        assert refused is not None, "20 upgrades admitted with upgrade_rate=5, upgrade_burst=5"
        conn, resp = refused
        with conn:
            assert resp.status == 503, str(resp)
            assert resp.header("Sec-WebSocket-Accept") is None
            retry = resp.header("Retry-After")
            assert retry is not None and retry.isdigit() and int(retry) >= 1, str(resp)
        assert 5 <= len(held) <= 5 + 1 + int(elapsed * 5), f"{len(held)} admitted"
        time.sleep(min(int(retry), 2))
        srv.assert_serving()
    finally:
        for c in held:
            c.close()


# --------------------------------------------------------------------- C15

class PumpClient:
    """One non-blocking client (plain or TLS through memory BIOs) driven by a
    single-threaded select loop, so it can stop reading while it keeps
    writing without the blocking or thread-safety traps of a TLS socket."""

    def __init__(self, host, port, tls, rcvbuf=4096):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect((host, port))
        self.sock.setblocking(False)
        self.tls = tls
        self.wire_out = bytearray()
        self.plain_in = bytearray()
        self.eof = False
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.bio_in, self.bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.obj = ctx.wrap_bio(self.bio_in, self.bio_out, server_hostname="localhost")
            deadline = time.monotonic() + 5
            while True:
                try:
                    self.obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._collect()
                    assert time.monotonic() < deadline, "TLS handshake timed out"
                    self.pump(read=True, timeout=0.2)
            self._collect()

    def close(self):
        self.sock.close()

    def _collect(self):
        if self.tls:
            self.wire_out += self.bio_out.read()

    def write(self, data: bytes):
        if self.tls:
            self.obj.write(data)
            self._collect()
        else:
            self.wire_out += data

    def pump(self, read: bool, timeout: float):
        r, w, _ = select.select([self.sock] if read else [],
                                [self.sock] if self.wire_out else [], [], timeout)
        if w:
            try:
                n = self.sock.send(self.wire_out[:262144])
                del self.wire_out[:n]
            except BlockingIOError:
                pass
        if r:
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                if self.tls:
                    self.bio_in.write_eof()
                return
            if not self.tls:
                self.plain_in += data
                return
            self.bio_in.write(data)
            while True:
                try:
                    chunk = self.obj.read(262144)
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    break
                if not chunk:
                    break
                self.plain_in += chunk
            self._collect()

    def take_frame(self):
        """One complete server frame from plain_in, or None."""
        buf = self.plain_in
        if len(buf) < 2:
            return None
        n = buf[1] & 0x7F
        hlen = 2 + (2 if n == 126 else 8 if n == 127 else 0)
        if len(buf) < hlen:
            return None
        if n == 126:
            (n,) = struct.unpack("!H", buf[2:4])
        elif n == 127:
            (n,) = struct.unpack("!Q", buf[2:10])
        if len(buf) < hlen + n:
            return None
        raw = bytes(buf[:hlen + n])
        del buf[:hlen + n]
        return raw[0], raw[1], raw[hlen:]


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_c15_backpressure_keeps_every_byte_in_order(fourcd_factory, tls):
    """The client stops reading while the server has thousands of pongs to
    send through a 4 KiB receive window, so the server's writes hit EAGAIN /
    SSL WANT_WRITE many times; when the client reads again every pong must
    arrive intact and in order (well under max_outbound_bytes, so no drop)."""
    srv = fourcd_factory(config={"limits": {"auth_timeout_ms": 60000}})
    count = 4000
    pc = PumpClient(srv.host, srv.tls_port if tls else srv.port, tls)
    try:
        pc.write(wsraw.ws_request())
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in pc.plain_in:
            assert time.monotonic() < deadline and not pc.eof, "no upgrade response"
            pc.pump(read=True, timeout=0.1)
        head, _, rest = bytes(pc.plain_in).partition(b"\r\n\r\n")
        wsraw.check_upgrade_response(wsraw.parse_response_head(head))
        pc.plain_in[:] = rest
        while (f := pc.take_frame()) is None:
            assert time.monotonic() < deadline and not pc.eof, "no CHALLENGE"
            pc.pump(read=True, timeout=0.1)
        wsraw.parse_challenge(f[2])

        payloads = [struct.pack("!I", i) + bytes((i + j) & 0xFF for j in range(121))
                    for i in range(count)]
        pc.write(b"".join(build_frame(OP_PING, p) for p in payloads))
        pause_until = time.monotonic() + 1.0
        while time.monotonic() < pause_until:
            pc.pump(read=False, timeout=0.05)
        got = 0
        deadline = time.monotonic() + 30
        while got < count:
            assert time.monotonic() < deadline, f"only {got} of {count} pongs arrived"
            while (f := pc.take_frame()) is not None:
                b0, b1, payload = f
                assert b0 != 0x88, f"server closed after {got} pongs: {payload.hex(' ')}"
                assert (b0, b1 & 0x80) == (0x80 | OP_PONG, 0), f"unexpected frame {b0:#x}"
                assert payload == payloads[got], f"pong {got} corrupted or out of order"
                got += 1
            if got < count:
                assert not pc.eof, f"connection closed after {got} pongs"
                pc.pump(read=True, timeout=0.2)
    finally:
        pc.close()


def test_c17_refused_upgrades_get_spread_retry_after(fourcd_factory):
    """Each refused upgrade is given the next free admission slot, so a
    storm of refused clients returns spread at the admission rate instead of
    all together when one shared Retry-After runs out."""
    srv = fourcd_factory(config={"limits": {"upgrade_rate": 1, "upgrade_burst": 1}})
    with srv.raw() as first:
        assert first.ws_handshake().status == 101
        retries = []
        for _ in range(6):
            with srv.raw() as conn:
                resp = conn.ws_handshake()
                assert resp.status == 503, str(resp)
                retries.append(int(resp.header("Retry-After")))
    assert retries == [1, 2, 3, 4, 5, 6], retries


def test_unauthenticated_buffers_share_a_budget(fourcd_factory):
    """Connections that have not authenticated may together buffer at most
    max_preauth_bytes; past it the newest is closed with 1013, the server
    keeps serving, and the budget frees up when they go."""
    srv = fourcd_factory(config={"limits": {"max_preauth_bytes": 4 * 1048576}})
    big_hdr = bytes([0x82, 0xFF]) + (1 << 20).to_bytes(8, "big") + wsraw.F2_KEY
    conns, codes, dropped = [], [], 0
    try:
        for _ in range(8):
            conn = srv.raw()
            conn.ws_handshake()
            wsraw.read_challenge(conn)
            # A partial 1 MiB frame; the server may drop us while we send.
            conn.send_lenient(big_hdr + b"\0" * (900 * 1024))
            conns.append(conn)
            time.sleep(0.1)
        for conn in conns:
            if not conn.readable(0.5):
                continue        # still held: within the budget
            dropped += 1
            try:
                codes.append(conn.read_frame(timeout=2).close_code)
            except Exception:
                pass            # reset before the close frame could be read
        assert dropped >= 1 and set(codes) <= {1013}, codes
        assert len(conns) - dropped >= 3     # about 4 MiB stays held
        metrics = srv.admin_get("/metrics")[2].decode()
        assert f'fourc_errors_total{{kind="preauth_budget"}} {dropped}' in metrics
        assert "event=preauth_budget_exceeded" in srv.log_text()
        srv.assert_serving()
    finally:
        for conn in conns:
            conn.close()
    time.sleep(0.5)
    # Budget released: the same partial frame is held again.
    with srv.raw() as conn:
        conn.ws_handshake()
        wsraw.read_challenge(conn)
        conn.send(big_hdr + b"\0" * (900 * 1024))
        assert conn.quiet_for(0.5)


# --------------------------------------------------------------------- keepalive

def _raw_registered(srv):
    """A raw connection that registered a device (so it is authenticated)."""
    from fourcwire import T, decode, frame, keys_body, text
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    conn = srv.raw()
    conn.ws_handshake()
    ch = wsraw.read_challenge(conn)
    sig = key.sign(b"fourc-register-v1" + ch.nonce + pub)
    body = text("test-invite") + pub + keys_body() + sig
    conn.send(build_frame(wsraw.OP_BINARY, frame(T["REGISTER"], 1, body)))
    fr = conn.read_frame()
    assert decode(fr.payload).name == "REGISTERED"
    return conn


def test_idle_authenticated_connection_is_pinged_then_closed(fourcd_factory):
    srv = fourcd_factory(config={"limits": {"ping_interval_ms": 1000}})
    conn = _raw_registered(srv)
    t0 = time.monotonic()
    fr = conn.read_frame(timeout=3)
    assert fr.opcode == OP_PING and fr.payload == b""
    assert 0.8 <= time.monotonic() - t0 <= 2.5
    # No pong and nothing else: closed with 1001 about one interval later.
    fr = conn.read_close(timeout=4, allow_opcodes=(OP_PING,))
    assert fr.close_code == 1001
    conn.close()


def test_answered_pings_keep_the_connection(fourcd_factory):
    srv = fourcd_factory(config={"limits": {"ping_interval_ms": 1000}})
    conn = _raw_registered(srv)
    end = time.monotonic() + 4.5
    pings = 0
    while time.monotonic() < end:
        if not conn.readable(0.2):
            continue
        fr = conn.read_frame(timeout=1)
        assert fr.opcode == OP_PING, fr.describe()
        pings += 1
        conn.send(build_frame(OP_PONG, fr.payload))
    assert pings >= 2
    conn.send(build_frame(OP_PING, b"alive?"))
    fr = conn.read_frame(timeout=2)
    while fr.opcode == OP_PING:
        fr = conn.read_frame(timeout=2)
    assert fr.opcode == OP_PONG and fr.payload == b"alive?"
    conn.close()
