#!/usr/bin/env python3
"""Side-by-side benchmark of Pushgateway implementations (run by `make bench`).

Every server is started fresh on a free 127.0.0.1 port for each round, and the
servers are interleaved round by round, so all figures in one table come from
the same run on the same machine:

  round 1 (idle + wrk): idle RSS ~1 s after ready, then wrk PUT throughput over
                        1,000 pre-created groups (2 threads, 16 connections).
  round 2 (store):      push latency at 0 stored groups, time to load G groups,
                        push latency at G groups, scrape time/size (plain and
                        gzip) and RSS at G groups.
  round 3 (persist):    wrk PUT throughput again with a persistence file written
                        every second (--persistence.interval=1s), and for rust
                        also in durable mode (--persistence.sync=always: every
                        push acknowledged only once fsynced in the journal).
  round 4 (modes):      per persistence mode (memory only, a file every second,
                        and for rust durable): wrk PUT throughput with 1, 4 and
                        32 connections; then, with the file written only every
                        5 minutes, p50 of 200 one-sample POSTs (11 bytes) into a
                        group of 10,000 series and into a one-series group, and
                        the bytes the files beside the persistence file grew by
                        per such POST (what the journal costs a change).
  round 5 (recovery):   durable mode, file every 5 minutes: seconds from a restart
                        after kill -9 to ready, (a) after a 10,000-series group
                        and 200 one-sample POSTs into it, (b) after G groups each
                        PUT twice; and the journal bytes it had to replay.
  round 6 (instructions): our builds only, each under valgrind's callgrind: the
                        instructions a request costs, which unlike wall-clock time
                        does not move with the machine's load, so two builds compare
                        to the percent: (instructions of a run with N requests less
                        those of a run without them) / N, for a PUT of a new group, a
                        PUT replacing a group, a one-sample POST into a 2,000-series
                        group (these three in memory, the first and third durable too),
                        and text, gzip and protobuf scrapes of 1,000 groups.

Only the Python 3 standard library and the `wrk` binary are needed.  Progress
goes to stderr; the table goes to stdout; `--json FILE` writes all figures.

Examples:
  python3 tests/bench/bench.py                    # go and rust, G=10000 (slow: Go needs ~16 min to load)
  python3 tests/bench/bench.py --quick            # G=1000, 3 s of wrk
  python3 tests/bench/bench.py --only rust --groups 300
  python3 tests/bench/bench.py --quick --rounds modes --before-bin ./old-pushgateway
  python3 tests/bench/bench.py --server go='./go-pushgateway --persistence.file= --web.listen-address=127.0.0.1:{port}'
"""

import argparse
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GO_BIN = os.environ.get("PUSHGATEWAY_GO_BIN", "/usr/bin/prometheus-pushgateway")
DEFAULT_RUST_BIN = os.environ.get(
    "PUSHGATEWAY_RUST_BIN", str(REPO_ROOT / "target" / "release" / "pushgateway")
)
PUSH_HEADERS = {"Content-Type": "text/plain; version=0.0.4"}
READY_TIMEOUT_S = 30.0
WRK_GROUPS = 1000
WRK_THREADS = 2
WRK_CONNECTIONS = 16


