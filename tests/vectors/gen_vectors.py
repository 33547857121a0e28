#!/usr/bin/env python3
"""Generates the fourc wire protocol v1 test vectors (tests/vectors/*.hex)
and the matching seed corpus of the wire fuzz target (fuzz/corpus/wire/).

This is a second, independent encoder of docs/protocol.md written with
nothing but Python's struct module: the C codec must decode every vector to
the values written here and re-encode it to the same bytes. Signatures are
real Ed25519 signatures (the `cryptography` package) over the signed byte
strings of the protocol, from fixed seeds, so they are reproducible.

Usage: python3 tests/vectors/gen_vectors.py   (from anywhere)
Format: see tests/vectors/README.md.
"""

import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "fuzz", "corpus", "wire")

TYPES = {
    "REGISTER": 0x01, "AUTH": 0x02, "LINK_BEGIN": 0x03, "LINK_DEVICE": 0x04,
    "DEVICE_REMOVE": 0x05, "USERNAME_SET": 0x06, "RESOLVE": 0x07,
    "DEVICES_GET": 0x08, "KEYS_UPLOAD": 0x09, "BUNDLE_FETCH": 0x0A,
    "SEND": 0x0B, "ACK": 0x0C, "SYNC": 0x0D,
    "CHALLENGE": 0x40, "OK": 0x41, "ERROR": 0x42, "REGISTERED": 0x43,
    "AUTH_OK": 0x44, "LINK_CODE": 0x45, "ACCOUNT_INFO": 0x46,
    "KEYS_STATUS": 0x47, "BUNDLE": 0x48, "ACCEPTED": 0x49,
    "STALE_DEVICES": 0x4A, "DELIVER": 0x4B, "SYNC_DONE": 0x4C,
    "RESYNC": 0x4D, "PREKEYS_LOW": 0x4E, "GOAWAY": 0x4F,
}


def fmt_str(b):
    """Quoted string: raw UTF-8, with \\ " and control bytes escaped."""
    res = bytearray()
    for ch in b:
        if ch in (0x22, 0x5C):
            res += b"\\" + bytes([ch])
        elif ch < 0x20 or ch == 0x7F:
            res += b"\\x%02x" % ch
        else:
            res.append(ch)
    return '"' + res.decode("utf-8") + '"'


def hexs(b):
    return " ".join("%02x" % x for x in b)


class Vec:
    """One frame: an ordered list of (comment lines, bytes) chunks."""

    def __init__(self, name, mtype, req_id, desc, flags=0, version=1):
        self.name, self.desc = name, desc
        self.version, self.flags, self.req_id = version, flags, req_id
        self.type = TYPES[mtype] if isinstance(mtype, str) else mtype
        self.tname = mtype if isinstance(mtype, str) else None
        self.chunks = []   # (list of comment lines, bytes)
        self.extra = []    # trailing meta lines (sig.*, error, ...)
        self.body_len = None  # override for invalid vectors
        self.cut = None       # truncate the whole frame to this many bytes

    def add(self, key, value, data):
        lines = ["# %s = %s" % (key, value)] if key else []
        self.chunks.append((lines, data))

    def note(self, text, data):
        self.chunks.append((["# " + text], data))

    def u8(self, k, v): self.add(k, str(v), struct.pack(">B", v))
    def u16(self, k, v): self.add(k, str(v), struct.pack(">H", v))
    def u32(self, k, v): self.add(k, str(v), struct.pack(">I", v))
    def u64(self, k, v): self.add(k, str(v), struct.pack(">Q", v))
    def fixed(self, k, b): self.add(k, "hex:" + b.hex(), b)
    def bytes_(self, k, b): self.add(k, "hex:" + b.hex(), struct.pack(">I", len(b)) + b)
    def str_(self, k, s):
        b = s.encode("utf-8") if isinstance(s, str) else s
        self.add(k, fmt_str(b), struct.pack(">H", len(b)) + b)

    def count(self, k, n): self.u16(k + ".count", n)

    def meta(self, key, value):
        self.extra.append("# %s = %s" % (key, value))

    def body(self):
        return b"".join(d for _, d in self.chunks)

    def header(self):
        blen = len(self.body()) if self.body_len is None else self.body_len
        return struct.pack(">BBHII", self.version, self.type, self.flags,
                           self.req_id, blen), blen

    def frame(self):
        hdr, _ = self.header()
        f = hdr + self.body()
        return f if self.cut is None else f[:self.cut]

    def text(self):
        hdr, blen = self.header()
        out = ["# " + l for l in self.desc.split("\n")]
        tn = self.tname if self.tname else "0x%02x" % self.type
        full = self.cut is None or self.cut >= 12
        if full:
            out += ["# hdr.version = %d" % self.version,
                    "# hdr.type = %s" % tn,
                    "# hdr.flags = %d" % self.flags,
                    "# hdr.req_id = %d" % self.req_id,
                    "# hdr.body_len = %d" % blen]
        out += self.extra
        frame = self.frame()
        out.append(hexs(frame[:12]))
        pos = 12
        for lines, data in self.chunks:
            if pos >= len(frame):
                break
            take = frame[pos:pos + len(data)]
            pos += len(data)
            out += lines
            for i in range(0, len(take), 32):
                out.append(hexs(take[i:i + 32]))
        return "\n".join(out) + "\n"


