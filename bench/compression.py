#!/usr/bin/env python3
"""What negotiated compression costs and saves, in one run (server pinned on core 1, clients on
core 0, like bench/pinned.py):

  listing   GET /candidates (the streamed listing) of --names names, plain, gzip and zstd: bytes on
            the wire and time to the last byte (curl, no decoding), medians of --reps; and the
            gRPC listing (every page, `candidatectl list`, decoding included) per encoding.
  single    wrk -t1 -c64: GET /candidate/{name} (a small answer: never compressed) and a page of
            100 names (about 3 KiB: compressed when asked), with and without Accept-Encoding,
            against a server started with --compression false: what the layer and the
            compression cost per request, as ratios to that server in the same run.

The names live in the memory store (`--store memory`): populating 95k names in the embedded store
costs a durable commit each, and what is measured here is the edge, not the store.

    python3 bench/compression.py [--names 95000] [--reps 5] [--duration 8] [--no-build]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port  # noqa: E402
from soak import wait_ready  # noqa: E402
from pinned import need, SERVER, CTL, SERVER_CPU, LOAD_CPU  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODINGS = ["identity", "gzip", "zstd"]


class Server:
    def __init__(self, tmp, name, args):
        self.http, self.grpc = free_port(), free_port()
        self.log = open(os.path.join(tmp, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, SERVER, "--http-addr", f"127.0.0.1:{self.http}", "--grpc-addr",
             f"127.0.0.1:{self.grpc}", "--store", "memory", "--log", "warn", *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_ready(self.http)

    def url(self, path):
        return f"http://127.0.0.1:{self.http}{path}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def populate(server, names):
    subprocess.run([CTL, "--target", f"http://127.0.0.1:{server.grpc}", "load", "-n", "1", "--populate",
                    "--keys", str(names), "--mix", "get=1", "--quiet"], check=True, stdout=subprocess.DEVNULL)


def curl(url, encoding):
    cmd = ["taskset", "-c", LOAD_CPU, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}"]
    if encoding != "identity":
        cmd += ["-H", f"Accept-Encoding: {encoding}"]
    code, size, seconds = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout.split()
    assert code == "200", code
    return int(size), float(seconds)


def grpc_listing(server, encoding, names):
    started = time.perf_counter()
    out = subprocess.run(["taskset", "-c", LOAD_CPU, CTL, "--target", f"http://127.0.0.1:{server.grpc}", "--json",
                          "--compression", "none" if encoding == "identity" else encoding, "list"],
                         capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    assert out.count('"') >= 2 * names, "short listing"
    return elapsed


def wrk(url, duration, encoding=None):
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c64", f"-d{duration}s", url]
    if encoding:
        cmd[4:4] = ["-H", f"Accept-Encoding: {encoding}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--names", type=int, default=95000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    need("wrk", "wrk")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "candidate-server", "--bin", "candidatectl"],
                       cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="compression-bench-")
    on = Server(tmp, "on", [])
    off = Server(tmp, "off", ["--compression", "false"])
    try:
        populate(on, args.names)
        populate(off, 100)

        print(f"GET /candidates, {args.names} names (medians of {args.reps})")
        sizes, times, grpc = {}, {e: [] for e in ENCODINGS}, {e: [] for e in ENCODINGS}
        for rep in range(args.reps):
            for encoding in ENCODINGS if rep % 2 == 0 else reversed(ENCODINGS):
                size, seconds = curl(on.url("/candidates"), encoding)
                sizes[encoding] = size
                times[encoding].append(seconds)
                grpc[encoding].append(grpc_listing(on, encoding, args.names))
        print("\n| listing | REST bytes | vs plain | REST time (ms) | vs plain | gRPC all pages (ms) | vs plain |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for e in ENCODINGS:
            t, g = statistics.median(times[e]), statistics.median(grpc[e])
            t0, g0 = statistics.median(times["identity"]), statistics.median(grpc["identity"])
            print(f"| {e} | {sizes[e]:,} | {sizes[e] / sizes['identity']:.3f} | {t * 1e3:.1f} | {t / t0:.2f}x "
                  f"| {g * 1e3:.0f} | {g / g0:.2f}x |")

        name = "/candidate/load-000000"  # the load generator's first key
        variants = [
            ("GET one, off", off, name, None),
            ("GET one, plain", on, name, None),
            ("GET one, gzip asked", on, name, "gzip"),
            ("page of 100, off", off, "/candidates?page_size=100", None),
            ("page of 100, plain", on, "/candidates?page_size=100", None),
            ("page of 100, gzip", on, "/candidates?page_size=100", "gzip"),
            ("page of 100, zstd", on, "/candidates?page_size=100", "zstd"),
        ]
        rates = {v[0]: [] for v in variants}
        for rep in range(max(1, args.reps // 2)):
            for label, server, path, encoding in variants if rep % 2 == 0 else reversed(variants):
                rates[label].append(wrk(server.url(path), args.duration, encoding))
        print(f"\n| wrk -t1 -c64, {args.duration}s (medians) | req/s | vs off |")
        print("|---|---:|---:|")
        for label, _, path, _ in variants:
            base = statistics.median(rates[("GET one, off" if "GET" in label else "page of 100, off")])
            rate = statistics.median(rates[label])
            print(f"| {label} | {rate:,.0f} | {rate / base:.2f}x |")
    finally:
        on.stop()
        off.stop()


if __name__ == "__main__":
    main()
