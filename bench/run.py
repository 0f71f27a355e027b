#!/usr/bin/env python3
"""The benchmark: one run, one table of figures and ratios. Not a test: it prints, it asserts nothing.

Builds the release binaries, starts `candidate-server` on the embedded store (fresh data directory,
127.0.0.1 only) and measures, with `candidatectl load` (closed loop, median of --reps runs):
  REST GET /candidate/{name}, REST GET /gtg, gRPC GetCandidate, each at 1/16/64 connections,
  next to a minimal hyper "200 OK" server (clients/examples/ceiling.rs) as the machine's ceiling;
plus start-to-first-/gtg-200, idle RSS, RSS under load, and RSS growth while streaming /candidates
with --stored candidates (default 100k). With `wrk` installed (apt-get install wrk) it also checks
once that candidatectl's throughput agrees with wrk's on the same endpoint.

    python3 bench/run.py [--duration 5] [--reps 3] [--stored 100000] [--no-build]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port, one_run, rss_kib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
SERVER = os.path.join(REL, "candidate-server")
CTL = os.path.join(REL, "candidatectl")
CEILING = os.path.join(REL, "examples", "ceiling")


def wait_http(port, path="/gtg", timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(32).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"nothing answered 200 on :{port}{path}")


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every 10 ms; keeps the maximum."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.max, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.max = max(self.max, rss_kib(self.pid) or 0)
            except OSError:
                return
            time.sleep(0.01)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join()


def load(target, *args, rest=False):
    cmd = [CTL, "--target", target, "--json"] + (["--rest"] if rest else []) + ["load", "--quiet", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def median_run(reps, target, args, rest):
    runs = [load(target, *args, rest=rest) for _ in range(reps)]
    runs.sort(key=lambda r: r["throughput_rps"])
    med = runs[len(runs) // 2]
    errors = sum(sum(r["errors"].values()) for r in runs)
    return med, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    ap.add_argument("--reps", type=int, default=3, help="runs per cell; the median is reported")
    ap.add_argument("--stored", type=int, default=100_000, help="candidates stored for the streaming test")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "candidates-server", "-p", "candidates-clients",
                        "--bin", "candidate-server", "--bin", "candidatectl", "--example", "ceiling"],
                       cwd=ROOT, check=True)

    startup = [one_run(SERVER) for _ in range(11)]
    ready_ms = statistics.median(r[0] for r in startup)
    idle_rss = statistics.median(r[1] for r in startup) / 1024

    data = tempfile.mkdtemp(prefix="candidates-bench-")
    http, grpc = free_port(), free_port()
    server = subprocess.Popen([SERVER, "--http-addr", f"127.0.0.1:{http}", "--grpc-addr", f"127.0.0.1:{grpc}",
                               "--data-dir", data, "--drain-period", "0s", "--log", "warn",
                               "--max-concurrency", "100000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ceiling_port = free_port()
    ceiling = subprocess.Popen([CEILING, f"127.0.0.1:{ceiling_port}"], stdout=subprocess.DEVNULL)
    rows = []
    try:
        wait_http(http)
        wait_http(ceiling_port, "/")
        rest, grpc_t, ceil = f"http://127.0.0.1:{http}", f"http://127.0.0.1:{grpc}", f"http://127.0.0.1:{ceiling_port}"
        load(grpc_t, "--populate", "--keys", "1000", "-n", "1", "--mix", "gtg=1")
        dur = f"{args.duration}s"
        rss_under_load = 0
        scenarios = [
            ("hyper 200 OK (ceiling)", ceil, True, ["--mix", "gtg=1"]),
            ("REST GET /gtg", rest, True, ["--mix", "gtg=1"]),
            ("REST GET /candidate/{name}", rest, True, ["--mix", "get=1", "--keys", "1000"]),
            ("gRPC GetCandidate", grpc_t, False, ["--mix", "get=1", "--keys", "1000"]),
        ]
        results = {}
        for conns in (1, 16, 64):
            for name, target, is_rest, extra in scenarios:
                with RssSampler(server.pid) as rss:
                    med, errors = median_run(args.reps, target, ["-c", str(conns), "-d", dur, *extra], is_rest)
                if target != ceil:
                    rss_under_load = max(rss_under_load, rss.max)
                results[(name, conns)] = (med, errors)
        for name, *_ in scenarios:
            for conns in (1, 16, 64):
                med, errors = results[(name, conns)]
                ceiling_rps = results[("hyper 200 OK (ceiling)", conns)][0]["throughput_rps"]
                lat = med["latency_ms"]
                rows.append((name, conns, med["throughput_rps"], med["throughput_rps"] / ceiling_rps,
                             lat["p50"], lat["p99"], errors))

        wrk_line = None
        if shutil.which("wrk"):
            # Alternate the two tools, --reps times each, and compare medians: the machine is noisy.
            wrk_runs, our_runs = [], []
            for _ in range(args.reps):
                wrk = subprocess.run(["wrk", "-t2", "-c16", f"-d{int(args.duration)}s", f"{rest}/gtg"],
                                     check=True, capture_output=True, text=True).stdout
                wrk_runs.append(float(next(l for l in wrk.splitlines() if l.startswith("Requests/sec")).split()[1]))
                our_runs.append(load(rest, "-c", "16", "-d", dur, "--mix", "gtg=1", rest=True)["throughput_rps"])
            wrk_line = (statistics.median(wrk_runs), statistics.median(our_runs))

        # Streaming: fill the store, then read GET /candidates while sampling the server's RSS.
        load(grpc_t, "--populate", "--keys", str(args.stored), "-n", "1", "--mix", "gtg=1")
        time.sleep(1)
        before = rss_kib(server.pid)
        with RssSampler(server.pid) as rss:
            started = time.perf_counter()
            with socket.create_connection(("127.0.0.1", http)) as s:
                s.sendall(b"GET /candidates HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                size = 0
                while chunk := s.recv(65536):
                    size += len(chunk)
            stream_s = time.perf_counter() - started
        growth = (rss.max - before) / 1024
    finally:
        for p in (server, ceiling):
            p.terminate()
            p.wait(timeout=20)
        shutil.rmtree(data, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"\nmachine: {os.cpu_count()} cores ({cpu}), load generator and server on the same machine; "
          f"closed loop, {args.duration:g} s per run, median of {args.reps}\n")
    print(f"| {'scenario':<28} | conns | {'req/s':>9} | vs ceiling | p50 ms | p99 ms | errors |")
    print(f"|{'-' * 30}|-------|{'-' * 11}|------------|--------|--------|--------|")
    for name, conns, rps, ratio, p50, p99, errors in rows:
        print(f"| {name:<28} | {conns:>5} | {rps:>9.0f} | {ratio:>9.2f}x | {p50:>6.3f} | {p99:>6.3f} | {errors:>6} |")
    print()
    print(f"| {'figure':<44} | {'value':>20} |")
    print(f"|{'-' * 46}|{'-' * 22}|")
    print(f"| {'start to first /gtg 200 (median of 11)':<44} | {ready_ms:>17.2f} ms |")
    print(f"| {'idle RSS (median of 11)':<44} | {idle_rss:>16.2f} MiB |")
    print(f"| {'peak RSS under load (all runs above)':<44} | {rss_under_load / 1024:>16.2f} MiB |")
    print(f"| {f'GET /candidates with {args.stored} stored: bytes':<44} | {size:>20} |")
    print(f"| {'  ... time to stream all':<44} | {stream_s * 1000:>17.0f} ms |")
    print(f"| {'  ... RSS growth while streaming':<44} | {growth:>16.2f} MiB |")
    if wrk_line:
        wrk_rps, ours = wrk_line
        print(f"| {'wrk -c16 /gtg vs candidatectl -c16 /gtg (med)':<44} | {wrk_rps:>6.0f} vs {ours:>6.0f} ({ours / wrk_rps:.2f}x) |")
    else:
        print("(wrk not installed: apt-get install wrk to compare the load generator with it)")


if __name__ == "__main__":
    main()
