"""Local stand-ins for the cloud pieces the instance scripts talk to: a metadata server on
127.0.0.1 and a `systemctl` that records what it was asked to do."""
import http.server
import os
import stat
import subprocess
import tempfile
import threading


class Metadata:
    """A metadata server on 127.0.0.1:<free port>. `handler(method, path, headers, body)` returns
    (status, text); every request is recorded in `requests`."""

    def __init__(self, handler):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                status, text = handler(self.command, self.path, self.headers, body)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _serve

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeSystemctl:
    """A directory to put first on PATH, holding a `systemctl` that logs its arguments."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.log = os.path.join(self.dir.name, "calls")
        path = os.path.join(self.dir.name, "systemctl")
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> "{self.log}"\n')
        os.chmod(path, stat.S_IRWXU)

    def close(self):
        self.dir.cleanup()

    def env(self, **extra):
        env = dict(os.environ, PATH=f"{self.dir.name}:{os.environ['PATH']}")
        env.update(extra)
        return env

    def calls(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


def run(script, env, timeout):
    return subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=timeout)


def run_python(script, env, timeout):
    return subprocess.run(["python3", script], env=env, capture_output=True, text=True, timeout=timeout)
