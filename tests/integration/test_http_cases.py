"""HTTP/1.1 parsing and the upgrade handshake against a real fourcd (cases
C10, C11, C12, C14), plus the plain endpoints: /v1/ping on the main and TLS
ports, keep-alive, 404, 431, request-head errors, and the admin port's
/healthz, /readyz and /metrics.

Rules under test: a request whose head or body framing is invalid gets one
400 and the connection is closed, so bytes after it (a smuggled request) are
never parsed or answered; a refused upgrade never carries
Sec-WebSocket-Accept.
"""

from __future__ import annotations

import re
import time

import pytest

import wsraw
from wsraw import F1_ACCEPT, F1_KEY, http_request, ws_request

HOST_HDR = ("Host", "chat.example")
# The smuggled request of C12: 49 bytes, a path the server has no route for.
SMUGGLED = b"GET /admin/users HTTP/1.1\r\nHost: chat.example\r\n\r\n"
# A request the server would answer 200 if it ever parsed it.
SMUGGLED_PING = b"GET /v1/ping HTTP/1.1\r\nHost: chat.example\r\n\r\n"
PING = http_request("GET", "/v1/ping", [HOST_HDR])


def assert_pong(resp: wsraw.HttpResponse):
    assert resp.status == 200, str(resp)
    assert resp.body.rstrip(b"\r\n") == b"pong", str(resp)


def expect_single_error(conn: wsraw.RawConn, status: int = 400, timeout: float = 5.0):
    """Exactly one response with ``status``, then the server closes the
    connection without answering anything that followed."""
    resp = conn.read_response(timeout)
    assert resp.status == status, str(resp)
    assert resp.header("Sec-WebSocket-Accept") is None, str(resp)
    rest = conn.read_to_close(3.0)
    assert b"HTTP/" not in rest, f"a second response followed: {rest[:200]!r}"
    assert rest == b"", f"unexpected bytes after the response: {rest[:64]!r}"
    return resp


def test_smuggled_request_is_49_bytes():
    assert len(SMUGGLED) == 49


# ---------------------------------------------------------------- endpoints

def test_ping_get_and_post(server):
    with server.raw() as conn:
        conn.send(PING)
        assert_pong(conn.read_response())
        conn.send(http_request("POST", "/v1/ping", [HOST_HDR, ("Content-Length", "5")],
                               b"hello"))
        assert_pong(conn.read_response())


def test_keep_alive_two_requests_one_connection(server):
    with server.raw() as conn:
        conn.send(PING)
        assert_pong(conn.read_response())
        conn.send(PING)
        assert_pong(conn.read_response())
        assert conn.quiet_for(0.2), "server closed a keep-alive connection"


def test_pipelined_requests_answered_in_order(server):
    with server.raw() as conn:
        conn.send(PING + http_request("GET", "/nope", [HOST_HDR]) + PING)
        assert_pong(conn.read_response())
        assert conn.read_response().status == 404
        assert_pong(conn.read_response())


def test_connection_close_is_honoured(server):
    with server.raw() as conn:
        conn.send(http_request("GET", "/v1/ping", [HOST_HDR, ("Connection", "close")]))
        assert_pong(conn.read_response())
        assert conn.closed_within(3.0)


def test_http10_request_closes_after_response(server):
    with server.raw() as conn:
        conn.send(http_request("GET", "/v1/ping", [HOST_HDR], version="HTTP/1.0"))
        assert_pong(conn.read_response())
        assert conn.closed_within(3.0)


def test_ping_over_tls(server):
    with server.raw(tls=True) as conn:
        conn.send(PING)
        assert_pong(conn.read_response())
        conn.send(PING)
        assert_pong(conn.read_response())


@pytest.mark.parametrize("path", ["/", "/nope", "/v1", "/v1/wsx", "/v1/ping/extra", "/v1/pingx",
                                  "/healthz"])
def test_unknown_path_is_404(server, path):
    with server.raw() as conn:
        conn.send(http_request("GET", path, [HOST_HDR]))
        resp = conn.read_response()
        assert resp.status == 404, str(resp)
        # Still usable afterwards.
        conn.send(PING)
        assert_pong(conn.read_response())


def test_header_over_max_header_bytes_is_431(server):
    with server.raw() as conn:
        conn.send_lenient(http_request("GET", "/v1/ping", [HOST_HDR, ("X-Filler", "a" * 9216)]))
        expect_single_error(conn, 431)