VECS = []


def vec(*a, **kw):
    v = Vec(*a, **kw)
    VECS.append(v)
    return v


# ---- fixed test material -------------------------------------------------

def sha(s):
    return hashlib.sha256(s.encode()).digest()


NONCE = bytes(range(0x40, 0x60))
SEED_A1 = sha("fourc test vector: account 1001 device 1")
SEED_A2 = sha("fourc test vector: account 1001 device 2")


def keypair(seed):
    k = Ed25519PrivateKey.from_private_bytes(seed)
    pub = k.public_key().public_bytes(serialization.Encoding.Raw,
                                      serialization.PublicFormat.Raw)
    return k, pub


K_A1, PUB_A1 = keypair(SEED_A1)
K_A2, PUB_A2 = keypair(SEED_A2)
ACC_A, ACC_B = 1001, 1002
TS = 1700000000000

IDENTITY = bytes([0x05]) + sha("identity key of 1001")
SPK = bytes([0x05]) + sha("signed prekey 7 of 1001")
SPK_SIG = sha("spk sig a") + sha("spk sig b")
OTPK = [(101, bytes([0x05]) + sha("otpk 101")), (102, bytes([0x05]) + sha("otpk 102"))]


def register_msg(nonce, pub):
    return b"fourc-register-v1" + nonce + pub


def auth_msg(nonce, account, device):
    return b"fourc-auth-v1" + nonce + struct.pack(">QI", account, device)


def link_msg(nonce, pub):
    return b"fourc-link-v1" + nonce + pub


def put_keys(v, ident, spk_id, spk, spk_sig, otpks, prefix="keys."):
    v.u32(prefix + "registration_id", 4242)
    v.bytes_(prefix + "identity_key", ident)
    v.u32(prefix + "spk_id", spk_id)
    v.bytes_(prefix + "spk", spk)
    v.bytes_(prefix + "spk_sig", spk_sig)
    v.count(prefix + "otpks", len(otpks))
    for i, (pid, key) in enumerate(otpks):
        v.u32("%sotpks[%d].id" % (prefix, i), pid)
        v.bytes_("%sotpks[%d].key" % (prefix, i), key)


def sig_meta(v, seed, pub, msg, with_pub):
    v.meta("sig.seed", "hex:" + seed.hex())
    if with_pub:
        v.meta("sig.public_key", "hex:" + pub.hex())
    v.meta("sig.nonce", "hex:" + NONCE.hex())
    v.meta("sig.message", "hex:" + msg.hex())


# ---- valid vectors: client -> server ---------------------------------------

