#!/usr/bin/env python3
"""Start-to-first-/gtg-200 time and idle RSS of the release binary, on the embedded store.

Starts `candidate-server` N times on free ports with a fresh data directory, polls GET /gtg over a
raw socket until the first 200, and reads VmRSS from /proc after the server has idled for 1 s.
Prints each run and the medians. Talks to 127.0.0.1 only.

    cargo build --release --locked -p candidates-server
    python3 bench/startup.py [--runs 11] [--binary target/release/candidate-server]
"""
import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gtg_status(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /gtg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return int(s.recv(64).split(b" ")[1])
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def one_run(binary):
    http, grpc = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [binary, "--http-addr", f"127.0.0.1:{http}", "--grpc-addr", f"127.0.0.1:{grpc}",
             "--data-dir", data, "--drain-period", "0s", "--log", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while gtg_status(http) != 200:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited with {proc.returncode}")
                if time.perf_counter() - started > 10:
                    raise SystemExit("no /gtg 200 within 10 s")
                time.sleep(0.0005)
            ready_ms = (time.perf_counter() - started) * 1000
            time.sleep(1.0)
            rss = rss_kib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return ready_ms, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--binary", default="target/release/candidate-server")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary} not found: cargo build --release --locked -p candidates-server")
    readies, rsses = [], []
    for i in range(args.runs):
        ready_ms, rss = one_run(args.binary)
        readies.append(ready_ms)
        rsses.append(rss)
        print(f"run {i + 1:2}: start-to-first-/gtg-200 {ready_ms:7.2f} ms   idle RSS {rss / 1024:6.2f} MiB")
    print(f"median over {args.runs} runs: start-to-first-/gtg-200 {statistics.median(readies):.2f} ms, "
          f"idle RSS {statistics.median(rsses) / 1024:.2f} MiB (binary {os.path.getsize(args.binary) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