def test_head_just_under_limit_is_accepted(server):
    req = http_request("GET", "/v1/ping", [HOST_HDR, ("X-Filler", "")])
    filler = 8192 - len(req) - 64
    with server.raw() as conn:
        conn.send(http_request("GET", "/v1/ping", [HOST_HDR, ("X-Filler", "a" * filler)]))
        assert_pong(conn.read_response())


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"GARBAGE\r\n\r\n", id="no-request-line"),
    pytest.param(b"GET /v1/ping HTTP/1.1\r\nHost : chat.example\r\n\r\n", id="space-before-colon"),
    pytest.param(b"GET /v1/ping HTTP/1.1\r\nHost: chat.example\r\nNoColonHere\r\n\r\n",
                 id="line-without-colon"),
    pytest.param(b"GET /v1/ping HTTP/1.1\r\n: empty-name\r\n\r\n", id="empty-field-name"),
    pytest.param(b"GET /v1/ping HTTP/1.1\r\n\r\n", id="http11-without-host"),
    pytest.param(b"GET /v1/ping HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
                 id="two-hosts"),
    pytest.param(b"GET /v1/ping HTTP/1.1 extra\r\nHost: chat.example\r\n\r\n",
                 id="junk-after-version"),
])
def test_malformed_request_head_is_400_and_close(server, request_bytes):
    with server.raw() as conn:
        conn.send(request_bytes + SMUGGLED_PING)
        expect_single_error(conn, 400)


# --------------------------------------------------------------------- C10

@pytest.mark.parametrize("request_bytes", [
    pytest.param(ws_request(drop=["Sec-WebSocket-Key"]), id="missing"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": ""}), id="empty"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": "x"}), id="x"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": "eA=="}), id="1-byte"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": "MDEyMzQ1Njc4OWFi"}), id="12-bytes"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": "MDEyMzQ1Njc4OWFiY2RlZmdo"}),
                 id="18-bytes"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ"}),
                 id="padding-missing"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=!"}),
                 id="bad-base64-char"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": [F1_KEY, F1_KEY]}),
                 id="two-identical-lines"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": [F1_KEY, "MDEyMzQ1Njc4OWFiY2RlZg=="]}),
                 id="two-different-lines"),
    pytest.param(ws_request(replace={"Sec-WebSocket-Key": f"{F1_KEY}, {F1_KEY}"}),
                 id="comma-list"),
])
def test_c10_bad_key_is_400_without_accept(server, request_bytes):
    with server.raw() as conn:
        conn.send(request_bytes)
        resp = conn.read_response()
        assert resp.status == 400, str(resp)
        assert resp.header("Sec-WebSocket-Accept") is None
        # No upgrade happened: no CHALLENGE (or anything else) follows.
        assert conn.closed_within(1.0) or conn.quiet_for(0.3), (
            f"bytes after the 400: {bytes(conn.buf[:32]).hex(' ')}")


def test_c10_one_mib_key_is_refused(server):
    with server.raw() as conn:
        conn.send_lenient(ws_request(replace={"Sec-WebSocket-Key": "A" * (1 << 20)}))
        resp = conn.read_response()
        # The head is far over max_header_bytes: the parser stops at the cap
        # and answers 431 (RFC 6585, the specific 4xx for oversized header
        # fields) before any handshake check; there is no upgrade.
        assert resp.status == 431, str(resp)
        assert resp.header("Sec-WebSocket-Accept") is None
        conn.read_to_close(3.0)


def test_c10_version_8_is_426_with_supported_version(server):
    with server.raw() as conn:
        conn.send(ws_request(replace={"Sec-WebSocket-Version": "8"}))
        resp = conn.read_response()
        assert resp.status == 426, str(resp)
        assert resp.header("Sec-WebSocket-Accept") is None
        versions = [v.strip() for h in resp.header_all("Sec-WebSocket-Version")
                    for v in h.split(",")]
        assert "13" in versions, str(resp)


def test_c10_unmodified_f1_still_accepted(server):
    conn, resp, _ = server.ws()
    conn.close()
    assert resp.header("Sec-WebSocket-Accept") == F1_ACCEPT


# --------------------------------------------------------------------- C11

C11_BASE = [
    ("host", "chat.example"),
    ("upgrade", "WebSocket"),
    ("connection", "keep-alive, Upgrade"),
    ("sec-websocket-key", F1_KEY),
    ("sec-websocket-version", "13"),
]