def gen_requests():
    v = vec("register", "REGISTER", 1,
            "REGISTER (0x01), client -> server: first device of a new account.\n"
            "The invite is UTF-8. sig = Ed25519(seed) over sig.message =\n"
            "\"fourc-register-v1\" || nonce || auth_pub, nonce from the CHALLENGE.")
    msg = register_msg(NONCE, PUB_A1)
    sig_meta(v, SEED_A1, PUB_A1, msg, False)
    v.str_("invite", "invite-Zürich-42")
    v.fixed("auth_pub", PUB_A1)
    put_keys(v, IDENTITY, 7, SPK, SPK_SIG, OTPK)
    v.fixed("sig", K_A1.sign(msg))

    v = vec("auth", "AUTH", 2,
            "AUTH (0x02), client -> server: device 1 of account 1001 logs in.\n"
            "sig over \"fourc-auth-v1\" || nonce || account u64 BE || device u32 BE.")
    msg = auth_msg(NONCE, ACC_A, 1)
    sig_meta(v, SEED_A1, PUB_A1, msg, True)
    v.u64("account", ACC_A)
    v.u32("device", 1)
    v.fixed("sig", K_A1.sign(msg))

    vec("link_begin", "LINK_BEGIN", 3,
        "LINK_BEGIN (0x03), client -> server: empty body; answered by LINK_CODE.")

    v = vec("link_device", "LINK_DEVICE", 1,
            "LINK_DEVICE (0x04), client -> server: a new device joins account 1001\n"
            "with the code shown on an existing device. No one-time prekeys here.\n"
            "sig over \"fourc-link-v1\" || nonce || auth_pub.")
    msg = link_msg(NONCE, PUB_A2)
    sig_meta(v, SEED_A2, PUB_A2, msg, False)
    v.str_("code", "K7Q2-MX4P-9TZD")
    v.fixed("auth_pub", PUB_A2)
    put_keys(v, bytes([0x05]) + sha("identity key of 1001/2"), 1,
             bytes([0x05]) + sha("spk 1 of 1001/2"), sha("s1") + sha("s2"), [])
    v.fixed("sig", K_A2.sign(msg))

    v = vec("device_remove", "DEVICE_REMOVE", 4,
            "DEVICE_REMOVE (0x05), client -> server: remove device 2; answered by OK.")
    v.u32("device", 2)

    v = vec("username_set", "USERNAME_SET", 5,
            "USERNAME_SET (0x06): 3..32 bytes of [a-z0-9_.]; answered by OK.")
    v.str_("username", "anna.k_92")

    v = vec("username_set_clear", "USERNAME_SET", 6,
            "USERNAME_SET (0x06) with the empty string: clears the username.")
    v.str_("username", "")

    v = vec("resolve", "RESOLVE", 7,
            "RESOLVE (0x07): username -> ACCOUNT_INFO (or ERROR NOT_FOUND).")
    v.str_("username", "max_mustermann")

    v = vec("devices_get", "DEVICES_GET", 8,
            "DEVICES_GET (0x08): current device list of an account -> ACCOUNT_INFO.")
    v.u64("account", ACC_B)

    v = vec("keys_upload", "KEYS_UPLOAD", 9,
            "KEYS_UPLOAD (0x09): a new signed prekey (id 8) and two one-time prekeys.")
    v.u32("spk_id", 8)
    v.bytes_("spk", bytes([0x05]) + sha("signed prekey 8 of 1001"))
    v.bytes_("spk_sig", sha("spk8 sig a") + sha("spk8 sig b"))
    v.count("otpks", 2)
    for i, pid in enumerate((103, 104)):
        v.u32("otpks[%d].id" % i, pid)
        v.bytes_("otpks[%d].key" % i, bytes([0x05]) + sha("otpk %d" % pid))

    v = vec("keys_upload_otpks_only", "KEYS_UPLOAD", 10,
            "KEYS_UPLOAD (0x09) with spk_id 0: no new signed prekey, so spk and\n"
            "spk_sig are empty; one more one-time prekey.")
    v.u32("spk_id", 0)
    v.bytes_("spk", b"")
    v.bytes_("spk_sig", b"")
    v.count("otpks", 1)
    v.u32("otpks[0].id", 105)
    v.bytes_("otpks[0].key", bytes([0x05]) + sha("otpk 105"))

    v = vec("bundle_fetch", "BUNDLE_FETCH", 11,
            "BUNDLE_FETCH (0x0A): prekey bundle of device 1 of account 1002 -> BUNDLE.")
    v.u64("account", ACC_B)
    v.u32("device", 1)

    v = vec("send", "SEND", 12,
            "SEND (0x0B): account 1001 (device 1) sends one message to account 1002,\n"
            "which has devices 1 and 2, and to its own other device 2. Ciphertexts\n"
            "are opaque to the server.")
    v.u64("client_msg_id", 0x0123456789ABCDEF)
    v.u64("recipient", ACC_B)
    v.count("envelopes", 3)
    for i, (acc, dev, ct) in enumerate(((ACC_B, 1, bytes.fromhex("33080112") + sha("ct b1")[:12]),
                                        (ACC_B, 2, bytes.fromhex("33080112") + sha("ct b2")[:12]),
                                        (ACC_A, 2, bytes.fromhex("33080112") + sha("ct a2")[:20]))):
        v.u64("envelopes[%d].account" % i, acc)
        v.u32("envelopes[%d].device" % i, dev)
        v.bytes_("envelopes[%d].ciphertext" % i, ct)

    v = vec("ack", "ACK", 13,
            "ACK (0x0C) with a request id: everything up to seq 57 is processed;\n"
            "the server answers OK because request_id != 0.")
    v.u64("upto_seq", 57)

    v = vec("ack_silent", "ACK", 0,
            "ACK (0x0C) with request id 0: no answer is sent.")
    v.u64("upto_seq", 58)

    v = vec("sync", "SYNC", 14,
            "SYNC (0x0D): entries after seq 40, at most 100 of them.")
    v.u64("after_seq", 40)
    v.u16("limit", 100)


