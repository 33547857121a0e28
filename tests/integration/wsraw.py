"""A tiny raw-socket HTTP/WebSocket client for byte-exact black-box tests.

Real client libraries normalise what they send and hide what they receive; the
edge cases we test (fragmented pings, non-minimal lengths, duplicate headers,
smuggled requests) need exact bytes in both directions. This module sends
bytes as given and parses what comes back strictly:

* ``RawConn`` wraps one TCP (or TLS, verification off) connection with a
  receive buffer; every read has a timeout, and a reset by the peer is treated
  as end of stream after the bytes already received.
* HTTP: ``http_request`` / ``ws_request`` build requests from header lists
  (duplicates and odd spellings allowed); ``RawConn.read_response`` parses one
  response (Content-Length, chunked, or read-to-close bodies).
* WebSocket: ``build_frame`` makes client frames, masked with the F2 key
  ``37 fa 21 3d`` by default, with any header bits, opcode, declared length or
  length encoding; ``RawConn.read_frame`` parses a server frame and fails if it
  is masked or carries RSV bits (we negotiate no extension).
* fourc protocol: ``parse_proto_frame`` and ``parse_challenge`` decode the
  12-byte frame header and the CHALLENGE the server sends after the upgrade.
"""

from __future__ import annotations

import base64
import hashlib
import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field

# ---------------------------------------------------------------- constants

F1_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
F1_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
F2_KEY = bytes.fromhex("37fa213d")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL = 1002
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
# Codes that must never appear on the wire (RFC 6455 section 7.4.1).
CLOSE_FORBIDDEN_ON_WIRE = (1005, 1006, 1015)

PROTO_VERSION = 1
PROTO_HEADER_LEN = 12
PROTO_CHALLENGE = 0x40
PROTO_ERROR = 0x42
CHALLENGE_BODY_LEN = 42

