#!/usr/bin/env python3
"""An rlaif protocol client written from docs/PROTOCOL.md alone, with pyzmq and struct.

Registers with a coordinator endpoint (hello -> welcome), then reports one failed job result whose
body is a replica report. Exits 0 on success, prints what went wrong otherwise.

    python3 tools/protocol_client.py tcp://127.0.0.1:5555
"""
import struct
import sys

import zmq

MAGIC, MAJOR, MINOR = b"RLAF", 9, 1
HELLO, WELCOME, REJECT, RESULT = 1, 2, 3, 6


def string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<I", len(b)) + b


def header(kind: int) -> bytes:
    return MAGIC + struct.pack("<HHB", MAJOR, MINOR, kind)


def hello() -> bytes:
    body = string("python-client") + string("localhost") + struct.pack("<IHQ", 1234, 1, 99) + string("")
    body += bytes([1])  # role: both
    return header(HELLO) + body + bytes([0])  # no tensors


def result(worker_id: int) -> list:
    # A failed result's body is a replica report: version u64, then fingerprint as a present flag
    # and a string.
    report = struct.pack("<Q", 3) + bytes([1]) + string("00ff")
    fields = struct.pack("<QII", 42, 0, worker_id) + bytes([2]) + string("out of memory")
    body = struct.pack("<I", len(report)) + report
    return [header(RESULT) + fields + body + bytes([0])]  # no tensors


def read_string(buf: bytes, at: int):
    (n,) = struct.unpack_from("<I", buf, at)
    return buf[at + 4 : at + 4 + n].decode("utf-8"), at + 4 + n


def main() -> int:
    endpoint = sys.argv[1]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.RCVTIMEO, 10000)
    sock.connect(endpoint)
    sock.send(hello())
    frames = sock.recv_multipart()
    control = frames[0]
    if control[:4] != MAGIC:
        print("reply lacks the magic")
        return 1
    major, minor, kind = struct.unpack_from("<HHB", control, 4)
    if kind == REJECT:
        print("rejected:", read_string(control, 9)[0])
        return 1
    if kind != WELCOME:
        print("unexpected kind", kind)
        return 1
    worker_id, interval, timeout = struct.unpack_from("<III", control, 9)
    run_name, end = read_string(control, 21)
    _setup, end = read_string(control, end)
    (count,) = struct.unpack_from("<I", control, end)
    end += 4
    ring_keys = []
    for _ in range(count):
        key, end = read_string(control, end)
        ring_keys.append(key)
    if control[end] != 0:
        print("welcome has tensors")
        return 1
    end += 1
    # Bytes after the fields we know are allowed only from a newer minor version.
    if end != len(control) and minor <= MINOR:
        print("welcome has trailing bytes")
        return 1
    print(f"welcomed as worker {worker_id} of run {run_name!r} (protocol {major}.{minor}, heartbeat {interval} ms)")
    sock.send_multipart(result(worker_id))
    sock.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
