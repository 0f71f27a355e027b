#!/usr/bin/env python3
"""Is the hand-built plumbing still worth its code? One server binary built with the feature
`library-plumbing`, started once per variant with CANDIDATES_LIBRARY_PLUMBING naming the parts
swapped for the library's, all in one run and pinned like bench/pinned.py (server on core 1, wrk -t1
-c64 on core 0), the variants alternating within each rep:

    ours        every hand-built part (what ships)
    formatter   tracing-subscriber's formatter for the access lines (telemetry/access.rs)
    writer      tracing-subscriber's writer, std::io::stdout: a write per line (telemetry/buffered.rs)
    appender    tracing-appender's non_blocking stdout writer (telemetry/buffered.rs)
    edge        one axum from_fn layer per step of the REST edge (gateway/src/layers.rs)
    library     formatter, writer and edge together

Rows: GET /gtg and GET /candidate/{name} on the embedded store, logging JSON at info to a file (the
systemd unit's format). Prints each variant's median req/s and its ratio to `ours`: a part whose
ratio is near 1.00 has lost its reason to exist.

    python3 bench/plumbing.py [--duration 10] [--reps 3] [--no-build] [--variants ours,edge,...]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port  # noqa: E402
from soak import wait_ready  # noqa: E402
from pinned import need, wrk, SERVER_CPU  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {
    "ours": "",
    "formatter": "formatter",
    "writer": "writer",
    "appender": "appender",
    "edge": "edge",
    "library": "formatter,writer,edge",
}


class Server:
    def __init__(self, binary, tmp, name, parts):
        self.http, grpc = free_port(), free_port()
        data = tempfile.mkdtemp(dir=tmp)
        # The lines go to a file, as in bench/pinned.py; journald's pipe would cost each variant more.
        self.log = open(os.path.join(tmp, f"server-{name}.log"), "w")
        env = dict(os.environ, CANDIDATES_LIBRARY_PLUMBING=parts, CANDIDATES_LOG_FORMAT="json")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, binary, "--http-addr", f"127.0.0.1:{self.http}",
             "--grpc-addr", f"127.0.0.1:{grpc}", "--data-dir", data, "--log", "info", "--drain-period", "0s"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_ready(self.http)
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "POST", f"http://127.0.0.1:{self.http}/candidate/bench"],
                       check=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def build(tmp):
    """The feature build, copied out so that the default release binary is not replaced by it."""
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "candidates-server", "--bin", "candidate-server",
                    "--features", "library-plumbing"], cwd=ROOT, check=True)
    binary = os.path.join(tmp, "candidate-server-plumbing")
    shutil.copy(os.path.join(ROOT, "target", "release", "candidate-server"), binary)
    return binary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--no-build", action="store_true",
                    help="use target/release/candidate-server as it is (it must have been built with the feature)")
    args = ap.parse_args()
    if os.cpu_count() < 2:
        raise SystemExit("the pinned protocol needs two CPUs")
    need("wrk", "wrk")
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    tmp = tempfile.mkdtemp(prefix="plumbing-")
    binary = os.path.join(ROOT, "target", "release", "candidate-server") if args.no_build else build(tmp)
    servers = {}
    try:
        for name in names:
            servers[name] = Server(binary, tmp, name, VARIANTS[name])
        rows = [("gtg", "/gtg"), ("get", "/candidate/bench")]
        runs = {(n, r): [] for n in names for r, _ in rows}
        for rep in range(args.reps):
            order = names if rep % 2 == 0 else list(reversed(names))
            for row, path in rows:
                for name in order:
                    rate = wrk(f"http://127.0.0.1:{servers[name].http}{path}", args.duration)
                    runs[(name, row)].append(rate)
                    print(f"rep {rep + 1}: {row} {name:<10} {rate:>9.0f} req/s", flush=True)
        med = {k: statistics.median(v) for k, v in runs.items()}
        print()
        print(f"| variant (medians of {args.reps}) | /gtg req/s | vs ours | GET req/s | vs ours |")
        print("|---|---:|---:|---:|---:|")
        base = "ours" if "ours" in names else names[0]
        for name in names:
            g, c = med[(name, "gtg")], med[(name, "get")]
            print(f"| {name} | {g:.0f} | {g / med[(base, 'gtg')]:.2f}x | {c:.0f} | {c / med[(base, 'get')]:.2f}x |")
    finally:
        for server in servers.values():
            if server.proc.poll() is None:
                server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