# ---- valid vectors: server -> client ---------------------------------------

def gen_responses():
    v = vec("challenge", "CHALLENGE", 0,
            "CHALLENGE (0x40), pushed right after the WebSocket upgrade. The nonce is\n"
            "the one signed in the register/auth/link_device vectors.")
    v.u8("min_version", 1)
    v.u8("max_version", 1)
    v.fixed("nonce", NONCE)
    v.u64("server_time_ms", TS)

    vec("ok", "OK", 4, "OK (0x41): empty body, echoes the request id (here DEVICE_REMOVE).")

    v = vec("error", "ERROR", 12,
            "ERROR (0x42): RATE_LIMITED (11), retry after 1500 ms, ASCII detail.")
    v.u16("code", 11)
    v.u32("retry_after_ms", 1500)
    v.str_("detail", "send rate exceeded")

    v = vec("error_empty", "ERROR", 7,
            "ERROR (0x42): NOT_FOUND (7), not retryable, empty detail.")
    v.u16("code", 7)
    v.u32("retry_after_ms", 0)
    v.str_("detail", "")

    v = vec("registered", "REGISTERED", 1,
            "REGISTERED (0x43): the new device is device 1 of account 1001.")
    v.u64("account", ACC_A)
    v.u32("device", 1)

    v = vec("auth_ok", "AUTH_OK", 2,
            "AUTH_OK (0x44): mailbox head is 60, the device acknowledged up to 40.")
    v.u64("head_seq", 60)
    v.u64("acked_seq", 40)

    v = vec("link_code", "LINK_CODE", 3,
            "LINK_CODE (0x45): code to type on the new device, valid 300 s.")
    v.str_("code", "K7Q2-MX4P-9TZD")
    v.u32("expires_in_s", 300)

    v = vec("account_info", "ACCOUNT_INFO", 7,
            "ACCOUNT_INFO (0x46): answer to RESOLVE / DEVICES_GET.")
    v.u64("account", ACC_B)
    v.str_("username", "max_mustermann")
    v.count("devices", 2)
    v.u32("devices[0]", 1)
    v.u32("devices[1]", 2)

    v = vec("account_info_nameless", "ACCOUNT_INFO", 8,
            "ACCOUNT_INFO (0x46) of an account without a username and one device.")
    v.u64("account", ACC_A)
    v.str_("username", "")
    v.count("devices", 1)
    v.u32("devices[0]", 1)

    v = vec("keys_status", "KEYS_STATUS", 9,
            "KEYS_STATUS (0x47): one-time prekeys left in the pool after KEYS_UPLOAD.")
    v.u32("otpks_remaining", 97)

    v = vec("bundle", "BUNDLE", 11,
            "BUNDLE (0x48): prekey bundle of device 1 of account 1002 with one\n"
            "one-time prekey (removed from the pool by this fetch).")
    v.u64("account", ACC_B)
    v.u32("device", 1)
    v.u32("registration_id", 777)
    v.bytes_("identity_key", bytes([0x05]) + sha("identity key of 1002"))
    v.u32("spk_id", 3)
    v.bytes_("spk", bytes([0x05]) + sha("spk 3 of 1002"))
    v.bytes_("spk_sig", sha("1002 spk sig a") + sha("1002 spk sig b"))
    v.u32("otpk_id", 501)
    v.bytes_("otpk", bytes([0x05]) + sha("otpk 501 of 1002"))

    v = vec("bundle_no_otpk", "BUNDLE", 11,
            "BUNDLE (0x48) when the one-time prekey pool is empty: otpk_id 0 and an\n"
            "empty otpk.")
    v.u64("account", ACC_B)
    v.u32("device", 2)
    v.u32("registration_id", 778)
    v.bytes_("identity_key", bytes([0x05]) + sha("identity key of 1002/2"))
    v.u32("spk_id", 9)
    v.bytes_("spk", bytes([0x05]) + sha("spk 9 of 1002/2"))
    v.bytes_("spk_sig", sha("1002/2 spk sig a") + sha("1002/2 spk sig b"))
    v.u32("otpk_id", 0)
    v.bytes_("otpk", b"")

    v = vec("accepted", "ACCEPTED", 12,
            "ACCEPTED (0x49): the SEND is durable; echoes client_msg_id.")
    v.u64("client_msg_id", 0x0123456789ABCDEF)
    v.u64("timestamp_ms", TS + 1234)

    v = vec("stale_devices", "STALE_DEVICES", 12,
            "STALE_DEVICES (0x4A): the SEND was refused whole. Account 1002 now has\n"
            "devices 1, 2, 3; account 1001 (the sender) has devices 1 and 2.")
    v.u64("client_msg_id", 0x0123456789ABCDEF)
    v.count("devsets", 2)
    for i, (acc, devs) in enumerate(((ACC_B, [1, 2, 3]), (ACC_A, [1, 2]))):
        v.u64("devsets[%d].account" % i, acc)
        v.count("devsets[%d].devices" % i, len(devs))
        for j, d in enumerate(devs):
            v.u32("devsets[%d].devices[%d]" % (i, j), d)

    v = vec("deliver", "DELIVER", 0,
            "DELIVER (0x4B) pushed live (request id 0).")
    v.u64("seq", 61)
    v.u64("sender_account", ACC_A)
    v.u32("sender_device", 1)
    v.u64("timestamp_ms", TS + 1234)
    v.bytes_("ciphertext", bytes.fromhex("33080112") + sha("ct b1")[:12])

    v = vec("deliver_sync", "DELIVER", 14,
            "DELIVER (0x4B) returned by SYNC: carries the SYNC's request id.")
    v.u64("seq", 41)
    v.u64("sender_account", ACC_B)
    v.u32("sender_device", 2)
    v.u64("timestamp_ms", TS - 60000)
    v.bytes_("ciphertext", sha("ct 41"))

    v = vec("sync_done", "SYNC_DONE", 14,
            "SYNC_DONE (0x4C): head is 60, this page ended at 50, more to fetch.")
    v.u64("head_seq", 60)
    v.u64("last_seq", 50)
    v.u8("has_more", 1)

    v = vec("resync", "RESYNC", 14,
            "RESYNC (0x4D): entries 42..44 (inclusive) expired before delivery.")
    v.u64("lost_from", 42)
    v.u64("lost_to", 44)

    v = vec("prekeys_low", "PREKEYS_LOW", 0,
            "PREKEYS_LOW (0x4E) push: only 9 one-time prekeys left.")
    v.u32("remaining", 9)

    v = vec("goaway", "GOAWAY", 0,
            "GOAWAY (0x4F) push: server shutting down, reconnect after 2000 ms.")
    v.u32("reconnect_after_ms", 2000)


