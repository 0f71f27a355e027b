#!/usr/bin/env python3
"""What traces cost: GET /candidate/{name} on the embedded store, pinned like bench/pinned.py
(server on core 1, wrk -t1 -c64 on core 0), JSON access lines at info to a file (they carry
`trace_id` when traces are on), variants alternating in one run:

    off         no --otlp-endpoint (the default)
    1%          --otlp-endpoint to an OTLP/HTTP receiver, --trace-sample-ratio 0.01
    100%        the same at --trace-sample-ratio 1: three spans a request exported
    before      (with --baseline REV) the binary built from REV, from before traces: what "off"
                costs, if anything

The receiver is this script (a Python OTLP/HTTP server that reads each POST /v1/traces and
answers an empty ExportTraceServiceResponse), on core 0 with wrk. Prints each variant's median
req/s, its ratio to `off` (of the medians, and the median of each rep's own ratio), and the spans
each traced server exported and dropped (its /metrics).

    python3 bench/tracing.py [--duration 10] [--reps 3] [--baseline REV | --before-binary PATH] [--no-build]

(--baseline builds REV in a worktree, into target/bench-baseline: the first time, every dependency.)

Needs wrk (installed with apt-get when missing) and two CPUs.
"""
import argparse
import http.server
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port  # noqa: E402
from soak import wait_ready  # noqa: E402
from pinned import need, SERVER, LOAD_CPU, SERVER_CPU, wrk  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Receiver:
    """An OTLP/HTTP receiver that counts the bytes it is sent and keeps nothing."""

    def __init__(self):
        self.port = free_port()
        self.requests = 0
        self.bytes = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests += 1
                receiver.bytes += len(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


class Server:
    def __init__(self, binary, tmp, name, args):
        self.http = free_port()
        self.log = open(os.path.join(tmp, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, binary, "--http-addr", f"127.0.0.1:{self.http}", "--grpc-addr",
             f"127.0.0.1:{free_port()}", "--data-dir", tempfile.mkdtemp(dir=tmp), "--log", "info", "--log-format",
             "json", "--drain-period", "0s", *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_ready(self.http)
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "POST", f"http://127.0.0.1:{self.http}/candidate/bench"],
                       check=True)

    def counter(self, name):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics").read().decode()
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def baseline_binary(rev, tmp):
    """candidate-server built from `rev`, in a worktree with a target directory of its own
    (target/bench-baseline, kept for the next run). Not this tree's: cargo names a workspace
    crate's artifacts by its path inside the workspace, so the other tree's would pass for this
    one's."""
    tree = os.path.join(tmp, "baseline")
    subprocess.run(["git", "worktree", "add", "--detach", tree, rev], cwd=ROOT, check=True)
    try:
        target = os.path.join(ROOT, "target", "bench-baseline")
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "candidate-server"], cwd=tree, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": target})
        binary = os.path.join(tmp, "candidate-server-baseline")
        subprocess.run(["cp", os.path.join(target, "release", "candidate-server"), binary], check=True)
        return binary
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--baseline", metavar="REV", help="also measure candidate-server built from this commit")
    ap.add_argument("--before-binary", metavar="PATH", help="the same, with a binary already built")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    need("wrk", "wrk")
    tmp = tempfile.mkdtemp(prefix="tracing-bench-")
    before = baseline_binary(args.baseline, tmp) if args.baseline else args.before_binary
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "candidate-server"], cwd=ROOT, check=True)
    # The receiver's threads share the load generator's core, never the server's.
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    receiver = Receiver()
    otlp = ["--otlp-endpoint", f"http://127.0.0.1:{receiver.port}", "--otlp-protocol", "http"]
    servers = {
        "off": Server(SERVER, tmp, "off", []),
        "1%": Server(SERVER, tmp, "1pc", [*otlp, "--trace-sample-ratio", "0.01"]),
        "100%": Server(SERVER, tmp, "100pc", [*otlp, "--trace-sample-ratio", "1"]),
    }
    if before:
        servers["before"] = Server(before, tmp, "before", [])
    try:
        runs = {name: [] for name in servers}
        for rep in range(args.reps):
            order = list(servers) if rep % 2 == 0 else list(reversed(servers))
            for name in order:
                rate = wrk(f"http://127.0.0.1:{servers[name].http}/candidate/bench", args.duration)
                runs[name].append(rate)
                print(f"rep {rep + 1}: {name:<7} {rate:>9.0f} req/s", flush=True)
        med = {k: statistics.median(v) for k, v in runs.items()}
        # Each rep runs the variants back to back: the median of the reps' own ratios is less
        # swayed by the machine's load changing between reps than the ratio of the medians.
        paired = {k: statistics.median(r / o for r, o in zip(v, runs["off"])) for k, v in runs.items()}
        print(f"\n| variant (medians of {args.reps}, GET /candidate/{{name}}) | req/s | vs off | vs off, paired | "
              "spans exported | spans dropped |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, server in servers.items():
            exported = server.counter("trace_spans_exported_total")
            dropped = server.counter("trace_spans_dropped_total")
            print(f"| {name} | {med[name]:.0f} | {med[name] / med['off']:.2f}x | {paired[name]:.2f}x | {exported:.0f} "
                  f"| {dropped:.0f} |")
        print(f"\nreceiver: {receiver.requests} export requests, {receiver.bytes / 1e6:.1f} MB")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
