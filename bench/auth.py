#!/usr/bin/env python3
"""What a credential check costs per request: GET /gtg?details (GetStatus through the gateway and
the service; its store round-trip is cached for 2 s) on the embedded store, pinned
like bench/pinned.py (server on core 1, wrk -t1 -c64 on core 0), variants alternating in one run:

    open        no key file: no credential checked (what a local run does)
    public      a key file, public reads, no credential sent (the default deployment's reads)
    key         a key file, reads need the read scope, an API key sent (SHA-256 + constant-time
                comparison with every key in the file: --keys of them)
    jwt         an OIDC issuer (a local JWKS server here), reads need the read scope, an RS256
                token sent (signature check with the cached key, claims validated)

Prints each variant's median req/s and its ratio to `open`.

    python3 bench/auth.py [--duration 10] [--reps 3] [--keys 100] [--no-build]

Needs wrk and Python's `cryptography` (installed with pip when missing) for the token.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from startup import free_port  # noqa: E402
from soak import wait_ready  # noqa: E402
from pinned import need, SERVER, CTL, SERVER_CPU, LOAD_CPU  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wrk(url, duration, header=None):
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c64", f"-d{duration}s", url]
    if header:
        cmd[4:4] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def mint():
    out = subprocess.run([CTL, "--json", "key", "mint", "--name", "bench", "--scopes", "candidates.read"],
                         capture_output=True, text=True, check=True).stdout
    import json
    doc = json.loads(out)  # noqa: E402
    return doc["key"], doc["key_file_line"]


def b64(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issuer(tmp):
    """A JWKS server on loopback and an RS256 token with the read scope, valid for an hour."""
    import http.server
    import json
    import threading
    import time
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "cryptography"], check=True)
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "kid": "bench", "alg": "RS256", "n": b64(numbers.n.to_bytes(256, "big")),
           "e": b64(numbers.e.to_bytes(3, "big"))}
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"issuer": url, "jwks_uri": f"{url}/jwks"} if "openid" in self.path
                              else {"keys": [jwk]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    header = b64(json.dumps({"alg": "RS256", "kid": "bench", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = b64(json.dumps({"iss": url, "aud": "bench", "sub": "bench", "exp": now + 3600, "iat": now,
                             "scope": "candidates.read"}).encode())
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return url, f"{header}.{claims}.{b64(signature)}"


class Server:
    def __init__(self, tmp, name, args):
        self.http = free_port()
        self.log = open(os.path.join(tmp, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, SERVER, "--http-addr", f"127.0.0.1:{self.http}", "--grpc-addr",
             f"127.0.0.1:{free_port()}", "--data-dir", tempfile.mkdtemp(dir=tmp), "--log", "warn", *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_ready(self.http)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keys", type=int, default=100, help="keys in the key file (the sent one is the last)")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    need("wrk", "wrk")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "candidate-server", "--bin", "candidatectl"],
                       cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="auth-bench-")
    lines = [mint()[1] for _ in range(args.keys - 1)]
    key, line = mint()
    keys_file = os.path.join(tmp, "keys")
    with open(keys_file, "w") as f:
        f.write("\n".join(lines + [line]) + "\n")
    servers = {
        "open": (Server(tmp, "open", []), None),
        "public": (Server(tmp, "public", ["--api-keys-file", keys_file]), None),
        "key": (Server(tmp, "key", ["--api-keys-file", keys_file, "--auth-read", "scope"]),
                f"Authorization: Bearer {key}"),
    }
    issuer_url, token = issuer(tmp)
    servers["jwt"] = (Server(tmp, "jwt", ["--oidc-issuer", issuer_url, "--oidc-audience", "bench", "--auth-read", "scope"]),
                      f"Authorization: Bearer {token}")
    try:
        runs = {name: [] for name in servers}
        for rep in range(args.reps):
            order = list(servers) if rep % 2 == 0 else list(reversed(servers))
            for name in order:
                server, header = servers[name]
                rate = wrk(f"http://127.0.0.1:{server.http}/gtg?details", args.duration, header)
                runs[name].append(rate)
                print(f"rep {rep + 1}: {name:<7} {rate:>9.0f} req/s", flush=True)
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"\n| variant (medians of {args.reps}, GET /gtg?details) | req/s | vs open |")
        print("|---|---:|---:|")
        for name in servers:
            print(f"| {name} | {med[name]:.0f} | {med[name] / med['open']:.2f}x |")
    finally:
        for server, _ in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