# ---- forward-compatible variants -------------------------------------------

def gen_compat():
    v = vec("compat_send_trailing", "SEND", 12,
            "SEND with 5 unknown trailing bytes (a later minor revision's fields).\n"
            "Receivers ignore them; re-encoding gives send.hex.")
    v.meta("canonical", "send")
    src = [x for x in VECS if x.name == "send"][0]
    v.chunks = list(src.chunks)
    v.note("unknown trailing bytes: 5", bytes.fromhex("0102030405"))

    v = vec("compat_deliver_flags", "DELIVER", 0,
            "DELIVER with reserved flag bits set: receivers ignore flags; re-encoding\n"
            "(flags 0) gives deliver.hex.", flags=0x8001)
    v.meta("canonical", "deliver")
    src = [x for x in VECS if x.name == "deliver"][0]
    v.chunks = list(src.chunks)

    v = vec("compat_auth_ok_trailing", "AUTH_OK", 2,
            "AUTH_OK with one unknown trailing byte; re-encoding gives auth_ok.hex.")
    v.meta("canonical", "auth_ok")
    src = [x for x in VECS if x.name == "auth_ok"][0]
    v.chunks = list(src.chunks)
    v.note("unknown trailing bytes: 1", b"\x00")


# ---- invalid vectors -------------------------------------------------------

