"""Local stand-ins for the cloud pieces the scripts talk to: a metadata server on 127.0.0.1, a
`systemctl` that records what it was asked to do, and fake cloud CLIs (FakeCommands) for the
deploy scripts."""
import http.server
import json
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


class FakeCommands:
    """A directory to put first on PATH holding fake commands (`aws`, `az`, `gcloud`, `terraform`,
    `uname`, ...). Each answers by rules: the first rule whose every substring is in the joined
    arguments prints its next output (the last one repeats) and exits with its code; no rule: exit
    0 with no output. Every call is logged (calls()). Nothing leaves this machine."""

    SCRIPT = r'''#!/usr/bin/env python3
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
name = os.path.basename(sys.argv[0])
args = " ".join(sys.argv[1:])
with open(os.path.join(here, "calls"), "a") as f:
    f.write(json.dumps([name] + sys.argv[1:]) + "\n")
# What a call hands over besides its arguments, read now (the caller may delete a file right
# after): the content of @FILE arguments (az reads those), and standard input when asked to.
extra = {"files": {a: open(a[1:]).read() for a in sys.argv[1:] if a.startswith("@") and os.path.isfile(a[1:])}}
if os.path.exists(os.path.join(here, name + ".stdin")):
    extra["stdin"] = sys.stdin.read()
with open(os.path.join(here, "extras"), "a") as f:
    f.write(json.dumps([name, sys.argv[1:], extra]) + "\n")
rules = json.load(open(os.path.join(here, name + ".rules")))
state_path = os.path.join(here, name + ".state")
# Scripts call the same fake from background jobs at once (a poll loop per instance): the state's
# read-modify-write is one critical section, or two calls take the same answer (or one reads a
# file the other is rewriting) and a sequence of answers comes out one short or long.
import fcntl
lock = open(state_path + ".lock", "a")
fcntl.flock(lock, fcntl.LOCK_EX)
state = json.load(open(state_path)) if os.path.exists(state_path) else {}
for i, (match, outputs, code) in enumerate(rules):
    if all(m in args for m in match):
        n = state.get(str(i), 0)
        state[str(i)] = n + 1
        with open(state_path + ".new", "w") as f:
            json.dump(state, f)
        os.replace(state_path + ".new", state_path)
        fcntl.flock(lock, fcntl.LOCK_UN)
        out = outputs[min(n, len(outputs) - 1)] if outputs else ""
        if out:
            print(out)
        sys.exit(code)
sys.exit(0)
'''

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = self.dir.name

    def add(self, name, rules, stdin=False):
        """rules: [(substrings, outputs, exit code)]; outputs a string or a list in call order.
        stdin=True: every call reads its standard input and records it (extras())."""
        norm = [[list(m), [o] if isinstance(o, str) else list(o), code] for m, o, code in rules]
        with open(os.path.join(self.path, name + ".rules"), "w") as f:
            json.dump(norm, f)
        if stdin:
            open(os.path.join(self.path, name + ".stdin"), "w").close()
        path = os.path.join(self.path, name)
        with open(path, "w") as f:
            f.write(self.SCRIPT)
        os.chmod(path, stat.S_IRWXU)

    def add_script(self, name, text):
        path = os.path.join(self.path, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, stat.S_IRWXU)

    def env(self, **extra):
        env = dict(os.environ, PATH=f"{self.path}:{os.environ['PATH']}")
        env.update(extra)
        return env

    def calls(self, name=None):
        try:
            with open(os.path.join(self.path, "calls")) as f:
                calls = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        return [c for c in calls if name is None or c[0] == name]

    def extras(self, name=None):
        """[(args, {"files": {"@PATH": content}, "stdin": text})] of every call (of `name`)."""
        try:
            with open(os.path.join(self.path, "extras")) as f:
                rows = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        return [(args, extra) for n, args, extra in rows if name is None or n == name]

    def close(self):
        self.dir.cleanup()
