#!/usr/bin/env python3
"""Many connections at once (issue 29): /gtg's p99 and the server's memory per idle connection.

1. Memory per idle connection, ours and bare hyper's (a fresh server each): open --idle keep-alive TCP connections to the REST port, each
   having sent one `GET /gtg` and read its answer (so hyper holds a live connection, not a
   half-open socket), then read the server's RSS; the growth over the RSS before, divided by the
   count. HTTP/1 and HTTP/2 (prior knowledge, one preface + SETTINGS exchange) separately.
2. A load balancer's view: while those --idle HTTP/1 connections stay open, `wrk -c8 --latency`
   on /gtg (a few health checkers and clients): p50/p99.
3. `wrk -t1 -c<--http1-conns> --latency` on /gtg: that many keep-alive connections, all busy
   (closed loop, so latency is about connections / throughput by Little's law: 10,000 busy
   connections on one core cannot see 10 ms).
4. `h2load -c<--h2-conns> -m<--streams>` on /gtg over h2c, every request's latency from
   `--log-file`: at --h2-rps requests a second per connection (an open load below capacity), and
   closed loop (all streams busy, Little's law again).

The server pinned to CPU 1, the load to CPU 0, `--store memory`, default logging, a connection cap
above the test's. Needs wrk, h2load, taskset and a file descriptor limit above the counts
(`ulimit -n`). Talks to 127.0.0.1 only; bounded in connections and time.

    (ulimit -n 20000; python3 bench/connections.py [--idle 10000] [--http1-conns 10000] [--h2-conns 1000]
                      [--streams 100] [--h2-rps 20] [--duration 10])
"""
import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.pool import ThreadPool

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port, rss_kib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "candidate-server")
FLOOR = os.path.join(ROOT, "target", "release", "examples", "http_floor")
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def wait_ready(port):
    end = time.monotonic() + 15
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /gtg HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("the server did not answer /gtg")


def idle_connections(port, count, http2):
    """`count` live connections, each past its first exchange; returned open."""
    conns = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if http2:
            s.sendall(H2_PREFACE + EMPTY_SETTINGS)
            s.recv(4096)  # the server's SETTINGS (and maybe its ACK)
        else:
            s.sendall(b"GET /gtg HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)
        conns.append(s)
    return conns


def memory_per_connection(pid, port, count, http2):
    time.sleep(1.0)
    before = rss_kib(pid)
    conns = idle_connections(port, count, http2)
    time.sleep(2.0)
    after = rss_kib(pid)
    for s in conns:
        s.close()
    return before / 1024, after / 1024, (after - before) * 1024 / count


def wrk_latency(port, conns, duration):
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
                          f"http://127.0.0.1:{port}/gtg"], capture_output=True, text=True,
                         timeout=duration + 120).stdout
    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Socket errors:.*", out)
    return rate, pct(50), pct(99), errors.group(0) if errors else "no socket errors"


def h2load_latency(port, conns, streams, duration, rps, tmp):
    """`rps` requests a second per connection, or None: as fast as the streams allow."""
    log = os.path.join(tmp, "h2load.log")
    rate_args = [f"--rps={rps}"] if rps else []
    out = subprocess.run(["taskset", "-c", "0", "h2load", f"-c{conns}", f"-m{streams}", f"-D{duration}",
                          *rate_args, f"--log-file={log}", f"http://127.0.0.1:{port}/gtg"],
                         capture_output=True, text=True, timeout=duration + 300).stdout
    if not re.search(r"requests: .* (\d+) succeeded, 0 failed, 0 errored, 0 timeout", out):
        raise SystemExit(f"h2load failures:\n{out}")
    # Each line: start (us since epoch), status, duration (us).
    durations = sorted(int(line.split()[2]) / 1000 for line in open(log) if line.strip())
    rate = float(re.search(r"finished in [^,]*, ([\d.]+) req/s", out).group(1))
    q = statistics.quantiles(durations, n=100)
    return rate, q[49], q[98]


