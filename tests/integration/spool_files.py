"""
The spool's files as tests see them: where this version keeps a message's files
(spool/spool_layout.h: queue/<leaf>/<id>, the leaf being the low 12 bits of the id's CRC-32 in
three hexadecimal digits), and queue and state files written in the formats of docs/spool.md, as
Sluice versions before the hashed directories left them (queue/<id>), to test the upgrade.
"""
import os
import struct
import zlib

LEAVES = 4096


def message_path(spool, sub, qid):
    """queue/ or state/ file of queue id qid in this version's layout."""
    return os.path.join(spool, sub, "%03x" % (zlib.crc32(qid.encode()) % LEAVES), qid)


def flat_path(spool, sub, qid):
    """The same file in the flat layout of earlier versions."""
    return os.path.join(spool, sub, qid)


def hashed_files(spool, sub):
    """Names of the files in the leaves of spool/sub."""
    top = os.path.join(spool, sub)
    return [name for leaf in os.listdir(top) if os.path.isdir(os.path.join(top, leaf))
            for name in os.listdir(os.path.join(top, leaf))]


def flat_files(spool, sub):
    """Names of the files at the top of spool/sub (none once migrated)."""
    top = os.path.join(spool, sub)
    return [name for name in os.listdir(top) if not os.path.isdir(os.path.join(top, name))]


def _record(kind, payload):
    return kind + struct.pack(">I", len(payload)) + payload


def queue_file(sender, rcpts, body, received_at, client="192.0.2.1", helo="old.test",
               listener="mx"):
    """A committed queue file: envelope records, one body record, the end record."""
    data = _record(b"M", b"sluice-spool/1") + _record(b"S", sender.encode())
    data += b"".join(_record(b"R", r.encode()) for r in rcpts)
    data += _record(b"C", client.encode()) + _record(b"H", helo.encode())
    data += _record(b"L", listener.encode())
    data += _record(b"T", struct.pack(">q", received_at)) + _record(b"F", struct.pack(">I", 0))
    data += _record(b"B", body)
    end = b"E" + struct.pack(">IQ", 12, len(body))
    return data + end + struct.pack(">I", zlib.crc32(data + end))


def state_record(rcpt, status, attempts=1, next_attempt=0, reply=b""):
    """One state record: status 2 delivered, 1 deferred (docs/spool.md)."""
    payload = struct.pack(">IBIq", rcpt, status, attempts, next_attempt) + reply
    head = struct.pack(">I", len(payload)) + payload
    return head + struct.pack(">I", zlib.crc32(head))


def write_message(spool, qid, queue_bytes, state_bytes=None, hashed=False):
    """Writes a message's files (directories made here): as a version with the flat layout left
    them, or with hashed where this version keeps them."""
    place = message_path if hashed else flat_path
    for sub, data in (("queue", queue_bytes), ("state", state_bytes)):
        if data is not None:
            os.makedirs(os.path.dirname(place(spool, sub, qid)), 0o700, exist_ok=True)
            with open(place(spool, sub, qid), "wb") as f:
                f.write(data)