def log(message):
    """Print a progress message to stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def push_body(i):
    """Return a ~10-sample text-format body; HELP/TYPE lines are the same for every group."""
    return (
        "# HELP bench_requests_total Requests handled by the benchmark job.\n"
        "# TYPE bench_requests_total counter\n"
        f'bench_requests_total{{code="200"}} {1000 + i}\n'
        f'bench_requests_total{{code="500"}} {i % 7}\n'
        "# HELP bench_temperature_celsius Current temperature of the benchmark job.\n"
        "# TYPE bench_temperature_celsius gauge\n"
        f"bench_temperature_celsius {20 + i % 10}.5\n"
        "# HELP bench_duration_seconds Duration of the benchmark job.\n"
        "# TYPE bench_duration_seconds histogram\n"
        'bench_duration_seconds_bucket{le="0.1"} 1\n'
        'bench_duration_seconds_bucket{le="0.5"} 4\n'
        'bench_duration_seconds_bucket{le="1"} 7\n'
        'bench_duration_seconds_bucket{le="5"} 9\n'
        'bench_duration_seconds_bucket{le="+Inf"} 10\n'
        f"bench_duration_seconds_sum {12 + i % 5}.25\n"
        "bench_duration_seconds_count 10\n"
    ).encode()


def is_2xx(status):
    """Tell whether an HTTP status code is a success."""
    return 200 <= status < 300


class Client:
    """A keep-alive HTTP/1.1 connection to one server that reconnects after errors."""

    def __init__(self, port, timeout):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """Send one request; return (status, lower-cased headers, body, seconds taken)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        elapsed = time.perf_counter() - start
        if response.will_close:
            self.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data, elapsed

    def close(self):
        """Close the underlying connection, if any."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def free_port():
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_rss_kib(pid):
    """Return VmRSS of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Server:
    """One server under test, described by a command template containing {port}."""

    def __init__(self, name, template, variants=None, modes=None):
        self.name = name
        self.template = template
        # Persistence variants for round 3: figure key -> template with {port} and {file}.
        self.variants = variants or {}
        # Persistence modes for round 4: mode -> template with {port}, {file}, {interval}.
        self.modes = modes or {}
        self.binary = shutil.which(shlex.split(template)[0])
        self.proc = None
        self.port = None
        self.log_file = None

    def start(self, file=None, ready_timeout=READY_TIMEOUT_S):
        """Start the server on a free port and wait until it reports ready."""
        self.port = free_port()
        argv = shlex.split(self.template.format(port=self.port, file=file))
        self.log_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(ready_timeout)
        log(f"{self.name}: ready on 127.0.0.1:{self.port} (pid {self.proc.pid})")

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        """Poll GET /-/ready (falling back to /-/healthy on 404) until it answers 200."""
        client = Client(self.port, timeout=2)
        path = "/-/ready"
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with status {self.proc.returncode}: {self.log_tail()}"
                    )
                try:
                    status = client.request("GET", path)[0]
                except OSError:
                    status = None
                if status == 200:
                    return
                if status == 404 and path == "/-/ready":
                    path = "/-/healthy"
                    continue
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, limit=600):
        """Return the end of the server's combined stdout/stderr."""
        self.log_file.seek(0)
        text = self.log_file.read().decode(errors="replace").strip()
        return text[-limit:] or "(no output)"

    def rss_kib(self):
        """Return the server's current resident set size in KiB."""
        return read_rss_kib(self.proc.pid)

    def client(self, timeout):
        """Return a new keep-alive client for this server."""
        return Client(self.port, timeout)

    def stop(self, grace=5):
        """Terminate the server (SIGTERM, then SIGKILL after `grace` s) and drop its log."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log_file.close()


def stripped_size(binary):
    """Return the size in bytes of `binary` after `strip`, or None if strip is unavailable."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stripped"
        try:
            subprocess.run(["strip", "-o", str(out), binary], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return out.stat().st_size


def measure_push_latency(server, probes, timeout):
    """Time `probes` sequential PUTs to fresh groups probe-N on one keep-alive connection.

    Each probe group is deleted again (untimed) so the store size stays as it was.
    Returns p50/p99 in ms and the number of non-2xx PUTs.
    """
    client = server.client(timeout)
    client.request("GET", "/-/healthy")  # open the connection outside the timed requests
    latencies, failures = [], 0
    try:
        for n in range(probes):
            path = f"/metrics/job/bench/instance/probe-{n}"
            status, _, _, elapsed = client.request("PUT", path, push_body(n), PUSH_HEADERS)
            latencies.append(elapsed * 1000)
            failures += not is_2xx(status)
            client.request("DELETE", path)
    finally:
        client.close()
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50_ms": quantiles[49], "p99_ms": quantiles[98], "non_2xx": failures}


def load_groups(server, groups, threads, timeout, prefix="i"):
    """PUT one body to each of `groups` grouping keys instance=<prefix>N from a thread pool.

    Each thread keeps one keep-alive connection.  Progress is reported every 10 s.
    Returns the wall time and the number of failed pushes.
    """
    lock = threading.Lock()
    keys = iter(range(groups))
    state = {"done": 0, "failed": 0, "first_error": None}

    def worker():
        client = server.client(timeout)
        while True:
            with lock:
                i = next(keys, None)
            if i is None:
                break
            try:
                status = client.request(
                    "PUT", f"/metrics/job/bench/instance/{prefix}{i}", push_body(i), PUSH_HEADERS
                )[0]
                error = None if is_2xx(status) else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                error = repr(exc)
            with lock:
                state["done"] += 1
                if error:
                    state["failed"] += 1
                    state["first_error"] = state["first_error"] or error
        client.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    next_report = start + 10
    for thread in pool:
        while thread.is_alive():
            thread.join(timeout=1)
            now = time.perf_counter()
            if now < next_report:
                continue
            done = state["done"]
            eta = (now - start) / max(done, 1) * (groups - done)
            log(f"{server.name}: loaded {done}/{groups} groups after {now - start:.0f} s "
                f"(ETA {eta:.0f} s)")
            next_report = now + 10
    elapsed = time.perf_counter() - start
    if state["failed"]:
        log(f"{server.name}: {state['failed']} pushes failed, first: {state['first_error']}")
    return {"seconds": elapsed, "failed": state["failed"], "first_error": state["first_error"]}


PROTOBUF_ACCEPT = ("application/vnd.google.protobuf; "
                   "proto=io.prometheus.client.MetricFamily; encoding=delimited")


def measure_scrapes(server, count, timeout, gzip, protobuf=False):
    """GET /metrics `count` times; return median time (ms), body size, encoding and type."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    if protobuf:
        headers["Accept"] = PROTOBUF_ACCEPT
    client = server.client(timeout)
    times, size, encoding, ctype = [], None, None, None
    try:
        for _ in range(count):
            status, resp_headers, body, elapsed = client.request("GET", "/metrics", headers=headers)
            if not is_2xx(status):
                raise RuntimeError(f"GET /metrics answered HTTP {status}")
            times.append(elapsed * 1000)
            size = len(body)
            encoding = resp_headers.get("content-encoding")
            ctype = resp_headers.get("content-type")
    finally:
        client.close()
    return {"median_ms": statistics.median(times), "bytes": size, "content_encoding": encoding,
            "content_type": ctype}


WRK_SCRIPT = """\
-- Generated by bench.py: PUT the benchmark body, cycling over {groups} grouping keys.
local body = [==[
{body}]==]
local headers = {{["Content-Type"] = "text/plain; version=0.0.4"}}
local groups = {groups}
local spacing = math.floor(groups / {threads})
local counter = 0
local next_offset = 0

function setup(thread)
  thread:set("offset", next_offset)
  next_offset = next_offset + spacing
end

function init(args)
  counter = offset
end

function request()
  local path = "/metrics/job/bench/instance/w" .. (counter % groups)
  counter = counter + 1
  return wrk.format("PUT", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "status_errors": %d, ' ..
    '"socket_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}}\\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(server, duration, connections=WRK_CONNECTIONS):
    """Run wrk PUTs over WRK_GROUPS groups against a server; return throughput and errors.

    Non-2xx responses are wrk's status errors (status >= 400; a PUT never gets 1xx/3xx).
    """
    threads = min(WRK_THREADS, connections)
    script = WRK_SCRIPT.format(body=push_body(0).decode(), groups=WRK_GROUPS, threads=threads)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        argv = [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            "--timeout", "30s", "-s", lua.name, f"http://127.0.0.1:{server.port}/",
        ]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"no result line in wrk output:\n{out}")
    result = json.loads(line.split(" ", 1)[1])
    return {
        "req_per_s": result["requests"] / (result["duration_us"] / 1e6),
        "requests": result["requests"],
        "non_2xx": result["status_errors"],
        "socket_errors": result["socket_errors"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
    }


def round_idle_wrk(server, figures, cfg):
    """Round 1 on a fresh server: idle RSS ~1 s after ready, then wrk push throughput.

    The wrk groups are created first (untimed) so wrk measures steady-state replacing pushes.
    """
    time.sleep(1)
    figures["idle_rss_kib"] = server.rss_kib()
    log(f"{server.name}: idle RSS {figures['idle_rss_kib']} KiB; creating {WRK_GROUPS} wrk groups")
    load_groups(server, WRK_GROUPS, cfg.load_threads, cfg.timeout, prefix="w")
    log(f"{server.name}: wrk for {cfg.wrk_duration} s")
    figures["wrk"] = run_wrk(server, cfg.wrk_duration)
    log(f"{server.name}: wrk {figures['wrk']['req_per_s']:.0f} req/s")


def round_persist_wrk(server, figures, cfg):
    """Round 3: wrk push throughput with persistence on, per variant of the server."""
    for key, template in server.variants.items():
        with tempfile.TemporaryDirectory() as tmp:
            variant = Server(f"{server.name} ({key})", template)
            try:
                variant.start(file=os.path.join(tmp, "pushgateway.data"))
                load_groups(variant, WRK_GROUPS, cfg.load_threads, cfg.timeout, prefix="w")
                log(f"{variant.name}: wrk for {cfg.wrk_duration} s")
                figures[key] = run_wrk(variant, cfg.wrk_duration)
                log(f"{variant.name}: wrk {figures[key]['req_per_s']:.0f} req/s")
            finally:
                variant.stop()


def round_store(server, figures, cfg):
    """Round 2 on a fresh server: push latency, load time, scrapes and RSS as the store grows."""
    log(f"{server.name}: {cfg.probes} latency probes at 0 groups")
    figures["push_at_0"] = measure_push_latency(server, cfg.probes, cfg.timeout)
    log(f"{server.name}: loading {cfg.groups} groups with {cfg.load_threads} threads")
    figures["load"] = load_groups(server, cfg.groups, cfg.load_threads, cfg.timeout)
    log(f"{server.name}: loaded in {figures['load']['seconds']:.1f} s")
    figures["rss_after_load_kib"] = server.rss_kib()
    log(f"{server.name}: {cfg.probes} latency probes at {cfg.groups} groups")
    figures["push_at_g"] = measure_push_latency(server, cfg.probes, cfg.timeout)
    log(f"{server.name}: {cfg.scrapes} plain, gzip and protobuf scrapes each")
    figures["scrape"] = measure_scrapes(server, cfg.scrapes, cfg.timeout, gzip=False)
    figures["scrape_gzip"] = measure_scrapes(server, cfg.scrapes, cfg.timeout, gzip=True)
    figures["scrape_protobuf"] = measure_scrapes(server, cfg.scrapes, cfg.timeout, gzip=False,
                                                 protobuf=True)
    figures["rss_after_scrapes_kib"] = server.rss_kib()


CONCURRENCY = (1, 4, 32)
BIG_SERIES = 10000
SMALL_POSTS = 200
SMALL_POST_BODY = b"job_seen 1\n"  # one sample, 11 bytes


def big_group_body():
    """A group of BIG_SERIES series in one gauge family."""
    lines = ["# TYPE big_series gauge"]
    lines += [f'big_series{{shard="{i}"}} {i}' for i in range(BIG_SERIES)]
    return ("\n".join(lines) + "\n").encode()


def dir_bytes(path):
    """The summed size of the regular files in `path`."""
    return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())


def post_costs(server, tmp, timeout):
    """p50 of SMALL_POSTS one-sample POSTs into a big and a small group, and bytes per POST."""
    client = server.client(timeout)
    out = {}
    try:
        status = client.request("PUT", "/metrics/job/big", big_group_body(), PUSH_HEADERS)[0]
        if not is_2xx(status):
            raise RuntimeError(f"PUT of the {BIG_SERIES}-series group answered HTTP {status}")
        for name, path in (("big", "/metrics/job/big"), ("small", "/metrics/job/small")):
            client.request("POST", path, SMALL_POST_BODY, PUSH_HEADERS)
            before = dir_bytes(tmp)
            latencies, failures = [], 0
            for _ in range(SMALL_POSTS):
                status, _, _, elapsed = client.request("POST", path, SMALL_POST_BODY,
                                                       PUSH_HEADERS)
                latencies.append(elapsed * 1000)
                failures += not is_2xx(status)
            grown = dir_bytes(tmp) - before
            out[name] = {
                "p50_ms": statistics.median(latencies),
                "non_2xx": failures,
                "bytes_per_post": grown / SMALL_POSTS,
            }
    finally:
        client.close()
    return out


def round_modes(server, figures, cfg):
    """Round 4: throughput by concurrency and the cost of a small POST, per persistence mode."""
    for mode, template in server.modes.items():
        result = figures.setdefault("modes", {}).setdefault(mode, {})
        for conns in CONCURRENCY:
            with tempfile.TemporaryDirectory() as tmp:
                variant = Server(f"{server.name} ({mode}, {conns} conns)",
                                 template.replace("{interval}", "1s"))
                try:
                    variant.start(file=os.path.join(tmp, "pushgateway.data"))
                    load_groups(variant, WRK_GROUPS, cfg.load_threads, cfg.timeout, prefix="w")
                    wrk = run_wrk(variant, cfg.wrk_duration, conns)
                    result[f"wrk_c{conns}"] = wrk
                    log(f"{variant.name}: wrk {wrk['req_per_s']:.0f} req/s")
                finally:
                    variant.stop()
        with tempfile.TemporaryDirectory() as tmp:
            variant = Server(f"{server.name} ({mode}, POSTs)", template.replace("{interval}", "5m"))
            try:
                variant.start(file=os.path.join(tmp, "pushgateway.data"))
                result["posts"] = post_costs(variant, tmp, cfg.timeout)
                log(f"{variant.name}: {result['posts']}")
            finally:
                variant.stop()


RECOVERY_TIMEOUT_S = 300.0


def kill_and_time_restart(variant, file):
    """kill -9 the server, start it again on the same file; seconds until it is ready."""
    variant.proc.kill()
    variant.proc.wait()
    variant.stop()
    journal = sum(e.stat().st_size for e in os.scandir(os.path.dirname(file))
                  if ".journal." in e.name)
    started = time.perf_counter()
    variant.start(file=file, ready_timeout=RECOVERY_TIMEOUT_S)
    return {"seconds_to_ready": time.perf_counter() - started, "journal_bytes": journal}


def round_recovery(server, figures, cfg):
    """Round 5, durable mode: how long a restart after kill -9 takes to answer again.

    (a) a 10,000-series group and 200 one-sample POSTs into it; (b) G groups loaded,
    then every one PUT again; the file written every 5 minutes, so what the restart has
    to read is what the journal kept.
    """
    template = server.modes.get("durable")
    if template is None:
        return
    template = template.replace("{interval}", "5m")
    result = figures.setdefault("recovery", {})
    with tempfile.TemporaryDirectory() as tmp:
        file = os.path.join(tmp, "pushgateway.data")
        variant = Server(f"{server.name} (recovery, big group)", template)
        try:
            variant.start(file=file)
            client = variant.client(cfg.timeout)
            client.request("PUT", "/metrics/job/big", big_group_body(), PUSH_HEADERS)
            for _ in range(SMALL_POSTS):
                client.request("POST", "/metrics/job/big", SMALL_POST_BODY, PUSH_HEADERS)
            client.close()
            result["big_group"] = kill_and_time_restart(variant, file)
            log(f"{variant.name}: {result['big_group']}")
        finally:
            variant.stop()
    with tempfile.TemporaryDirectory() as tmp:
        file = os.path.join(tmp, "pushgateway.data")
        variant = Server(f"{server.name} (recovery, {cfg.groups} groups)", template)
        try:
            variant.start(file=file)
            load_groups(variant, cfg.groups, cfg.load_threads, cfg.timeout)
            load_groups(variant, cfg.groups, cfg.load_threads, cfg.timeout)
            result["groups"] = kill_and_time_restart(variant, file)
            log(f"{variant.name}: {result['groups']}")
        finally:
            variant.stop()


CALLGRIND_REQUESTS = 400
CALLGRIND_GROUPS = 1000
CALLGRIND_SCRAPES = 20


def callgrind_total(name, template, work):
    """Instructions a whole run of `template` under callgrind took, `work(server)` included."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        probe = Server(name, f"valgrind --tool=callgrind --callgrind-out-file={out} " + template)
        probe.start(file=os.path.join(tmp, "pushgateway.data"), ready_timeout=120)
        try:
            work(probe)
        finally:
            # Under valgrind the drain and the final write are slow: give them time.
            probe.stop(grace=120)
        for line in out.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in the callgrind output")


def round_instructions(server, figures, cfg):
    """Round 6: instructions per request under callgrind (our builds only)."""
    if server.name == "go" or shutil.which("valgrind") is None:
        return
    timeout = cfg.timeout
    n = CALLGRIND_REQUESTS

    def puts(prefix, same):
        def work(s):
            client = s.client(timeout)
            for i in range(n):
                key = "same" if same else f"{prefix}{i}"
                client.request("PUT", f"/metrics/job/cg/instance/{key}", push_body(i), PUSH_HEADERS)
            client.close()
        return work

    def big_group(posts):
        def work(s):
            client = s.client(timeout)
            body = "\n".join(f'big_series{{i="{i}"}} {i}' for i in range(2000)) + "\n"
            client.request("PUT", "/metrics/job/cg/instance/big", body.encode(), PUSH_HEADERS)
            for i in range(posts):
                client.request("POST", "/metrics/job/cg/instance/big",
                               f"big_post {i}\n".encode(), PUSH_HEADERS)
            client.close()
        return work

    def scrapes(count, headers):
        def work(s):
            load_groups(s, CALLGRIND_GROUPS, 1, timeout, prefix="cg")
            client = s.client(timeout)
            for _ in range(count):
                client.request("GET", "/metrics", headers=headers)
            client.close()
        return work

    durable = server.modes.get("durable", "").replace("{interval}", "5m")

    def cost(with_work, without_work, count, template=server.template):
        return (callgrind_total(server.name, template, with_work)
                - callgrind_total(server.name, template, without_work)) / count

    idle = lambda s: None  # noqa: E731
    figures["instructions"] = {
        "put_new": cost(puts("n", False), idle, n),
        "put_replace": cost(puts("r", True), idle, n),
        "post_big": cost(big_group(n), big_group(0), n),
        "durable_put": cost(puts("d", False), idle, n, durable) if durable else None,
        "durable_post_big": cost(big_group(n), big_group(0), n, durable) if durable else None,
        "scrape_text": cost(scrapes(CALLGRIND_SCRAPES, {}), scrapes(0, {}), CALLGRIND_SCRAPES),
        "scrape_gzip": cost(scrapes(CALLGRIND_SCRAPES, {"Accept-Encoding": "gzip"}),
                            scrapes(0, {}), CALLGRIND_SCRAPES),
        "scrape_protobuf": cost(scrapes(CALLGRIND_SCRAPES, {"Accept": PROTOBUF_ACCEPT}),
                                scrapes(0, {}), CALLGRIND_SCRAPES),
    }


def run_round(server, round_fn, figures, cfg):
    """Start `server` fresh, run one round into `figures`, and always stop it again.

    An error is recorded in figures["errors"] so the other servers still get measured.
    """
    try:
        if round_fn not in (round_persist_wrk, round_modes, round_recovery, round_instructions):
            server.start()
        round_fn(server, figures, cfg)
    except (OSError, RuntimeError, ValueError, http.client.HTTPException,
            subprocess.CalledProcessError) as exc:
        message = f"{round_fn.__name__}: {exc!r}"
        log(f"{server.name}: FAILED {message}")
        figures.setdefault("errors", []).append(message)
    finally:
        server.stop()


def gzip_figure(key):
    """Return a getter for a gzip scrape figure: None if not measured, "n/a" if not gzipped."""

    def get(figures):
        scrape = figures.get("scrape_gzip")
        if not scrape:
            return None
        return scrape[key] if scrape["content_encoding"] == "gzip" else "n/a"

    return get


def protobuf_figure(key):
    """Return a getter for a protobuf scrape figure: "n/a" if the answer was not protobuf."""

    def get(figures):
        scrape = figures.get("scrape_protobuf")
        if not scrape:
            return None
        return scrape[key] if "protobuf" in (scrape["content_type"] or "") else "n/a"

    return get


def path_getter(*keys):
    """Return a getter for a nested figure, None when any level is missing."""

    def get(figures):
        value = figures
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    return get


def table_rows(groups):
    """Return (label, getter, kind) rows; kind says how to compare and word the ratio.

    kinds: "time" and "size" (lower is better), "rate" (higher is better), "count" (no ratio).
    """
    g = f"{groups:,}"
    return [
        ("binary size, stripped (bytes)", path_getter("binary_stripped_bytes"), "size"),
        ("idle RSS (KiB)", path_getter("idle_rss_kib"), "size"),
        ("push p50 @ 0 groups (ms)", path_getter("push_at_0", "p50_ms"), "time"),
        ("push p99 @ 0 groups (ms)", path_getter("push_at_0", "p99_ms"), "time"),
        (f"load {g} groups (s)", path_getter("load", "seconds"), "time"),
        ("load failures", path_getter("load", "failed"), "count"),
        (f"push p50 @ {g} groups (ms)", path_getter("push_at_g", "p50_ms"), "time"),
        (f"push p99 @ {g} groups (ms)", path_getter("push_at_g", "p99_ms"), "time"),
        (f"scrape @ {g} groups (ms, median)", path_getter("scrape", "median_ms"), "time"),
        (f"scrape size @ {g} groups (bytes)", path_getter("scrape", "bytes"), "size"),
        (f"gzip scrape @ {g} groups (ms, median)", gzip_figure("median_ms"), "time"),
        (f"gzip scrape size @ {g} groups (bytes)", gzip_figure("bytes"), "size"),
        (f"protobuf scrape @ {g} groups (ms, median)", protobuf_figure("median_ms"), "time"),
        (f"protobuf scrape size @ {g} groups (bytes)", protobuf_figure("bytes"), "size"),
        (f"RSS @ {g} groups, after load (KiB)", path_getter("rss_after_load_kib"), "size"),
        (f"RSS @ {g} groups, after scrapes (KiB)", path_getter("rss_after_scrapes_kib"), "size"),
        (f"wrk PUT throughput, {WRK_GROUPS:,} groups (req/s)", path_getter("wrk", "req_per_s"), "rate"),
        ("wrk non-2xx responses", path_getter("wrk", "non_2xx"), "count"),
        ("wrk socket errors", path_getter("wrk", "socket_errors"), "count"),
        ("wrk PUT throughput, persistence every 1 s (req/s)",
         path_getter("wrk_persist", "req_per_s"), "rate"),
        ("wrk PUT throughput, durable: fsync before ack (req/s)",
         path_getter("wrk_durable", "req_per_s"), "rate"),
        ("wrk non-2xx responses with persistence",
         lambda f: sum(f[k]["non_2xx"] for k in ("wrk_persist", "wrk_durable") if k in f)
         if any(k in f for k in ("wrk_persist", "wrk_durable")) else None, "count"),
    ] + mode_rows(g)


MODE_NAMES = {"memory": "memory only", "interval": "file every 1 s", "durable": "durable"}


def mode_rows(g):
    """Rounds 4 and 5: throughput by concurrency, a small POST's costs, restart times."""
    rows = []
    for mode, label in MODE_NAMES.items():
        for conns in CONCURRENCY:
            rows.append((f"PUT req/s, {label}, {conns} conns",
                         path_getter("modes", mode, f"wrk_c{conns}", "req_per_s"), "rate"))
    for mode, label in MODE_NAMES.items():
        for group, what in (("big", f"{BIG_SERIES:,}-series group"), ("small", "1-series group")):
            rows.append((f"POST p50 into a {what}, {label} (ms)",
                         path_getter("modes", mode, "posts", group, "p50_ms"), "time"))
    for mode in ("interval", "durable"):
        for group, what in (("big", f"{BIG_SERIES:,}-series group"), ("small", "1-series group")):
            rows.append((f"bytes written per POST into a {what}, {MODE_NAMES[mode]}",
                         path_getter("modes", mode, "posts", group, "bytes_per_post"), "size"))
    rows.append(("restart after kill -9, 10,000-series group + 200 POSTs (s to ready)",
                 path_getter("recovery", "big_group", "seconds_to_ready"), "time"))
    rows.append(("  journal it replayed (bytes)",
                 path_getter("recovery", "big_group", "journal_bytes"), "size"))
    rows.append((f"restart after kill -9, {g} groups each PUT twice (s to ready)",
                 path_getter("recovery", "groups", "seconds_to_ready"), "time"))
    rows.append(("  journal it replayed (bytes)",
                 path_getter("recovery", "groups", "journal_bytes"), "size"))
    rows.append(("durable PUT req/s at 32 conns / memory only's",
                 lambda f: durable_share(f), "count"))
    for key, what in (("put_new", "PUT of a new group"), ("put_replace", "PUT replacing a group"),
                      ("post_big", "one-sample POST into a 2,000-series group"),
                      ("durable_put", "PUT of a new group, durable"),
                      ("durable_post_big", "one-sample POST into a 2,000-series group, durable"),
                      ("scrape_text", f"text scrape of {CALLGRIND_GROUPS:,} groups"),
                      ("scrape_gzip", f"gzip scrape of {CALLGRIND_GROUPS:,} groups"),
                      ("scrape_protobuf", f"protobuf scrape of {CALLGRIND_GROUPS:,} groups")):
        rows.append((f"instructions per {what}", path_getter("instructions", key), "size"))
    return rows


def durable_share(figures):
    """Durable throughput at 32 connections as a share of memory-only's, same server."""
    try:
        modes = figures["modes"]
        return "%.2f" % (modes["durable"]["wrk_c32"]["req_per_s"]
                         / modes["memory"]["wrk_c32"]["req_per_s"])
    except (KeyError, ZeroDivisionError, TypeError):
        return None


def format_value(value, kind):
    """Format one figure for the table; "-" means not measured."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if kind in ("count", "size") or value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def format_ratio(base, other, kind):
    """Word how `other` compares to `base`: e.g. '3.20x faster' or '1.50x larger'."""
    numbers = all(isinstance(v, (int, float)) and v > 0 for v in (base, other))
    if kind == "count" or not numbers:
        return ""
    better, worse = ("smaller", "larger") if kind == "size" else ("faster", "slower")
    ratio = other / base if kind == "rate" else base / other
    return f"{ratio:.2f}x {better}" if ratio >= 1 else f"{1 / ratio:.2f}x {worse}"


def render_table(results, names, groups):
    """Return the results as a text table with one column per server plus ratio columns.

    The first server is the baseline; each other server gets a column saying how it
    compares (base/other for times and sizes, other/base for throughput).
    """
    base = names[0]
    header = ["figure", *names, *[f"{n} vs {base}" for n in names[1:]]]
    lines = [header]
    for label, get, kind in table_rows(groups):
        values = [get(results[n]) for n in names]
        if all(v is None for v in values):
            continue  # a round that did not run
        ratios = [format_ratio(values[0], v, kind) for v in values[1:]]
        lines.append([label, *[format_value(v, kind) for v in values], *ratios])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = []
    for index, row in enumerate(lines):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        text.append("  ".join(cells).rstrip())
        if index == 0:
            text.append("  ".join("-" * w for w in widths))
    if len(names) > 1:
        text.append(f"ratios: {base}/other for times and sizes, other/{base} for throughput")
    return "\n".join(text)


def parse_args(argv):
    """Parse the command line; --quick fills in smaller defaults for unset options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Command templates must contain {port}; servers bind 127.0.0.1 only.",
    )
    parser.add_argument("--server", action="append", default=[], metavar="NAME='CMD'",
                        help="add or replace a server; CMD is a template with {port}")
    parser.add_argument("--only", "--servers", action="append", default=[], metavar="NAMES",
                        help="comma-separated servers to run (default: all), e.g. --only rust")
    parser.add_argument("--go-bin", default=DEFAULT_GO_BIN,
                        help="Go pushgateway for the default 'go' server "
                             "(env PUSHGATEWAY_GO_BIN; default %(default)s)")
    parser.add_argument("--rust-bin", default=DEFAULT_RUST_BIN,
                        help="Rust pushgateway for the default 'rust' server "
                             "(env PUSHGATEWAY_RUST_BIN; default target/release/pushgateway)")
    parser.add_argument("--before-bin", metavar="PATH",
                        help="also run this Rust build as server 'before' (e.g. the last release)")
    parser.add_argument("--rounds", default="idle,store,persist,modes,recovery,instructions",
                        help="comma-separated rounds to run (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="short run: G=1000, 3 s of wrk, 50 latency probes")
    parser.add_argument("--groups", type=int, help="G, the number of stored groups (default 10000)")
    parser.add_argument("--wrk-duration", type=int, help="seconds of wrk (default 10)")
    parser.add_argument("--probes", type=int, help="timed PUTs per latency figure (default 200)")
    parser.add_argument("--scrapes", type=int, default=10, help="GETs per scrape figure (default 10)")
    parser.add_argument("--load-threads", type=int, default=8,
                        help="concurrent connections loading G groups (default 8)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="per-request timeout in seconds (default 600)")
    parser.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    args = parser.parse_args(argv)
    quick_defaults = {"groups": 1000, "wrk_duration": 3, "probes": 50}
    full_defaults = {"groups": 10000, "wrk_duration": 10, "probes": 200}
    for key, value in (quick_defaults if args.quick else full_defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.groups < 1 or args.probes < 1 or args.scrapes < 1 or args.load_threads < 1:
        parser.error("--groups, --probes, --scrapes and --load-threads must be positive")
    return args


def select_servers(args):
    """Build the ordered server list from defaults, --server and --only; note skipped ones."""
    go = f"{shlex.quote(args.go_bin)} --web.listen-address=127.0.0.1:{{port}}"
    rust = f"{shlex.quote(args.rust_bin)} --web.listen-address=127.0.0.1:{{port}}"
    persist = " --persistence.file={file} --persistence.interval=1s"
    templates = {"go": f"{go} --persistence.file=", "rust": rust}
    rust_variants = {"wrk_persist": rust + persist,
                     "wrk_durable": rust + persist + " --persistence.sync=always"}
    variants = {"go": {"wrk_persist": go + persist}, "rust": rust_variants}
    every = " --persistence.file={file} --persistence.interval={interval}"
    modes = {
        "go": {"memory": f"{go} --persistence.file=", "interval": go + every},
        "rust": {"memory": rust, "interval": rust + every,
                 "durable": rust + every + " --persistence.sync=always"},
    }
    if args.before_bin:
        before = f"{shlex.quote(args.before_bin)} --web.listen-address=127.0.0.1:{{port}}"
        templates["before"] = before
        variants["before"] = {k: v.replace(rust, before) for k, v in rust_variants.items()}
        modes["before"] = {k: v.replace(rust, before) for k, v in modes["rust"].items()}
    custom = set()
    for spec in args.server:
        name, sep, template = spec.partition("=")
        custom.add(name)
        if not sep or "{port}" not in template:
            sys.exit(f"bench: --server needs NAME='CMD ... {{port}} ...', got {spec!r}")
        templates[name] = template
    wanted = [n for item in args.only for n in item.split(",") if n]
    unknown = [n for n in wanted if n not in templates]
    if unknown:
        sys.exit(f"bench: unknown server(s) {', '.join(unknown)}; known: {', '.join(templates)}")
    servers, notes = [], []
    for name, template in templates.items():
        if wanted and name not in wanted:
            continue
        server = Server(name, template, variants.get(name) if name not in custom else None,
                        modes.get(name) if name not in custom else None)
        if server.binary is None:
            notes.append(f"skipped {name}: {shlex.split(template)[0]} is not an executable "
                         f"(for rust, run `cargo build --release`)")
            continue
        servers.append(server)
    return servers, notes


def main(argv):
    """Run the rounds for every selected server, then print the table (and write JSON)."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench: the wrk binary is required")
    servers, notes = select_servers(args)
    for note in notes:
        log(note)
    if not servers:
        sys.exit("bench: no server to run")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    results = {}
    for server in servers:
        results[server.name] = {
            "command": server.template,
            "binary": server.binary,
            "binary_bytes": os.path.getsize(server.binary),
            "binary_stripped_bytes": stripped_size(server.binary),
        }
    interrupted = False
    try:
        rounds = {"idle": round_idle_wrk, "store": round_store, "persist": round_persist_wrk,
                  "modes": round_modes, "recovery": round_recovery,
                  "instructions": round_instructions}
        chosen = [rounds[r] for r in args.rounds.split(",") if r in rounds]
        for round_fn in chosen:
            for server in servers:
                log(f"{server.name}: {round_fn.__name__}")
                run_round(server, round_fn, results[server.name], args)
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted: figures are partial")
        log("interrupted; servers stopped")

    names = [s.name for s in servers]
    print(f"Pushgateway benchmark: G={args.groups:,} groups, {os.cpu_count()} CPUs, "
          f"wrk {WRK_THREADS} threads x {WRK_CONNECTIONS} connections for {args.wrk_duration} s")
    print(render_table(results, names, args.groups))
    for name in names:
        for error in results[name].get("errors", []):
            print(f"error ({name}): {error}")
    for note in notes:
        print(f"note: {note}")
    if args.json:
        report = {
            "config": {k: v for k, v in vars(args).items() if k not in ("server", "only", "json")},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "servers": results,
            "notes": notes,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