class Server:
    """Ours (`--store memory`, default logging, a connection cap above the test's) or the bare hyper
    floor (server/examples/http_floor.rs), pinned to CPU 1, fresh for each measurement so that one
    measurement's freed memory does not flatter the next."""

    def __init__(self, kind, tmp, cap):
        self.port, grpc = free_port(), free_port()
        if kind == "ours":
            env = dict(os.environ, CANDIDATES_STORE="memory", CANDIDATES_DATA_DIR=tempfile.mkdtemp(dir=tmp),
                       CANDIDATES_DRAIN_PERIOD="0s", CANDIDATES_HTTP_ADDR=f"127.0.0.1:{self.port}",
                       CANDIDATES_GRPC_ADDR=f"127.0.0.1:{grpc}", CANDIDATES_MAX_CONNECTIONS=str(cap))
            command = [SERVER]
        else:
            env, command = dict(os.environ), [FLOOR, f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(["taskset", "-c", "1", *command], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.proc.terminate()
        self.proc.wait(15)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--idle", type=int, default=10_000)
    p.add_argument("--http1-conns", type=int, default=10_000)
    p.add_argument("--h2-conns", type=int, default=1_000)
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--h2-rps", type=int, default=20, help="requests a second per h2 connection (open load)")
    p.add_argument("--duration", type=int, default=10)
    a = p.parse_args()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(a.idle, a.http1_conns, a.h2_conns) + 500
    if soft < need or not 3 <= a.duration <= 120 or a.streams > 200:
        raise SystemExit(f"needs ulimit -n >= {need} (have {soft}), --duration 3..120, --streams <= 200")
    cap = need + 1000
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("ours", "hyper-floor"):
            for http2 in (False, True):
                with Server(kind, tmp, cap) as server:
                    before, after, per = memory_per_connection(server.proc.pid, server.port, a.idle, http2)
                name = "HTTP/2" if http2 else "HTTP/1.1"
                print(f"{kind}: {a.idle} idle {name} connections: RSS {before:.1f} -> {after:.1f} MiB, "
                      f"{per / 1024:.1f} KiB per connection", flush=True)
        with Server("ours", tmp, cap) as server:
            port = server.port
            held = idle_connections(port, a.idle, False)
            rate, p50, p99, errors = wrk_latency(port, 8, a.duration)
            print(f"/gtg with {a.idle} idle keep-alive connections held open, 8 busy (wrk): {rate:,.0f} req/s, "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, {errors}", flush=True)
            for c in held:
                c.close()
            rate, p50, p99, errors = wrk_latency(port, a.http1_conns, a.duration)
            print(f"/gtg, {a.http1_conns} HTTP/1.1 keep-alive connections all busy (wrk): {rate:,.0f} req/s, "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, {errors}; Little's law: {a.http1_conns / rate * 1000:.0f} ms",
                  flush=True)
            # The open load in the background, and what a load balancer's health checker sees
            # meanwhile: one more connection probing /gtg.
            background = ThreadPool(1).apply_async(h2load_latency, (port, a.h2_conns, a.streams, a.duration, a.h2_rps,
                                                                   tmp))
            time.sleep(1)
            rate_probe, p50_probe, p99_probe, _ = wrk_latency(port, 1, a.duration - 2)
            rate, p50, p99 = background.get()
            print(f"/gtg, {a.h2_conns} h2 connections x {a.streams} streams, {a.h2_rps} req/s each "
                  f"({a.h2_conns * a.h2_rps:,} offered) (h2load): {rate:,.0f} req/s, p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms; meanwhile one probing connection (wrk -c1): {rate_probe:,.0f} req/s, "
                  f"p50 {p50_probe:.2f} ms, p99 {p99_probe:.2f} ms", flush=True)
            rate, p50, p99 = h2load_latency(port, a.h2_conns, a.streams, a.duration, None, tmp)
            print(f"/gtg, {a.h2_conns} h2 connections x {a.streams} streams all busy (h2load): {rate:,.0f} req/s, "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; Little's law: "
                  f"{a.h2_conns * a.streams / rate * 1000:.0f} ms", flush=True)
            print(f"server RSS at the end: {rss_kib(server.proc.pid) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
