#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/seeds/ from the test fixtures.

text: the Go gateway's recorded scrape and a few bodies the tests push; protobuf: the
same families as the daemon serves them delimited (run against a daemon built from this
tree: pass its binary); gob: the Go gateway's file and one the daemon wrote; compressed:
gzip and framed snappy of a body. Each seed starts with the flag byte the target reads.
"""
import gzip, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

BODIES = [
    b"m 1\n",
    b'# HELP h A histogram.\n# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.3\nh_count 2\n',
    b'# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 2\ns_count 3\n',
    b'm{a="x\\"y\\\\z\\n"} -Inf\nm{a="b"} NaN 1700000000000\n# TYPE c counter\nc_total 3e-7\n',
    b'{"a.b",x="y"} 1\nm{"my.label"="v"} 2\n# TYPE "q.r" gauge\n"q.r" 3\n',
]


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def snappy_framed(data):
    """A framed snappy stream of uncompressed chunks (what the decoder must accept)."""
    out = b"\xff\x06\x00\x00sNaPpY"
    c = crc32c(data)
    masked = (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    body = masked.to_bytes(4, "little") + data
    return out + b"\x01" + len(body).to_bytes(3, "little") + body


def served(binary, data_file):
    """Protobuf and file bytes from a daemon loaded with the fixture."""
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "p.data"
        shutil.copy(data_file, file)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}",
                                 f"--persistence.file={file}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={
                "Accept": "application/vnd.google.protobuf; "
                          "proto=io.prometheus.client.MetricFamily; encoding=delimited"})
            proto = urllib.request.urlopen(req, timeout=10).read()
        finally:
            proc.terminate()
            proc.wait()
        return proto, file.read_bytes()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "pushgateway")
    seeds = HERE / "seeds"
    shutil.rmtree(seeds, ignore_errors=True)
    for d in ("text", "protobuf", "gob", "compressed"):
        (seeds / d).mkdir(parents=True)
    scrape = (FIXTURES / "go-1.5.1.metrics").read_bytes()
    for i, body in enumerate(BODIES + [scrape]):
        for flag in (0, 1):
            (seeds / "text" / f"{i}-{flag}").write_bytes(bytes([flag]) + body)
    proto, ours = served(binary, FIXTURES / "go-1.5.1.data")
    for flag in (0, 1):
        (seeds / "protobuf" / f"scrape-{flag}").write_bytes(bytes([flag]) + proto)
    (seeds / "gob" / "go-1.5.1").write_bytes((FIXTURES / "go-1.5.1.data").read_bytes())
    (seeds / "gob" / "ours").write_bytes(ours)
    for i, body in enumerate(BODIES[:3] + [scrape]):
        (seeds / "compressed" / f"gzip-{i}").write_bytes(b"\x00" + gzip.compress(body))
        (seeds / "compressed" / f"snappy-{i}").write_bytes(b"\x01" + snappy_framed(body))


if __name__ == "__main__":
    main()