@pytest.mark.parametrize("request_bytes", [
    pytest.param(ws_request(headers=C11_BASE), id="lower-case-names"),
    pytest.param(ws_request(replace={"Connection": "Upgrade, keep-alive"}), id="upgrade-first"),
    pytest.param(ws_request(replace={"Connection": "upgrade"}), id="lower-case-token"),
    pytest.param(ws_request(replace={"Connection": ["keep-alive", "Upgrade"]}), id="two-lines"),
    pytest.param(ws_request(replace={"Connection": "keep-alive,Upgrade"}), id="no-space"),
    pytest.param(ws_request(replace={"Upgrade": "WEBSOCKET"}), id="upper-case-upgrade"),
])
def test_c11_case_insensitive_headers_upgrade(server, request_bytes):
    conn, resp, _ = server.ws(request=request_bytes)
    conn.close()
    assert resp.header("Sec-WebSocket-Accept") == F1_ACCEPT


@pytest.mark.parametrize("request_bytes", [
    pytest.param(ws_request(replace={"Connection": "Upgraded"}), id="Upgraded"),
    pytest.param(ws_request(replace={"Connection": "keep-alive, notUpgrade"}), id="notUpgrade"),
    pytest.param(ws_request(drop=["Connection"]), id="no-connection"),
    pytest.param(ws_request(replace={"Upgrade": "websocketx"}), id="upgrade-websocketx"),
    pytest.param(ws_request(drop=["Upgrade"]), id="no-upgrade"),
])
def test_c11_token_substrings_are_not_upgrade(server, request_bytes):
    with server.raw() as conn:
        conn.send(request_bytes)
        resp = conn.read_response()
        assert resp.status == 400, str(resp)
        assert resp.header("Sec-WebSocket-Accept") is None


# --------------------------------------------------------------------- C12

def _post_ping(cl_headers, body: bytes) -> bytes:
    return http_request("POST", "/v1/ping", [HOST_HDR] + cl_headers, body)


@pytest.mark.parametrize("request_bytes", [
    pytest.param(_post_ping([("Content-Length", "0"), ("Content-Length", "49")], SMUGGLED),
                 id="0-and-49"),
    pytest.param(_post_ping([("Content-Length", "5, 7")], b"hello" + SMUGGLED), id="5,7"),
    pytest.param(_post_ping([("Content-Length", "5"), ("Content-Length", "7")],
                            b"hello" + SMUGGLED), id="5-and-7"),
    pytest.param(_post_ping([("Content-Length", "+5")], b"hello" + SMUGGLED), id="plus-5"),
    pytest.param(_post_ping([("Content-Length", "0x5")], b"hello" + SMUGGLED), id="hex"),
    pytest.param(_post_ping([("Content-Length", "-1")], b"hello" + SMUGGLED), id="minus-1"),
    pytest.param(_post_ping([("Content-Length", "99999999999999999999")], b"hello" + SMUGGLED),
                 id="overflow"),
    pytest.param(_post_ping([("Content-Length", "5 5")], b"hello" + SMUGGLED), id="5-space-5"),
    pytest.param(_post_ping([("Content-Length", "")], b"hello" + SMUGGLED), id="empty"),
])
def test_c12_bad_content_length_is_400_and_close(server, request_bytes):
    with server.raw() as conn:
        conn.send_lenient(request_bytes + SMUGGLED_PING)
        expect_single_error(conn, 400)


@pytest.mark.parametrize("cl_headers", [
    pytest.param([("Content-Length", "5"), ("Content-Length", "5")], id="5-twice"),
    pytest.param([("Content-Length", "5, 5")], id="5,5"),
])
def test_c12_identical_duplicates_are_one_value(server, cl_headers):
    with server.raw() as conn:
        conn.send(_post_ping(cl_headers, b"hello"))
        assert_pong(conn.read_response())
        # Exactly 5 body bytes were consumed: the next request parses cleanly.
        conn.send(PING)
        assert_pong(conn.read_response())


def test_c12_transfer_encoding_with_content_length_never_smuggles(server):
    """RFC 9112 6.1: reject, or let chunked win and close after responding.
    Either way the bytes after the chunked body are never answered."""
    body = b"0\r\n\r\n" + SMUGGLED_PING
    req = http_request("POST", "/v1/ping", [HOST_HDR, ("Content-Length", str(len(body))),
                                            ("Transfer-Encoding", "chunked")], body)
    with server.raw() as conn:
        conn.send_lenient(req)
        resp = conn.read_response()
        assert resp.status in (200, 400), str(resp)
        rest = conn.read_to_close(3.0)
        assert b"HTTP/" not in rest, f"smuggled request answered: {rest[:200]!r}"


# --------------------------------------------------------------------- C14

