#!/usr/bin/env python3
"""Soak benchmark: mixed REST load at 256 connections plus a crowd of slow and hostile clients, for
--minutes (default 10), against the release binary on the embedded store (127.0.0.1 only).

Prints, per minute: requests/s, non-2xx responses, socket errors, p50/p99 (from wrk, one run per
minute), RSS and open file descriptors of the server, and what the slow clients ran into; then the
slopes of RSS and fds over the second half (a leak shows as a steady positive slope) and a verdict
line. Not a test: it prints figures, it asserts nothing.

The slow-client mix (--slow, default 60 at a time), each reconnecting when cut:
  - slowloris: a request head sent one byte a second (cut by --header-read-timeout);
  - stalled upload: a POST that declares 100 bytes and sends 10 (cut by --body-timeout: 408);
  - idle: a connection that sends nothing (cut by the header-read timeout);
  - slow reader: GET /candidates read 64 bytes a second (given up on by --send-timeout).

    python3 bench/soak.py [--minutes 10] [--connections 256] [--slow 60] [--no-build]
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port, rss_kib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "candidate-server")

LUA = r"""
-- 85 % GET /candidate/{name} (names that exist), 8 % POST, 5 % GET /gtg, 2 % a page of the list.
math.randomseed(os.time())
request = function()
  local r = math.random(100)
  if r <= 85 then
    return wrk.format("GET", string.format("/candidate/soak-%04d", math.random(0, 999)))
  elseif r <= 93 then
    return wrk.format("POST", string.format("/candidate/soak-%04d", math.random(0, 999)))
  elseif r <= 98 then
    return wrk.format("GET", "/gtg")
  else
    return wrk.format("GET", "/candidates?page_size=100")
  end
end
"""


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def wait_ready(port, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /gtg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(32).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("server did not become ready")


class SlowClients(threading.Thread):
    """Keeps `n` slow clients going; counts how each kind ended."""

    KINDS = ("slowloris", "stalled-upload", "idle", "slow-reader")

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.port, self.n, self.stop = port, n, threading.Event()
        self.lock = threading.Lock()
        self.ended = {k: {} for k in self.KINDS}

    def note(self, kind, how):
        with self.lock:
            self.ended[kind][how] = self.ended[kind].get(how, 0) + 1

    def take(self):
        with self.lock:
            out, self.ended = self.ended, {k: {} for k in self.KINDS}
        return out

    def one(self, kind):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            self.note(kind, "connect failed")
            return
        s.settimeout(1.5)
        started = time.time()
        try:
            if kind == "slowloris":
                for b in b"GET /gtg HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                    if self.stop.is_set():
                        return
                    s.send(bytes([b]))
                    try:
                        if s.recv(1) == b"":
                            return self.note(kind, "cut")
                    except socket.timeout:
                        pass
                self.note(kind, "never cut")
            elif kind == "stalled-upload":
                s.send(b"POST /candidate/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
                s.settimeout(30)
                head = s.recv(64)
                self.note(kind, head.split(b"\r\n")[0].decode(errors="replace")[9:12] or "cut")
            elif kind == "idle":
                s.settimeout(60)
                self.note(kind, "cut" if s.recv(1) == b"" else "answered")
            else:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.send(b"GET /candidates HTTP/1.1\r\nHost: x\r\n\r\n")
                got = 0
                while not self.stop.is_set() and time.time() - started < 60:
                    try:
                        chunk = s.recv(64)
                    except socket.timeout:
                        continue
                    if not chunk:
                        return self.note(kind, "cut")
                    got += len(chunk)
                    time.sleep(1)
                self.note(kind, "still open after 60 s")
        except OSError:
            self.note(kind, "reset")
        finally:
            s.close()

    def run(self):
        def loop(kind):
            while not self.stop.is_set():
                self.one(kind)

        threads = [threading.Thread(target=loop, args=(self.KINDS[i % 4],), daemon=True) for i in range(self.n)]
        for t in threads:
            t.start()
        self.stop.wait()


def slope(points):
    """Least-squares slope of (t, v) points, per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 60


def parse_wrk(out):
    def latency(label):
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == [label]:
                v = parts[1]
                for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
                    if v.endswith(unit):
                        return float(v[: -len(unit)]) * f
        return None

    r = {"p50_ms": latency("50%"), "p99_ms": latency("99%"), "non2xx": 0, "socket_errors": 0, "rps": 0.0}
    for line in out.splitlines():
        if "Non-2xx" in line:
            r["non2xx"] = int(line.split()[-1])
        if line.strip().startswith("Socket errors"):
            r["socket_errors"] = sum(int(p.strip(",")) for p in line.split()[3::2])
        if line.startswith("Requests/sec"):
            r["rps"] = float(line.split()[1])
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--slow", type=int, default=60)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()

    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "candidates-server"], cwd=ROOT, check=True)

    data = tempfile.mkdtemp(prefix="soak-")
    http_port, grpc_port = free_port(), free_port()
    server = subprocess.Popen(
        [SERVER, "--http-addr", f"127.0.0.1:{http_port}", "--grpc-addr", f"127.0.0.1:{grpc_port}",
         "--data-dir", data, "--log", "warn", "--drain-period", "0s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(http_port)
        with socket.create_connection(("127.0.0.1", http_port)) as s:
            for i in range(1000):
                s.sendall(f"POST /candidate/soak-{i:04d} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                s.recv(4096)
        idle_rss = rss_kib(server.pid)
        lua = os.path.join(data, "mix.lua")
        with open(lua, "w") as f:
            f.write(LUA)
        slow = SlowClients(http_port, args.slow)
        slow.start()
        rows, samples = [], []
        started = time.time()
        for minute in range(args.minutes):
            out = subprocess.run(
                ["wrk", "-t2", f"-c{args.connections}", "-d60s", "--latency", "-s", lua, f"http://127.0.0.1:{http_port}"],
                capture_output=True, text=True).stdout
            r = parse_wrk(out)
            t = time.time() - started
            r.update(minute=minute + 1, rss_mib=rss_kib(server.pid) / 1024, fds=fds(server.pid), slow=slow.take())
            samples.append((t, r["rss_mib"], r["fds"]))
            rows.append(r)
            print(f"min {r['minute']:>2}: {r['rps']:>9.0f} req/s  non-2xx {r['non2xx']:>5}  sock-err {r['socket_errors']:>4}  "
                  f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  RSS {r['rss_mib']:.1f} MiB  fds {r['fds']}  "
                  f"slow {json.dumps(r['slow'])}", flush=True)
        slow.stop.set()
        time.sleep(12)  # slow clients cut, connections closed
        half = samples[len(samples) // 2:]
        summary = {
            "idle_rss_mib": idle_rss / 1024,
            "end_rss_mib": rss_kib(server.pid) / 1024,
            "end_fds": fds(server.pid),
            "rss_slope_mib_per_min_second_half": slope([(t, r) for t, r, _ in half]),
            "fds_slope_per_min_second_half": slope([(t, f) for t, _, f in half]),
            "total_non2xx": sum(r["non2xx"] for r in rows),
            "total_socket_errors": sum(r["socket_errors"] for r in rows),
            "server_alive": server.poll() is None,
        }
        print(json.dumps(summary, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"minutes": rows, "summary": summary}, f, indent=2)
    finally:
        server.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