F1_HEADERS = [
    ("Host", "chat.example"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", F1_KEY),
    ("Sec-WebSocket-Version", "13"),
]


class RawError(AssertionError):
    """A protocol expectation failed; the message says what was received."""


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


# ------------------------------------------------------------ HTTP requests

def _header_lines(headers) -> bytes:
    """Headers as given: ("Name", "value") pairs become "Name: value"; a plain
    str (or bytes) is used as the whole line, to send malformed lines."""
    out = []
    for h in headers:
        if isinstance(h, tuple):
            name, value = h
            line = f"{name}: {value}" if value != "" else f"{name}:"
            out.append(line.encode("latin-1"))
        elif isinstance(h, bytes):
            out.append(h)
        else:
            out.append(h.encode("latin-1"))
    return b"".join(line + b"\r\n" for line in out)


def http_request(method: str, path: str, headers=(("Host", "chat.example"),),
                 body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    """One request, byte for byte: no header is added or normalised, so the
    caller writes Content-Length / Transfer-Encoding itself."""
    head = f"{method} {path} {version}\r\n".encode("latin-1")
    return head + _header_lines(headers) + b"\r\n" + body


def ws_request(path: str = "/v1/ws", headers=None, replace=None, drop=(),
               add=()) -> bytes:
    """An upgrade request derived from F1: ``replace`` maps a header name to a
    new value (or to a list of values, giving repeated lines), ``drop`` removes
    headers by name, ``add`` appends extra (name, value) pairs or raw lines."""
    base = list(headers) if headers is not None else list(F1_HEADERS)
    replace = {k.lower(): v for k, v in (replace or {}).items()}
    dropped = {d.lower() for d in drop}
    out = []
    for name, value in base:
        key = name.lower()
        if key in dropped:
            continue
        if key in replace:
            new = replace.pop(key)
            for v in (new if isinstance(new, list) else [new]):
                out.append((name, v))
        else:
            out.append((name, value))
    out.extend(add)
    return http_request("GET", path, out)


@dataclass
class HttpResponse:
    status: int
    reason: str
    version: str
    headers: list  # [(name, value)] in received order, names as sent
    head: bytes
    body: bytes = b""

    def header(self, name: str):
        """The first value of a header (case-insensitive name), or None."""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def has_token(self, name: str, token: str) -> bool:
        """True if a comma-separated header contains the token (any case)."""
        for v in self.header_all(name):
            if token.lower() in (t.strip().lower() for t in v.split(",")):
                return True
        return False

    def __str__(self):
        shown = self.head.decode("latin-1", "replace").rstrip()
        return f"{shown}\n\n{self.body[:200]!r}"


def parse_response_head(head: bytes) -> HttpResponse:
    lines = head.split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise RawError(f"malformed status line: {status_line!r}")
    headers = []
    for raw in lines[1:]:
        if not raw:
            continue
        if b":" not in raw:
            raise RawError(f"malformed response header line: {raw!r}")
        name, value = raw.split(b":", 1)
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return HttpResponse(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "",
                        version=parts[0], headers=headers, head=head)


# ------------------------------------------------------------ WebSocket frames

def mask_bytes(data: bytes, key: bytes = F2_KEY) -> bytes:
    """XOR with the repeating 4-byte key (RFC 6455 5.3); fast for large data."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def build_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
                masked: bool = True, key: bytes = F2_KEY, length: int | None = None,
                length_form: str | None = None) -> bytes:
    """A client frame. ``rsv`` is the 3-bit RSV1..3 field (4 = RSV1).
    ``length`` declares a length different from len(payload) (for frames whose
    payload is sent later or never). ``length_form`` forces "7", "16" or "64"
    bit length encoding, which allows non-minimal encodings."""
    declared = len(payload) if length is None else length
    if length_form is None:
        length_form = "7" if declared <= 125 else "16" if declared <= 0xFFFF else "64"
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if masked else 0
    if length_form == "7":
        if declared > 125:
            raise ValueError("7-bit form holds at most 125")
        head = bytes([b0, mbit | declared])
    elif length_form == "16":
        head = bytes([b0, mbit | 126]) + struct.pack("!H", declared)
    elif length_form == "64":
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", declared)
    else:
        raise ValueError(f"bad length_form {length_form!r}")
    if masked:
        return head + key + mask_bytes(payload, key)
    return head + payload


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


def server_close_frame(code: int) -> bytes:
    """The exact bytes we expect for a server close: 88 02 <code> (F3)."""
    return bytes([0x88, 0x02]) + struct.pack("!H", code)


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes
    raw: bytes = field(repr=False)

    @property
    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]

    def describe(self) -> str:
        head = self.raw[:16].hex(" ")
        return (f"opcode={self.opcode:#x} fin={int(self.fin)} rsv={self.rsv} "
                f"len={len(self.payload)} raw[:16]={head}")


# -------------------------------------------------------- fourc proto frames

@dataclass
class ProtoFrame:
    version: int
    type: int
    flags: int
    request_id: int
    body: bytes


def build_proto_frame(ftype: int, body: bytes = b"", *, version: int = PROTO_VERSION,
                      flags: int = 0, request_id: int = 0,
                      body_len: int | None = None) -> bytes:
    """A fourc protocol frame: u8 version, u8 type, u16 flags, u32 request_id,
    u32 body_len (big endian), then the body."""
    blen = len(body) if body_len is None else body_len
    return struct.pack("!BBHII", version, ftype, flags, request_id, blen) + body


def parse_proto_frame(data: bytes) -> ProtoFrame:
    if len(data) < PROTO_HEADER_LEN:
        raise RawError(f"protocol frame shorter than its header: {data.hex(' ')}")
    version, ftype, flags, request_id, blen = struct.unpack("!BBHII", data[:PROTO_HEADER_LEN])
    body = data[PROTO_HEADER_LEN:]
    if blen != len(body):
        raise RawError(f"protocol frame body_len {blen} but {len(body)} body bytes")
    return ProtoFrame(version, ftype, flags, request_id, body)


@dataclass
class Challenge:
    min_version: int
    max_version: int
    nonce: bytes
    server_time_ms: int


def parse_challenge(message: bytes) -> Challenge:
    """Checks the exact CHALLENGE layout (54 bytes) and returns its fields."""
    if len(message) != PROTO_HEADER_LEN + CHALLENGE_BODY_LEN:
        raise RawError(f"CHALLENGE must be 54 bytes, got {len(message)}: {message[:64].hex(' ')}")
    pf = parse_proto_frame(message)
    if (pf.version, pf.type, pf.flags, pf.request_id) != (PROTO_VERSION, PROTO_CHALLENGE, 0, 0):
        raise RawError(f"not a CHALLENGE header: {message[:12].hex(' ')}")
    mn, mx = pf.body[0], pf.body[1]
    nonce = pf.body[2:34]
    (ts,) = struct.unpack("!Q", pf.body[34:42])
    return Challenge(mn, mx, nonce, ts)


# ---------------------------------------------------------------- connection

class RawConn:
    """One client connection with a receive buffer. All reads take a timeout
    and raise RawError (naming what was received) when it passes."""

    def __init__(self, host: str, port: int, *, tls: bool = False, timeout: float = 5.0,
                 rcvbuf: int | None = None):
        self.host, self.port, self.tls = host, port, tls
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.tls_error = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        sock.connect((host, port))
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.connected_at = time.monotonic()

    # -- context manager
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- sending
    def send(self, data: bytes):
        self.sock.settimeout(10.0)
        self.sock.sendall(data)

    def send_lenient(self, data: bytes, timeout: float = 5.0) -> bool:
        """Sends what the peer accepts; returns False instead of raising when
        the peer closed or reset the connection or stopped reading (timeout).
        For inputs the server is expected to reject part-way."""
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            return False

    # -- receiving
    def readable(self, timeout: float) -> bool:
        """True if buffered data, end of stream, or socket data is available."""
        if self.buf or self.eof:
            return True
        if self.tls and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return bool(r)

    def _recv_some(self, deadline: float) -> bool:
        """Appends received bytes to the buffer; False at end of stream."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = True
            chunk = b""
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            chunk = b""
        except ssl.SSLError as e:
            # A TLS alert or a truncated record also ends the stream; keep the
            # reason for the failure message.
            self.reset = True
            self.tls_error = str(e)
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _need(self, n: int, deadline: float, what: str):
        while len(self.buf) < n:
            try:
                more = self._recv_some(deadline)
            except socket.timeout:
                raise RawError(f"timed out waiting for {what}; have {len(self.buf)} bytes: "
                               f"{bytes(self.buf[:64]).hex(' ')}") from None
            if not more:
                raise RawError(f"connection closed{' (reset)' if self.reset else ''} while "
                               f"waiting for {what}; have {len(self.buf)} bytes: "
                               f"{bytes(self.buf[:64]).hex(' ')}")

    def take(self, n: int) -> bytes:
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_exact(self, n: int, timeout: float = 5.0, what: str = "data") -> bytes:
        self._need(n, time.monotonic() + timeout, what)
        return self.take(n)

    def read_until(self, marker: bytes, timeout: float = 5.0, limit: int = 1 << 20,
                   what: str = "data") -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                return self.take(i + len(marker))
            if len(self.buf) > limit:
                raise RawError(f"{what}: no {marker!r} within {limit} bytes")
            self._need(len(self.buf) + 1, deadline, what)

    def read_response(self, timeout: float = 5.0, head_only: bool = False,
                      method: str = "GET") -> HttpResponse:
        """Reads one HTTP response. The body is read per Content-Length or
        chunked encoding; without either (and not 1xx/204/304 or a HEAD
        response) it is read until the server closes."""
        deadline = time.monotonic() + timeout
        head = self.read_until(b"\r\n\r\n", timeout, limit=65536, what="HTTP response head")
        resp = parse_response_head(head[:-4])
        if head_only or resp.status < 200 or resp.status in (204, 304) or method == "HEAD":
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header_all("Content-Length")
        if "chunked" in te:
            resp.body = self._read_chunked(deadline)
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise RawError(f"server sent bad Content-Length {cl}")
            resp.body = self.read_exact(int(cl[0]), max(0.0, deadline - time.monotonic()),
                                        what="response body")
        else:
            resp.body = self.read_to_close(max(0.0, deadline - time.monotonic()))
        return resp

    def _read_chunked(self, deadline: float) -> bytes:
        body = bytearray()
        while True:
            line = self.read_until(b"\r\n", max(0.0, deadline - time.monotonic()),
                                   limit=1024, what="chunk size")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                # Trailer fields end with an empty line.
                while self.read_until(b"\r\n", max(0.0, deadline - time.monotonic()),
                                      what="trailer") != b"\r\n":
                    pass
                return bytes(body)
            body += self.read_exact(size, max(0.0, deadline - time.monotonic()),
                                    what="chunk data")
            self.read_exact(2, max(0.0, deadline - time.monotonic()), what="chunk CRLF")

    def read_to_close(self, timeout: float = 5.0) -> bytes:
        """All bytes until the peer closes; RawError if it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not self._recv_some(deadline):
                    return self.take(len(self.buf))
            except socket.timeout:
                raise RawError(f"peer did not close within {timeout}s; received "
                               f"{len(self.buf)} bytes: {bytes(self.buf[:64]).hex(' ')}") from None

    def closed_within(self, timeout: float) -> bool:
        """True if the peer closes (FIN or RST) within the timeout, with no
        unread data left; buffered bytes make it False."""
        try:
            extra = self.read_to_close(timeout)
        except RawError:
            return False
        if extra:
            self.buf[:0] = extra
            return False
        return True

    def quiet_for(self, seconds: float) -> bool:
        """True if nothing arrives (no data, no close) for the given time."""
        if self.buf or self.eof:
            return False
        deadline = time.monotonic() + seconds
        try:
            self._recv_some(deadline)
        except socket.timeout:
            return True
        return False

    # -- WebSocket frames
    def read_frame(self, timeout: float = 5.0) -> Frame:
        """Parses one server frame. Server frames must be unmasked and carry no
        RSV bits (no extension is ever negotiated)."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline, "frame header")
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        hlen = 2 + (2 if n == 126 else 8 if n == 127 else 0) + (4 if b1 & 0x80 else 0)
        self._need(hlen, deadline, "extended frame header")
        if n == 126:
            (n,) = struct.unpack("!H", self.buf[2:4])
        elif n == 127:
            (n,) = struct.unpack("!Q", self.buf[2:10])
        self._need(hlen + n, deadline, f"frame payload ({n} bytes)")
        raw = self.take(hlen + n)
        frame = Frame(fin=bool(b0 & 0x80), rsv=(b0 >> 4) & 7, opcode=b0 & 0x0F,
                      masked=bool(b1 & 0x80), payload=raw[hlen:], raw=raw)
        if frame.masked:
            raise RawError(f"server frame is masked (RFC 6455 5.1): {frame.describe()}")
        if frame.rsv:
            raise RawError(f"server frame has RSV bits without an extension: {frame.describe()}")
        return frame

    def read_close(self, timeout: float = 5.0, allow_opcodes=()) -> Frame:
        """Reads frames until a close frame and returns it. Any other frame
        first is an error unless its opcode is in allow_opcodes."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.read_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_CLOSE:
                return frame
            if frame.opcode not in allow_opcodes:
                raise RawError(f"expected a close frame, got {frame.describe()}")

    def wait_close(self, timeout: float = 5.0, allow_opcodes=()):
        """Waits for the server's close frame: (code, reason), code None for
        an empty close."""
        frame = self.read_close(timeout, allow_opcodes)
        return frame.close_code, frame.close_reason

    def expect_close(self, code: int, timeout: float = 5.0, allow_opcodes=(), *,
                     exact: bool = True, reply: bool = True) -> Frame:
        """Expects a server close with ``code``, then the TCP close.

        exact=True requires the frame to be exactly ``88 02 <code>`` (F3: how
        the server fails a connection, and how it echoes a client close).
        exact=False allows a reason, which must be valid UTF-8 within the
        125-byte control-frame limit. With reply=True (a server-initiated
        close) we answer with a close echoing the code, as RFC 6455 5.5.1
        requires of the peer, so a server that waits for the reply is not
        penalised; the server must then close TCP within 3 s."""
        frame = self.read_close(timeout, allow_opcodes)
        want = server_close_frame(code)
        if exact and frame.raw != want:
            raise RawError(f"expected close {code} ({want.hex(' ')}), got close "
                           f"{frame.close_code}: {frame.raw.hex(' ')}")
        if not exact:
            if frame.close_code != code or not frame.fin or len(frame.payload) > 125:
                raise RawError(f"expected close {code}, got {frame.raw[:32].hex(' ')}")
            try:
                frame.close_reason.decode("utf-8")
            except UnicodeDecodeError:
                raise RawError(f"close reason is not UTF-8: {frame.raw.hex(' ')}") from None
        if reply:
            self.send_lenient(build_frame(OP_CLOSE, close_payload(code)), timeout=2.0)
        if not self.closed_within(3.0):
            raise RawError(f"server sent close {code} but did not close the TCP connection "
                           f"within 3 s (buffered: {bytes(self.buf[:32]).hex(' ')})")
        return frame

    def ws_handshake(self, request: bytes | None = None, timeout: float = 5.0):
        """Sends an upgrade request (F1 by default) and returns the response head."""
        self.send(request if request is not None else ws_request())
        return self.read_response(timeout, head_only=True)


def open_ws(host: str, port: int, *, tls: bool = False, request: bytes | None = None,
            timeout: float = 5.0, rcvbuf: int | None = None):
    """Connects, upgrades with F1 (or ``request``), checks the 101 response and
    the CHALLENGE, and returns (conn, response, challenge)."""
    conn = RawConn(host, port, tls=tls, timeout=timeout, rcvbuf=rcvbuf)
    try:
        resp = conn.ws_handshake(request, timeout)
        check_upgrade_response(resp)
        challenge = read_challenge(conn, timeout)
    except BaseException:
        conn.close()
        raise
    return conn, resp, challenge


def check_upgrade_response(resp: HttpResponse, key: str = F1_KEY):
    """The 101 must accept ``key``, confirm the upgrade, negotiate no
    extension, and carry no body framing (RFC 9110 8.6: no Content-Length on
    1xx)."""
    if resp.status != 101:
        raise RawError(f"expected 101, got:\n{resp}")
    if resp.header_all("Sec-WebSocket-Accept") != [accept_for(key)]:
        raise RawError(f"wrong Sec-WebSocket-Accept:\n{resp}")
    if (resp.header("Upgrade") or "").lower() != "websocket":
        raise RawError(f"101 without Upgrade: websocket:\n{resp}")
    if not resp.has_token("Connection", "upgrade"):
        raise RawError(f"101 without Connection: Upgrade:\n{resp}")
    if resp.header("Sec-WebSocket-Extensions") is not None:
        raise RawError(f"server negotiated an extension:\n{resp}")
    if resp.header("Content-Length") is not None or resp.header("Transfer-Encoding") is not None:
        raise RawError(f"101 carries body framing headers:\n{resp}")


def read_challenge(conn: RawConn, timeout: float = 5.0) -> Challenge:
    frame = conn.read_frame(timeout)
    if frame.opcode != OP_BINARY or not frame.fin:
        raise RawError(f"first server message is not one binary frame: {frame.describe()}")
    return parse_challenge(frame.payload)