def _chunked(body: bytes) -> bytes:
    return http_request("POST", "/v1/ping", [HOST_HDR, ("Transfer-Encoding", "chunked")], body)


@pytest.mark.parametrize("body", [
    pytest.param(b"10000000000000005\r\nhello\r\n0\r\n\r\n", id="wraps-to-5"),
    pytest.param(b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n", id="17-fs"),
    pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="minus-5"),
    pytest.param(b"+5\r\nhello\r\n0\r\n\r\n", id="plus-5"),
    pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="0x-prefix"),
    pytest.param(b"0" * 100000 + b"5\r\nhello\r\n0\r\n\r\n", id="100000-zeros"),
    pytest.param(b"5;" + b"e" * (1 << 20) + b"\r\nhello\r\n0\r\n\r\n", id="1MiB-extension"),
    pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="missing-crlf-after-data"),
    pytest.param(b"\r\nhello\r\n0\r\n\r\n", id="empty-size"),
])
def test_c14_bad_chunk_size_is_400_and_close(server, body):
    with server.raw() as conn:
        conn.send_lenient(_chunked(body) + SMUGGLED_PING)
        expect_single_error(conn, 400)


@pytest.mark.parametrize("body", [
    pytest.param(b"5;name=value\r\nhello\r\n0\r\n\r\n", id="extension-ignored"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n", id="plain"),
    pytest.param(b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", id="two-chunks"),
    pytest.param(b"0005\r\nhello\r\n0\r\n\r\n", id="few-leading-zeros"),
    pytest.param(b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", id="trailer"),
])
def test_c14_valid_chunked_body_is_accepted(server, body):
    with server.raw() as conn:
        conn.send(_chunked(body))
        assert_pong(conn.read_response())
        conn.send(PING)
        assert_pong(conn.read_response())


# -------------------------------------------------------------------- admin

def test_admin_healthz(server):
    status, _, body = server.admin_get("/healthz")
    assert status == 200
    assert body.rstrip(b"\r\n") == b"ok"


def test_admin_readyz(server):
    status, _, _ = server.admin_get("/readyz")
    assert status == 200


def test_admin_unknown_path_is_404(server):
    status, _, _ = server.admin_get("/nope")
    assert status == 404


METRIC_LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? '
    r'(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?Inf|NaN)( -?\d+)?$')


def test_admin_metrics_prometheus_text(server):
    # Have at least one open WebSocket connection while scraping.
    conn, _, _ = server.ws()
    with conn:
        status, headers, body = server.admin_get("/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain"), headers
    text = body.decode()
    assert re.search(r"^fourc_connections[ {_]", text, re.M), text[:2000]
    names = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                assert parts[2].startswith("fourc_"), line
            continue
        m = METRIC_LINE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        assert m.group("name").startswith("fourc_"), line
        names.add(m.group("name"))
    assert names, "no samples"


def test_absolute_form_target_is_accepted(server):
    """RFC 9112 section 3.2.2: a server MUST accept the absolute-form."""
    with server.raw() as conn:
        conn.send(ws_request("http://chat.example/v1/ws"))
        resp = conn.read_response(head_only=True)
        assert resp.status == 101, str(resp)
    with server.raw() as conn:
        conn.send(http_request("GET", "http://chat.example/v1/ping"))
        assert conn.read_response().status == 200


def test_pipelined_flood_by_a_non_reader_is_dropped_cleanly(fourcd_factory):
    """A keep-alive client pipelining requests without reading is dropped as
    a slow reader; its connection must not stay referenced by the timer
    wheel (this once read freed memory when the next tick came due). The
    connection pool is filled first so that a released struct is really
    freed, which is what the sanitizer build can see."""
    import socket as _socket
    srv = fourcd_factory(config={"server": {"loops": 1},
                                 "limits": {"max_outbound_bytes": 65536,
                                            "header_timeout_ms": 1000}})
    idle = [_socket.create_connection(("127.0.0.1", srv.port)) for _ in range(1100)]
    attacker = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    attacker.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 2048)
    attacker.connect(("127.0.0.1", srv.port))
    attacker.settimeout(5)
    for s in idle:      # their structs fill the pool; the attacker's is then freed
        s.close()
    time.sleep(0.5)
    req = b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
    sent = 0
    try:
        while sent < 4 << 20:
            attacker.sendall(req * 256)
            sent += len(req) * 256
    except OSError:
        pass   # dropped as a slow reader: expected
    attacker.close()
    time.sleep(2.0)   # let the wheel pass the deadlines that were pending
    assert "event=slow_reader_dropped" in srv.log_text()
    srv.assert_serving()
