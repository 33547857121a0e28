"""An independent Python implementation of the fourc v1 wire protocol, written
from docs/protocol.md, used to drive fourcd with raw frames over Python's
`websockets` client and to check the server byte for byte.

Only what the tests need is here: encoders for every request, decoders for
every server message, and a Device helper that registers/authenticates with
Ed25519 (from the `cryptography` package) and matches responses by request id.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
from websockets.sync.client import connect

VERSION = 1
HDR = struct.Struct(">BBHII")

T = dict(REGISTER=0x01, AUTH=0x02, LINK_BEGIN=0x03, LINK_DEVICE=0x04, DEVICE_REMOVE=0x05,
         USERNAME_SET=0x06, RESOLVE=0x07, DEVICES_GET=0x08, KEYS_UPLOAD=0x09,
         BUNDLE_FETCH=0x0A, SEND=0x0B, ACK=0x0C, SYNC=0x0D,
         CHALLENGE=0x40, OK=0x41, ERROR=0x42, REGISTERED=0x43, AUTH_OK=0x44, LINK_CODE=0x45,
         ACCOUNT_INFO=0x46, KEYS_STATUS=0x47, BUNDLE=0x48, ACCEPTED=0x49, STALE_DEVICES=0x4A,
         DELIVER=0x4B, SYNC_DONE=0x4C, RESYNC=0x4D, PREKEYS_LOW=0x4E, GOAWAY=0x4F)
NAMES = {v: k for k, v in T.items()}

ERR = dict(BAD_FRAME=1, UNSUPPORTED_VERSION=2, UNKNOWN_TYPE=3, NOT_AUTHENTICATED=4,
           AUTH_FAILED=5, BAD_INVITE=6, NOT_FOUND=7, TAKEN=8, LIMIT=9, CONFLICT=10,
           RATE_LIMITED=11, UNAVAILABLE=12, INTERNAL=13, TOO_LARGE=14, BAD_REQUEST=15,
           ALREADY_AUTHENTICATED=16)


# ---- encoding -----------------------------------------------------------------

def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def blob(b: bytes): return u32(len(b)) + b
def text(s) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return u16(len(b)) + b


def frame(type_: int, req_id: int, body: bytes, version: int = VERSION) -> bytes:
    return HDR.pack(version, type_, 0, req_id, len(body)) + body


def keys_body(reg_id=7, identity=b"\x05" + b"I" * 32, spk_id=1, spk=b"\x05" + b"S" * 32,
              spk_sig=b"G" * 64, otpks=()):
    out = u32(reg_id) + blob(identity) + u32(spk_id) + blob(spk) + blob(spk_sig)
    out += u16(len(otpks))
    for pid, key in otpks:
        out += u32(pid) + blob(key)
    return out


def prekeys(first: int, n: int):
    return [(i, b"\x05" + bytes([i % 256]) * 32) for i in range(first, first + n)]


# ---- decoding -----------------------------------------------------------------

class Cur:
    def __init__(self, b: bytes):
        self.b, self.o = b, 0

    def take(self, n):
        if self.o + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack(">H", self.take(2))[0]
    def u32(self): return struct.unpack(">I", self.take(4))[0]
    def u64(self): return struct.unpack(">Q", self.take(8))[0]
    def blob(self): return self.take(self.u32())
    def str(self): return self.take(self.u16()).decode()
    def u32list(self): return [self.u32() for _ in range(self.u16())]


@dataclass
class Msg:
    type: int
    req_id: int
    f: dict = field(default_factory=dict)

    @property
    def name(self):
        return NAMES.get(self.type, hex(self.type))


def decode(fr: bytes) -> Msg:
    if len(fr) < 12:
        raise ValueError("short frame")
    ver, typ, _flags, req, blen = HDR.unpack_from(fr)
    assert ver == VERSION, f"server sent version {ver}"
    assert blen == len(fr) - 12, "body_len mismatch"
    c = Cur(fr[12:])
    f = {}
    n = NAMES.get(typ)
    if n == "CHALLENGE":
        f = dict(min_version=c.u8(), max_version=c.u8(), nonce=c.take(32), time_ms=c.u64())
    elif n == "ERROR":
        f = dict(code=c.u16(), retry_after_ms=c.u32(), detail=c.str())
    elif n == "REGISTERED":
        f = dict(account=c.u64(), device=c.u32())
    elif n == "AUTH_OK":
        f = dict(head_seq=c.u64(), acked_seq=c.u64())
    elif n == "LINK_CODE":
        f = dict(code=c.str(), expires_in_s=c.u32())
    elif n == "ACCOUNT_INFO":
        f = dict(account=c.u64(), username=c.str(), devices=c.u32list())
    elif n == "KEYS_STATUS":
        f = dict(remaining=c.u32())
    elif n == "BUNDLE":
        f = dict(account=c.u64(), device=c.u32(), registration_id=c.u32(), identity=c.blob(),
                 spk_id=c.u32(), spk=c.blob(), spk_sig=c.blob(), otpk_id=c.u32(), otpk=c.blob())
    elif n == "ACCEPTED":
        f = dict(client_msg_id=c.u64(), timestamp_ms=c.u64())
    elif n == "STALE_DEVICES":
        cid = c.u64()
        sets = {}
        for _ in range(c.u16()):
            acct = c.u64()
            sets[acct] = c.u32list()
        f = dict(client_msg_id=cid, devsets=sets)
    elif n == "DELIVER":
        f = dict(seq=c.u64(), sender=c.u64(), sender_device=c.u32(), timestamp_ms=c.u64(),
                 ciphertext=c.blob())
    elif n == "SYNC_DONE":
        f = dict(head_seq=c.u64(), last_seq=c.u64(), has_more=c.u8())
    elif n == "RESYNC":
        f = dict(lost_from=c.u64(), lost_to=c.u64())
    elif n == "PREKEYS_LOW":
        f = dict(remaining=c.u32())
    elif n == "GOAWAY":
        f = dict(reconnect_after_ms=c.u32())
    return Msg(typ, req, f)


class ServerError(Exception):
    def __init__(self, m: Msg):
        super().__init__(f"ERROR {m.f}")
        self.msg = m
        self.code = m.f["code"]


# ---- a device -------------------------------------------------------------------

class Device:
    """One device speaking raw frames over a Python websockets connection."""

    def __init__(self, url: str, key: Ed25519PrivateKey | None = None):
        self.url = url
        self.key = key or Ed25519PrivateKey.generate()
        self.pub = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                      serialization.PublicFormat.Raw)
        self.account = 0
        self.device = 0
        self.ws = None
        self.nonce = None
        self.next_req = 1
        self.pushed: list[Msg] = []
        self.close_code = None

    # connection
    def connect(self):
        self.ws = connect(self.url, max_size=2 ** 21, open_timeout=5, compression=None,
                          legacy=True)
        m = decode(self.ws.recv(timeout=5))
        assert m.name == "CHALLENGE", m
        assert m.f["min_version"] == 1 and m.f["max_version"] == 1
        self.nonce = m.f["nonce"]
        self.pushed = []
        return self

    def close(self):
        if self.ws:
            self.ws.close()
            self.ws = None

    def send_raw(self, fr: bytes):
        self.ws.send(fr)

    def recv(self, timeout=5.0) -> Msg:
        return decode(self.ws.recv(timeout=timeout))

    def request(self, type_: int, body: bytes, req_id: int | None = None, timeout=5.0,
                collect: bool = False):
        """Sends one request and returns its final answer. Pushed frames
        (req_id 0) are kept in self.pushed; with collect=True, non-final
        frames carrying this request id are returned as (final, [frames])."""
        if req_id is None:
            req_id = self.next_req
            self.next_req += 1
        self.send_raw(frame(type_, req_id, body))
        got = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(timeout=max(0.05, deadline - time.monotonic()))
            if m.req_id != req_id:
                self.pushed.append(m)
                continue
            if m.name in ("DELIVER", "RESYNC"):
                got.append(m)
                continue
            if m.name == "ERROR" and not collect:
                raise ServerError(m)
            return (m, got) if collect else m

    def wait_push(self, name: str, timeout=5.0) -> Msg:
        for i, m in enumerate(self.pushed):
            if m.name == name:
                return self.pushed.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(timeout=max(0.05, deadline - time.monotonic()))
            if m.name == name and m.req_id == 0:
                return m
            self.pushed.append(m)

    # signatures
    def sign(self, msg: bytes) -> bytes:
        return self.key.sign(msg)

    def register(self, invite="test-invite", otpks=(), reg_id=7):
        sig = self.sign(b"fourc-register-v1" + self.nonce + self.pub)
        body = text(invite) + self.pub + keys_body(reg_id=reg_id, otpks=otpks) + sig
        m = self.request(T["REGISTER"], body)
        assert m.name == "REGISTERED", m
        self.account, self.device = m.f["account"], m.f["device"]
        return m

    def link(self, code: str, otpks=()):
        sig = self.sign(b"fourc-link-v1" + self.nonce + self.pub)
        m = self.request(T["LINK_DEVICE"], text(code) + self.pub + keys_body(otpks=otpks) + sig)
        assert m.name == "REGISTERED", m
        self.account, self.device = m.f["account"], m.f["device"]
        return m

    def auth(self):
        sig = self.sign(b"fourc-auth-v1" + self.nonce + u64(self.account) + u32(self.device))
        m = self.request(T["AUTH"], u64(self.account) + u32(self.device) + sig)
        assert m.name == "AUTH_OK", m
        return m

    def reconnect(self):
        self.close()
        self.connect()
        return self.auth()

    # operations
    def devices(self, account: int):
        return self.request(T["DEVICES_GET"], u64(account)).f["devices"]

    def send(self, recipient: int, envelopes, client_msg_id: int, req_id=None, collect=False):
        body = u64(client_msg_id) + u64(recipient) + u16(len(envelopes))
        for acct, dev, ct in envelopes:
            body += u64(acct) + u32(dev) + blob(ct)
        return self.request(T["SEND"], body, req_id=req_id, collect=collect)

    def sync(self, after: int, limit: int = 100):
        done, frames = self.request(T["SYNC"], u64(after) + u16(limit), collect=True)
        if done.name == "ERROR":
            raise ServerError(done)
        assert done.name == "SYNC_DONE", done
        return done, frames

    def ack(self, upto: int, silent=False):
        if silent:
            self.send_raw(frame(T["ACK"], 0, u64(upto)))
            return None
        return self.request(T["ACK"], u64(upto))

    def bundle(self, account: int, device: int):
        return self.request(T["BUNDLE_FETCH"], u64(account) + u32(device))

    def upload(self, otpks, spk_id=0, spk=b"", spk_sig=b""):
        body = u32(spk_id) + blob(spk) + blob(spk_sig) + u16(len(otpks))
        for pid, key in otpks:
            body += u32(pid) + blob(key)
        return self.request(T["KEYS_UPLOAD"], body)


def new_user(url: str, otpks=()) -> Device:
    d = Device(url).connect()
    d.register(otpks=otpks)
    return d


def fresh_id() -> int:
    return int.from_bytes(os.urandom(8), "big") >> 1 or 1