def bad(name, mtype, req_id, desc, err, wire_err, **kw):
    v = vec("invalid_" + name, mtype, req_id, desc, **kw)
    v.meta("error", err)
    v.meta("wire_error", wire_err)
    return v


def raw_u16(n): return struct.pack(">H", n)
def raw_u32(n): return struct.pack(">I", n)
def raw_u64(n): return struct.pack(">Q", n)


def gen_invalid():
    v = bad("version", "SYNC", 20, "Header version 2: unsupported.",
            "FC_EVERSION", "UNSUPPORTED_VERSION", version=2)
    v.note("after_seq: 40", raw_u64(40))
    v.note("limit: 100", raw_u16(100))

    v = bad("type_unknown", 0x3E, 21, "Type 0x3E is not defined in v1.",
            "FC_ETYPE", "UNKNOWN_TYPE")
    v.note("body: 4 bytes", raw_u32(0))

    bad("type_zero", 0x00, 22, "Type 0x00 is never defined.", "FC_ETYPE", "UNKNOWN_TYPE")

    v = bad("short_header", "SYNC", 23, "Only 7 bytes: shorter than the 12-byte header.",
            "FC_ETRUNC", "BAD_FRAME")
    v.note("after_seq: 40", raw_u64(40))
    v.cut = 7

    v = bad("body_len_short", "SYNC", 24,
            "body_len says 14 but only 10 body bytes follow.", "FC_ETRUNC", "BAD_FRAME")
    v.note("after_seq: 40", raw_u64(40))
    v.note("limit: 100", raw_u16(100))
    v.body_len = 14

    v = bad("body_len_long", "SYNC", 25,
            "body_len says 8 but 10 body bytes follow (bytes beyond the frame).",
            "FC_EMALFORMED", "BAD_FRAME")
    v.note("after_seq: 40", raw_u64(40))
    v.note("limit: 100", raw_u16(100))
    v.body_len = 8

    v = bad("body_len_cap", "SEND", 26,
            "body_len 1048565 exceeds WIRE_MAX_BODY (1048564); no body follows.",
            "FC_ETOOBIG", "TOO_LARGE")
    v.body_len = 1048565

    v = bad("send_trunc", "SEND", 27,
            "SEND whose only envelope's ciphertext length (16) exceeds the 4 bytes left.",
            "FC_ETRUNC", "BAD_FRAME")
    v.note("client_msg_id: 1", raw_u64(1))
    v.note("recipient: 1002", raw_u64(ACC_B))
    v.note("envelopes.count: 1", raw_u16(1))
    v.note("envelopes[0].account, device: 1002, 1", raw_u64(ACC_B) + raw_u32(1))
    v.note("envelopes[0].ciphertext: length 16, 4 bytes present", raw_u32(16) + b"abcd")

    v = bad("send_envelopes_cap", "SEND", 28,
            "SEND announcing 65 envelopes (cap 64); the count alone decides.",
            "FC_ETOOBIG", "TOO_LARGE")
    v.note("client_msg_id: 2", raw_u64(2))
    v.note("recipient: 1002", raw_u64(ACC_B))
    v.note("envelopes.count: 65", raw_u16(65))

    v = bad("send_ciphertext_cap", "SEND", 29,
            "SEND with a ciphertext length of 65537 (cap 65536).",
            "FC_ETOOBIG", "TOO_LARGE")
    v.note("client_msg_id: 3", raw_u64(3))
    v.note("recipient: 1002", raw_u64(ACC_B))
    v.note("envelopes.count: 1", raw_u16(1))
    v.note("envelopes[0].account, device: 1002, 1", raw_u64(ACC_B) + raw_u32(1))
    v.note("envelopes[0].ciphertext: length 65537, no bytes", raw_u32(65537))

    v = bad("register_invite_utf8", "REGISTER", 30,
            "REGISTER whose invite is not UTF-8 (C0 AF is an overlong '/').",
            "FC_EUTF8", "BAD_FRAME")
    v.note("invite: length 3", raw_u16(3) + bytes.fromhex("c0af41"))

    v = bad("register_invite_cap", "REGISTER", 31,
            "REGISTER whose invite length is 65 (cap 64).", "FC_ETOOBIG", "TOO_LARGE")
    v.note("invite: length 65", raw_u16(65) + b"i" * 65)

    v = bad("register_otpks_cap", "REGISTER", 32,
            "REGISTER announcing 201 one-time prekeys (cap 200).", "FC_ETOOBIG", "TOO_LARGE")
    v.note("invite: \"x\"", raw_u16(1) + b"x")
    v.note("auth_pub", PUB_A1)
    v.note("keys.registration_id: 1", raw_u32(1))
    v.note("keys.identity_key: empty", raw_u32(0))
    v.note("keys.spk_id: 1", raw_u32(1))
    v.note("keys.spk: empty", raw_u32(0))
    v.note("keys.spk_sig: empty", raw_u32(0))
    v.note("keys.otpks.count: 201", raw_u16(201))

    v = bad("username_set_chars", "USERNAME_SET", 33,
            "USERNAME_SET with an upper-case letter: only [a-z0-9_.] is allowed.",
            "EINVAL", "BAD_REQUEST")
    v.note("username: \"Anna\"", raw_u16(4) + b"Anna")

    v = bad("username_set_short", "USERNAME_SET", 34,
            "USERNAME_SET with 2 characters (minimum 3).", "EINVAL", "BAD_REQUEST")
    v.note("username: \"ab\"", raw_u16(2) + b"ab")

    v = bad("username_set_cap", "USERNAME_SET", 35,
            "USERNAME_SET with 33 characters (cap 32).", "FC_ETOOBIG", "TOO_LARGE")
    v.note("username: 33 x 'a'", raw_u16(33) + b"a" * 33)

    v = bad("resolve_empty", "RESOLVE", 36,
            "RESOLVE with the empty username.", "EINVAL", "BAD_REQUEST")
    v.note("username: \"\"", raw_u16(0))

    v = bad("sync_limit_zero", "SYNC", 37, "SYNC with limit 0 (range 1..500).",
            "EINVAL", "BAD_REQUEST")
    v.note("after_seq: 0", raw_u64(0))
    v.note("limit: 0", raw_u16(0))

    v = bad("sync_limit_high", "SYNC", 38, "SYNC with limit 501 (range 1..500).",
            "EINVAL", "BAD_REQUEST")
    v.note("after_seq: 0", raw_u64(0))
    v.note("limit: 501", raw_u16(501))

    v = bad("keys_upload_prekey_id_zero", "KEYS_UPLOAD", 39,
            "KEYS_UPLOAD with a one-time prekey id 0 (0 means 'none' in BUNDLE).",
            "EINVAL", "BAD_REQUEST")
    v.note("spk_id: 0", raw_u32(0))
    v.note("spk: empty", raw_u32(0))
    v.note("spk_sig: empty", raw_u32(0))
    v.note("otpks.count: 1", raw_u16(1))
    v.note("otpks[0].id: 0", raw_u32(0))
    v.note("otpks[0].key: 2 bytes", raw_u32(2) + b"\x05\x01")

    v = bad("keys_upload_spk_without_id", "KEYS_UPLOAD", 40,
            "KEYS_UPLOAD with spk_id 0 but a non-empty spk.", "EINVAL", "BAD_REQUEST")
    v.note("spk_id: 0", raw_u32(0))
    v.note("spk: 2 bytes", raw_u32(2) + b"\x05\x02")
    v.note("spk_sig: empty", raw_u32(0))
    v.note("otpks.count: 0", raw_u16(0))

    v = bad("bundle_otpk_mismatch", "BUNDLE", 41,
            "BUNDLE with otpk_id 0 but a non-empty otpk.", "EINVAL", "BAD_REQUEST")
    v.note("account, device, registration_id", raw_u64(ACC_B) + raw_u32(1) + raw_u32(7))
    v.note("identity_key: 1 byte", raw_u32(1) + b"\x05")
    v.note("spk_id: 3", raw_u32(3))
    v.note("spk: 1 byte", raw_u32(1) + b"\x05")
    v.note("spk_sig: 1 byte", raw_u32(1) + b"\x00")
    v.note("otpk_id: 0", raw_u32(0))
    v.note("otpk: 1 byte", raw_u32(1) + b"\x05")

    v = bad("bundle_identity_cap", "BUNDLE", 42,
            "BUNDLE with a 65-byte identity key (cap 64).", "FC_ETOOBIG", "TOO_LARGE")
    v.note("account, device, registration_id", raw_u64(ACC_B) + raw_u32(1) + raw_u32(7))
    v.note("identity_key: length 65", raw_u32(65) + b"\x05" * 65)

    v = bad("error_detail_utf8", "ERROR", 43,
            "ERROR whose detail contains an encoded UTF-16 surrogate (ED A0 80).",
            "FC_EUTF8", "BAD_FRAME")
    v.note("code: 13", raw_u16(13))
    v.note("retry_after_ms: 0", raw_u32(0))
    v.note("detail: length 3", raw_u16(3) + bytes.fromhex("eda080"))

    v = bad("account_info_devices_cap", "ACCOUNT_INFO", 44,
            "ACCOUNT_INFO with 33 devices (cap 32).", "FC_ETOOBIG", "TOO_LARGE")
    v.note("account: 1002", raw_u64(ACC_B))
    v.note("username: \"\"", raw_u16(0))
    v.note("devices.count: 33", raw_u16(33) + b"".join(raw_u32(i + 1) for i in range(33)))

    v = bad("stale_devsets_cap", "STALE_DEVICES", 45,
            "STALE_DEVICES with 3 device sets (cap 2).", "FC_ETOOBIG", "TOO_LARGE")
    v.note("client_msg_id: 1", raw_u64(1))
    v.note("devsets.count: 3", raw_u16(3))

    v = bad("stale_devset_trunc", "STALE_DEVICES", 46,
            "STALE_DEVICES whose second device set is cut inside its device list.",
            "FC_ETRUNC", "BAD_FRAME")
    v.note("client_msg_id: 1", raw_u64(1))
    v.note("devsets.count: 2", raw_u16(2))
    v.note("devsets[0]: 1002, [1]", raw_u64(ACC_B) + raw_u16(1) + raw_u32(1))
    v.note("devsets[1]: 1001, count 2, one device present", raw_u64(ACC_A) + raw_u16(2) + raw_u32(1))

    v = bad("challenge_versions", "CHALLENGE", 0,
            "CHALLENGE with min_version 2 > max_version 1.", "EINVAL", "BAD_REQUEST")
    v.note("min_version, max_version: 2, 1", b"\x02\x01")
    v.note("nonce", NONCE)
    v.note("server_time_ms", raw_u64(TS))

    v = bad("resync_range", "RESYNC", 47,
            "RESYNC with lost_from 45 > lost_to 44.", "EINVAL", "BAD_REQUEST")
    v.note("lost_from: 45", raw_u64(45))
    v.note("lost_to: 44", raw_u64(44))

    v = bad("auth_sig_trunc", "AUTH", 48,
            "AUTH whose signature has only 63 bytes.", "FC_ETRUNC", "BAD_FRAME")
    v.note("account: 1001", raw_u64(ACC_A))
    v.note("device: 1", raw_u32(1))
    v.note("sig: 63 bytes", bytes(63))

    v = bad("deliver_trunc", "DELIVER", 0,
            "DELIVER that ends inside timestamp_ms.", "FC_ETRUNC", "BAD_FRAME")
    v.note("seq: 61", raw_u64(61))
    v.note("sender_account: 1001", raw_u64(ACC_A))
    v.note("sender_device: 1", raw_u32(1))
    v.note("timestamp_ms: 5 of 8 bytes", raw_u64(TS)[:5])


def main():
    gen_requests()
    gen_responses()
    gen_compat()
    gen_invalid()
    os.makedirs(CORPUS, exist_ok=True)
    names = set()
    for v in VECS:
        assert v.name not in names, v.name
        names.add(v.name)
        with open(os.path.join(HERE, v.name + ".hex"), "w", encoding="utf-8") as f:
            f.write(v.text())
        with open(os.path.join(CORPUS, v.name + ".bin"), "wb") as f:
            f.write(v.frame())
    print("wrote %d vectors" % len(VECS), file=sys.stderr)


if __name__ == "__main__":
    main()
