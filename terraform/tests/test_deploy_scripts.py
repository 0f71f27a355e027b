"""The deploy scripts that drive a cloud, run offline: scripts/{aws,azure,gcp}/scale-demo.sh and
validate.sh and the shared functions of scripts/deploy/lib.sh (calibrate, http_retry) against fake
`aws`, `az`, `gcloud`, `terraform` and `candidatectl` commands on PATH (fakes.FakeCommands), and
scripts/build-release.sh's host check against a fake `uname`. Nothing here leaves 127.0.0.1. The
scripts that call the API do it with the deployment's write key (Terraform's output write_key),
which never appears in any command's arguments."""
import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from fakes import FakeCommands  # noqa: E402

# A key of the shape Terraform makes (access.tf); the fakes hand it out as the output write_key.
KEY = "cand_0123456789abcdef0123456789abcdef012345678ab"
assert len(KEY) == 48
TF_OUTPUTS = {
    "aws": {"asg_name": "cand-asg", "rest_url": "http://127.0.0.1:9", "min_size": "2", "max_size": "4",
            "target_requests_per_instance_per_second": "200", "write_key": KEY},
    "gcp": {"mig_name": "cand-mig", "rest_url": "http://127.0.0.1:9", "min_replicas": "2", "max_replicas": "4",
            "target_requests_per_instance_per_second": "200", "write_key": KEY},
    "azure": {"resource_group": "cand-rg", "vmss_name": "cand-vmss", "rest_url": "http://127.0.0.1:9",
              "instances_min": "2", "instances_max": "4", "cosmos_serverless": "true",
              "target_requests_per_instance_per_second": "200", "write_key": KEY},
}
AZURE_ENV = {"ARM_CLIENT_ID": "c", "ARM_CLIENT_SECRET": "s", "ARM_TENANT_ID": "t", "ARM_SUBSCRIPTION_ID": "sub"}
# What each cloud's autoscaler says when asked why it did not scale (printed on failure).
AWS_ACTIVITY = "2025-01-01T00:00:00Z\tFailed\tLaunching a new EC2 instance\tcause\tInsufficientInstanceCapacity"
GCP_STATUS = "autoscaler:\n  statusDetails:\n  - type: MORE_THAN_ONE_BACKEND_SERVICE"
AZURE_HISTORY = "2025-01-01T00:00:00Z\tMicrosoft.Insights/AutoscaleSettings/Scaleup/Action\tFailed\tquota"


def write_fake_ctl(path, log_dir, seconds=0):
    """A fake candidatectl: logs its arguments (ctl-calls) and the key it was given in the
    environment (ctl-keys), sleeps, succeeds."""
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\necho "$@" >> "{log_dir}/ctl-calls"\n'
                f'echo "${{CANDIDATES_API_KEY:-none}}" >> "{log_dir}/ctl-keys"\nsleep {seconds}\n')
    os.chmod(path, 0o755)


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


class Demo:
    """One cloud's scale-demo.sh with fakes: `counts` is the (running, target) sequence the group
    reports, one per sample (the last repeats)."""

    def __init__(self, cloud, counts, load_seconds=3):
        self.cloud = cloud
        self.fake = FakeCommands()
        self.tmp = tempfile.TemporaryDirectory()
        os.makedirs(os.path.join(self.tmp.name, "release"))
        self.fake_ctl = os.path.join(self.tmp.name, "release", "candidatectl")
        write_fake_ctl(self.fake_ctl, self.tmp.name, load_seconds)
        self.fake.add("terraform", [(["output -raw " + k], v, 0) for k, v in TF_OUTPUTS[cloud].items()])
        if cloud == "aws":
            self.fake.add("aws", [
                (["sts", "get-caller-identity"], "arn:aws:iam::111111111111:user/test", 0),
                (["describe-auto-scaling-groups", "length(Instances"], [f"{r}\t{t}" for r, t in counts], 0),
                (["describe-auto-scaling-groups", "InstanceId"], "i-1\ti-2", 0),
                (["describe-scaling-activities"], AWS_ACTIVITY, 0),
                (["describe-alarms"], "TargetTracking-cand-asg-AlarmHigh-1\tINSUFFICIENT_DATA\tno data", 0),
                (["ssm", "send-command"], "cmd-1", 0),
                (["get-command-invocation", "Status"], "Success", 0),
            ])
        elif cloud == "gcp":
            self.fake.add("gcloud", [
                (["config", "get-value", "project"], "proj", 0),
                (["print-access-token"], "token", 0),
                (["list-instances"], ["\n".join(f"zones/z/instances/i{i}" for i in range(r)) for r, _ in counts], 0),
                (["managed describe", "value(targetSize)"], [str(t) for _, t in counts], 0),
                (["managed describe", "autoscaler.statusDetails"], GCP_STATUS, 0),
            ])
        else:
            self.fake.add("az", [
                (["login"], "", 0),
                (["account", "set"], "", 0),
                (["vmss list-instances", "length("], [str(r) for r, _ in counts], 0),
                (["vmss show", "sku.capacity"], [str(t) for _, t in counts], 0),
                (["monitor autoscale list"], '[{"name": "cand-autoscale", "enabled": true}]', 0),
                (["monitor activity-log list"], AZURE_HISTORY, 0),
            ])

    def run(self, **env):
        full = self.fake.env(CARGO_TARGET_DIR=self.tmp.name, INTERVAL="1", WATCH_AFTER="8",
                             TIMELINE=os.path.join(self.tmp.name, "timeline.json"), **AZURE_ENV)
        full.pop("CANDIDATES_API_KEY", None)  # the scripts take Terraform's
        full.update(env)
        return subprocess.run(["bash", os.path.join("scripts", self.cloud, "scale-demo.sh")], cwd=ROOT, env=full,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)

    def close(self):
        self.fake.close()
        self.tmp.cleanup()


class ScaleDemoChecksItself(unittest.TestCase):
    def demo(self, cloud, counts, **kw):
        d = Demo(cloud, counts, **kw)
        self.addCleanup(d.close)
        return d

    def test_fails_and_prints_the_autoscalers_account_when_nothing_scaled(self):
        for cloud, fake, status_call, status_text in (
                ("aws", "aws", "describe-scaling-activities", "InsufficientInstanceCapacity"),
                ("gcp", "gcloud", "autoscaler.statusDetails", "MORE_THAN_ONE_BACKEND_SERVICE"),
                ("azure", "az", "activity-log", "AutoscaleSettings/Scaleup/Action")):
            with self.subTest(cloud=cloud):
                d = self.demo(cloud, [(2, 2)])
                run = d.run(WATCH_AFTER="3")
                out = run.stdout + run.stderr
                self.assertNotEqual(run.returncode, 0, out)
                self.assertIn("peak: FAIL", out)
                self.assertIn(status_text, out)
                self.assertTrue(any(status_call in " ".join(c) for c in d.fake.calls(fake)), d.fake.calls(fake))
                self.assertIn("scale demo: FAILED", out)

    def test_fails_when_the_group_does_not_come_back_to_the_minimum(self):
        d = self.demo("aws", [(2, 2), (4, 4)])
        run = d.run(WATCH_AFTER="3")
        out = run.stdout + run.stderr
        self.assertNotEqual(run.returncode, 0, out)
        self.assertIn("peak: ok", out)
        self.assertIn("final: FAIL", out)

    def test_passes_when_the_group_scales_out_and_back_in(self):
        for cloud in ("aws", "gcp", "azure"):
            with self.subTest(cloud=cloud):
                d = self.demo(cloud, [(2, 2), (4, 4), (4, 4), (4, 4), (4, 4), (3, 3), (2, 2)])
                run = d.run()
                out = run.stdout + run.stderr
                self.assertEqual(run.returncode, 0, out)
                self.assertIn("peak: ok", out)
                self.assertIn("final: ok", out)
                self.assertIn("scale demo: ok", out)
                # The autoscaler's account is for failures only.
                calls = " ".join(" ".join(c) for c in d.fake.calls())
                for status_call in ("describe-scaling-activities", "autoscaler.statusDetails", "activity-log"):
                    self.assertNotIn(status_call, calls)
                # The load writes with the deployment's key, from the environment only.
                ctl_calls = read_lines(os.path.join(d.tmp.name, "ctl-calls"))
                self.assertTrue(any(" load " in f" {c} " for c in ctl_calls), ctl_calls)
                self.assertEqual(set(read_lines(os.path.join(d.tmp.name, "ctl-keys"))), {KEY})
                self.assertNotIn(KEY, " ".join(ctl_calls) + calls + out)
                self.assertIn(["terraform", "-chdir=" + os.path.join(ROOT, "terraform", cloud), "output", "-raw",
                               "write_key"], d.fake.calls("terraform"))


class AwsStressLastsItsDuration(unittest.TestCase):
    """STRESS=1 on AWS: SSM's executionTimeout and the wait for the command follow DURATION (the old
    900 s of both cut a 1,200 s burn short)."""

    def test_execution_timeout_and_wait_cover_the_burn(self):
        d = Demo("aws", [(2, 2)], load_seconds=0)
        self.addCleanup(d.close)
        run = d.run(STRESS="1", DURATION="1200s", WATCH_AFTER="1", SSM_POLL="0")
        sends = [c for c in d.fake.calls("aws") if "send-command" in c]
        self.assertEqual(len(sends), 2, run.stderr)  # one per in-service instance
        for call in sends:
            params = json.loads(call[call.index("--parameters") + 1])
            limit = int(params["executionTimeout"][0])
            self.assertGreaterEqual(limit, 1200 + 120, params)
            script = base64.b64decode(params["commands"][0].split()[1]).decode()
            self.assertIn("timeout 1200 ", script)

    def test_the_wait_outlasts_in_progress_polls(self):
        d = Demo("aws", [(2, 2)], load_seconds=0)
        self.addCleanup(d.close)
        d.fake.add("aws", [
            (["sts", "get-caller-identity"], "arn", 0),
            (["describe-auto-scaling-groups", "length(Instances"], "2\t2", 0),
            (["describe-auto-scaling-groups", "InstanceId"], "i-1", 0),
            (["ssm", "send-command"], "cmd-1", 0),
            (["get-command-invocation", "Status"], ["InProgress"] * 200 + ["Success"], 0),
        ])
        run = d.run(STRESS="1", DURATION="1200s", WATCH_AFTER="1", SSM_POLL="0")
        polls = [c for c in d.fake.calls("aws") if "get-command-invocation" in c]
        self.assertEqual(len(polls), 201, run.stderr)
        self.assertNotIn("ended InProgress", run.stderr)


class CalibrationWithinTheStoresRules(unittest.TestCase):
    """lib.sh's calibrate sends calibrate-instance.sh an open-loop, ramped, capped load and caps
    the target at a burstable type's baseline."""

    def calibrate(self, store, instance_type, extra_env=None):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        canned = os.path.join(tmp.name, "canned")
        with open(canned, "w") as f:
            f.write('{"sent": 100000, "ok": 100000, "elapsed_s": 60.0}\n'
                    "calibration: cpu_ticks=100 hz=100 cores=2 seconds=60 rate=500 ramp=15\n")
        env = dict(os.environ, CAPTURE=os.path.join(tmp.name, "script"), CANNED=canned,
                   CAL_TFVARS=os.path.join(tmp.name, "out.json"), CAL_MAX_DEMO_RATE="0", **(extra_env or {}))
        script = ('source scripts/deploy/lib.sh; runner() { cat > "$CAPTURE"; cat "$CANNED"; }; '
                  f'calibrate gcp {store} 4 {instance_type} runner')
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=60)
        sent = open(env["CAPTURE"]).read() if os.path.exists(env["CAPTURE"]) else ""
        out = json.load(open(env["CAL_TFVARS"])) if os.path.exists(env["CAL_TFVARS"]) else None
        return run, sent, out

    def test_firestore_calibration_is_ramped_and_capped_and_e2_small_is_capped_at_its_baseline(self):
        run, sent, out = self.calibrate("firestore", "e2-small")
        self.assertEqual(run.returncode, 0, run.stderr)
        first = sent.splitlines()[:2]
        self.assertEqual(first, ["set -- 60 555 15", "export KEYS=450"], sent[:200])
        # 1 s of CPU for 100,000 requests on 2 vCPUs: 10 us each; e2-small sustains 25 % of them.
        self.assertEqual(out, {"target_requests_per_instance_per_second": 50000})
        self.assertIn("cpu-baseline", run.stdout)

    def test_cosmos_calibration_stays_under_the_serverless_cap(self):
        run, sent, _ = self.calibrate("cosmos", "Standard_B2s")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(sent.splitlines()[:2], ["set -- 60 2222 15", "export KEYS=400"])

    def test_a_rate_over_the_stores_cap_is_refused(self):
        run, sent, out = self.calibrate("firestore", "e2-small", {"CAL_RATE": "5000"})
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("over the calibration's cap", run.stderr)
        self.assertEqual(sent, "")


class FlakyServer:
    """127.0.0.1: the first `failures` requests get a reset connection (or a 503), then 200 'ok'."""

    def __init__(self, failures, mode="reset"):
        self.count = 0
        self.authorization = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.count += 1
                outer.authorization.append(self.headers.get("Authorization"))
                if outer.count <= failures:
                    if mode == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        self.connection.close()
                        return
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gtg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HttpRetry(unittest.TestCase):
    """lib.sh's http_retry: one transient failure does not abort a `set -e` script; the retries
    are bounded."""

    def run_retry(self, url, *curl_args, attempts=4, **env):
        script = f'set -euo pipefail; source scripts/deploy/lib.sh; http_retry "{url}" {" ".join(curl_args)}; echo " done"'
        base = {k: v for k, v in os.environ.items() if k != "CANDIDATES_API_KEY"}
        return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env=dict(base, HTTP_RETRY_DELAY="0", HTTP_ATTEMPTS=str(attempts), **env))

    def test_sends_the_key_on_every_attempt_never_in_curls_arguments(self):
        server = FlakyServer(2, "503")
        self.addCleanup(server.close)
        fake = FakeCommands()
        self.addCleanup(fake.close)
        fake.add_script("curl", f'#!/bin/sh\necho "$@" >> "{fake.path}/curl-args"\nexec {shutil.which("curl")} "$@"\n')
        run = self.run_retry(server.url, "-f", CANDIDATES_API_KEY=KEY, PATH=fake.env()["PATH"])
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(server.authorization, [f"Bearer {KEY}"] * 3)
        args = read_lines(os.path.join(fake.path, "curl-args"))
        self.assertEqual(len(args), 3)
        self.assertNotIn(KEY, " ".join(args) + run.stdout + run.stderr)
        # Without a key, no header.
        plain = FlakyServer(0)
        self.addCleanup(plain.close)
        self.assertEqual(self.run_retry(plain.url).returncode, 0)
        self.assertEqual(plain.authorization, [None])

    def test_retries_a_reset_and_a_503(self):
        for mode, args in (("reset", ()), ("503", ("-f",))):
            with self.subTest(mode=mode):
                server = FlakyServer(2, mode)
                self.addCleanup(server.close)
                run = self.run_retry(server.url, *args)
                self.assertEqual(run.returncode, 0, run.stderr)
                self.assertEqual(run.stdout, "ok done\n")
                self.assertEqual(server.count, 3)

    def test_gives_up_after_the_bounded_attempts(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again: connections are refused
        run = self.run_retry(f"http://127.0.0.1:{port}/gtg", attempts=3)
        self.assertNotEqual(run.returncode, 0)
        self.assertNotIn("done", run.stdout)
        self.assertEqual(run.stderr.count("failed (curl exit"), 2, run.stderr)
        self.assertIn("no answer after 3 attempts", run.stderr)


class KeyTransport(unittest.TestCase):
    """The write key over plain HTTP (a deployment without HTTPS) still works, with one line on
    stderr saying it travels unencrypted, naming the URL and never the key; over https:// and
    without a key, nothing. With HTTPS the contract check also proves that port 80 redirects
    (lib.sh's http_redirects_to_https)."""

    def bash(self, body, **env):
        base = {k: v for k, v in os.environ.items() if k != "CANDIDATES_API_KEY"}
        return subprocess.run(["bash", "-c", f"set -euo pipefail; source scripts/deploy/lib.sh; {body}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, env=dict(base, **env))

    def test_warns_once_for_plain_http_and_never_prints_the_key(self):
        server = FlakyServer(0)
        self.addCleanup(server.close)
        run = self.bash(f'http_retry "{server.url}" >/dev/null; http_retry "{server.url}" >/dev/null',
                        CANDIDATES_API_KEY=KEY, HTTP_RETRY_DELAY="0")
        self.assertEqual(run.returncode, 0, run.stderr)
        warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
        self.assertEqual(warnings, [f"warning: {server.url} is plain HTTP: the write key travels unencrypted "
                                    "(give the deployment a domain and certificate for HTTPS)"])
        self.assertNotIn(KEY, run.stdout + run.stderr)
        self.assertEqual(server.authorization, [f"Bearer {KEY}"] * 2, "plain HTTP still works")

    def test_no_warning_over_https_or_without_a_key(self):
        for url, env in (("https://api.example.com", {"CANDIDATES_API_KEY": KEY}), ("http://127.0.0.1:9", {})):
            with self.subTest(url=url):
                run = self.bash(f'warn_key_in_clear "{url}"', **env)
                self.assertEqual((run.returncode, run.stderr), (0, ""))

    def test_candidatectl_is_told_to_send_the_key_in_clear_only_where_the_scripts_warn(self):
        # candidatectl refuses a key over plain HTTP off the machine unless this is set.
        for url, expected in (("http://lb.example.com", "true"), ("https://api.example.com", "unset")):
            with self.subTest(url=url):
                run = self.bash(f'warn_key_in_clear "{url}" 2>/dev/null; echo "${{CANDIDATECTL_ALLOW_PLAINTEXT_KEY:-unset}}"',
                                CANDIDATES_API_KEY=KEY)
                self.assertEqual((run.returncode, run.stdout.strip()), (0, expected), run.stderr)

    def test_port_80_must_redirect_to_the_same_url_over_https(self):
        # What port 80 answers: the load balancers' redirect (with the ALB's explicit :443 too),
        # and the two mistakes: serving the API in the clear, or redirecting elsewhere.
        for answer, ok in (("301 https://{host}/gtg?details=true", True),
                           ("301 https://{host}:443/gtg?details=true", True),
                           ("200 ", False),
                           ("302 https://{host}/gtg?details=true", False),
                           ("301 https://{host}/", False),
                           ("301 http://{host}/gtg?details=true", False)):
            with self.subTest(answer=answer):
                code, location = answer.split(" ", 1)

                class Handler(http.server.BaseHTTPRequestHandler):
                    def do_GET(self):
                        self.send_response(int(code))
                        if location:
                            self.send_header("Location", location.format(host=self.headers["Host"]))
                        self.send_header("Content-Length", "0")
                        self.end_headers()

                    def log_message(self, *args):
                        pass

                server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
                threading.Thread(target=server.serve_forever, daemon=True).start()
                self.addCleanup(server.server_close)
                self.addCleanup(server.shutdown)
                # The REST URL is https://host:port; the check asks http://host:port (this server).
                run = self.bash(f'http_redirects_to_https "https://127.0.0.1:{server.server_address[1]}"')
                self.assertEqual(run.returncode == 0, ok, run.stderr)
                if not ok:
                    self.assertIn("port 80 must redirect to HTTPS", run.stderr)


class Api:
    """127.0.0.1: what validate.sh calls through the load balancer (/gtg, /gtg?details=true),
    answered 200, with every request's path and Authorization header recorded; a POST without a
    key gets 401, as from a deployment closed for writes (`open_writes`: 200, as from one left
    open)."""

    def __init__(self, open_writes=False):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.path, self.headers.get("Authorization")))
                body = b'{"connected":"true","instance-id":"i-1"}' if "details" in self.path else b""
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                outer.requests.append((self.path, self.headers.get("Authorization")))
                closed = self.headers.get("Authorization") is None and not open_writes
                self.send_response(401 if closed else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ValidateUsesTheKey(unittest.TestCase):
    """Each cloud's validate.sh with fakes: the contract check and /gtg?details carry the
    deployment's key (candidatectl from the environment, curl from a file descriptor), the gRPC
    check on Azure's and GCP's validation host gets it in a private file / on standard input, and
    no command line anywhere holds it."""

    def validate(self, cloud, outputs, fakes, open_writes=False, expect_ok=True, **env):
        api = Api(open_writes)
        self.addCleanup(api.close)
        fake = FakeCommands()
        self.addCleanup(fake.close)
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        os.makedirs(os.path.join(tmp, "release"))
        write_fake_ctl(os.path.join(tmp, "release", "candidatectl"), tmp)
        outputs = dict(outputs, rest_url=api.url, write_key=KEY)
        fake.add("terraform", [(["output -raw " + k], v, 0) for k, v in outputs.items()])
        for name, (rules, stdin) in fakes.items():
            fake.add(name, rules, stdin=stdin)
        fake.add_script("curl", f'#!/bin/sh\necho "$@" >> "{fake.path}/curl-args"\nexec {shutil.which("curl")} "$@"\n')
        base = {k: v for k, v in os.environ.items() if k != "CANDIDATES_API_KEY"}
        full = dict(base, PATH=fake.env()["PATH"], CARGO_TARGET_DIR=tmp, HEALTH_TIMEOUT="30", HTTP_RETRY_DELAY="0",
                    CANDIDATES_AZURE_CONFIG_DIR=os.path.join(tmp, "az"), **AZURE_ENV)
        full.update(env)
        run = subprocess.run(["bash", os.path.join("scripts", cloud, "validate.sh")], cwd=ROOT, env=full,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        out = run.stdout + run.stderr
        if not expect_ok:
            self.assertNotEqual(run.returncode, 0, out)
            return fake, out
        self.assertEqual(run.returncode, 0, out)
        # Six anonymous writes, each refused: the deployment is closed for writes.
        probes = [(path, auth) for path, auth in api.requests if path.startswith("/candidate/anonymous-write-probe")]
        self.assertEqual(len(probes), 6, api.requests)
        self.assertTrue(all(auth is None for _, auth in probes), probes)
        self.assertIn("anonymous writes refused", out)
        # /gtg?details with the key; the health path without it is fine either way.
        details = [auth for path, auth in api.requests if "details" in path]
        self.assertEqual(details, [f"Bearer {KEY}"], api.requests)
        # The contract check: candidatectl got the key in its environment.
        ctl_calls = read_lines(os.path.join(tmp, "ctl-calls"))
        self.assertTrue(any(c.startswith("check ") for c in ctl_calls), ctl_calls)
        self.assertEqual(set(read_lines(os.path.join(tmp, "ctl-keys"))), {KEY})
        # No command line, and nothing printed, holds the key.
        everything = " ".join(" ".join(c) for c in fake.calls()) + " ".join(ctl_calls) + \
            " ".join(read_lines(os.path.join(fake.path, "curl-args"))) + out
        self.assertNotIn(KEY, everything)
        return fake, out

    def test_aws(self):
        self.validate("aws", {"grpc_endpoint": "nlb:50051", "asg_name": "cand-asg",
                              "rest_target_group_arn": "arn:rest", "grpc_target_group_arn": "arn:grpc"},
                      {"aws": ([(["sts", "get-caller-identity"], "arn", 0),
                                (["describe-auto-scaling-groups", "MinSize"], "1", 0),
                                (["describe-target-health"], "healthy", 0)], False)},
                      SKIP_GRPC="1")

    def test_a_deployment_open_for_writes_fails_validation(self):
        _, out = self.validate("aws", {"grpc_endpoint": "nlb:50051", "asg_name": "cand-asg",
                                       "rest_target_group_arn": "arn:rest", "grpc_target_group_arn": "arn:grpc"},
                               {"aws": ([(["sts", "get-caller-identity"], "arn", 0),
                                         (["describe-auto-scaling-groups", "MinSize"], "1", 0),
                                         (["describe-target-health"], "healthy", 0)], False)},
                               open_writes=True, expect_ok=False, SKIP_GRPC="1")
        self.assertIn("the deployment is open for writes", out)

    def test_gcp_sends_the_key_to_the_validation_host_on_standard_input(self):
        fake, _ = self.validate(
            "gcp", {"grpc_endpoint": "10.0.0.9:50051", "rest_backend_service": "cand-rest", "mig_name": "cand-mig",
                    "min_replicas": "1", "validation_instance": "cand-validation zones/us-central1-a"},
            {"gcloud": ([(["config", "get-value", "project"], "proj", 0), (["print-access-token"], "token", 0),
                         (["get-health"], "HEALTHY", 0), (["compute ssh"], "PASS", 0)], True)})
        ssh = [(args, extra) for args, extra in fake.extras("gcloud") if args[:2] == ["compute", "ssh"]]
        self.assertEqual(len(ssh), 1, fake.extras("gcloud"))
        args, extra = ssh[0]
        self.assertEqual(extra["stdin"], KEY + "\n")
        command = args[args.index("--command") + 1]
        self.assertIn("read -r CANDIDATES_API_KEY", command)
        self.assertIn("candidatectl --allow-plaintext-key check --skip-rest --grpc-target http://10.0.0.9:50051", command)

    def test_azure_sends_the_key_to_the_validation_host_in_a_private_script_file(self):
        fake, _ = self.validate(
            "azure", {"grpc_endpoint": "10.0.0.9:50051", "resource_group": "cand-rg", "app_gateway_name": "cand-gw",
                      "vmss_name": "cand-vmss", "instances_min": "1", "validation_vm_name": "cand-validation"},
            {"az": ([(["login"], "", 0), (["account", "set"], "", 0), (["show-backend-health"], "Healthy", 0),
                     (["vm run-command invoke"], "PASS\ncandidatectl-exit=0", 0)], False)})
        runs = [(args, extra) for args, extra in fake.extras("az") if args[:3] == ["vm", "run-command", "invoke"]]
        self.assertEqual(len(runs), 1)
        args, extra = runs[0]
        script_arg = args[args.index("--scripts") + 1]
        self.assertTrue(script_arg.startswith("@"), args)
        script = extra["files"][script_arg]
        self.assertIn(f"export CANDIDATES_API_KEY={KEY}\n", script)
        self.assertIn("candidatectl --allow-plaintext-key check --skip-rest --grpc-target http://10.0.0.9:50051", script)
        self.assertFalse(os.path.exists(script_arg[1:]), "the script file with the key is left behind")

    def test_a_key_already_in_the_environment_is_used_instead(self):
        other = "cand_" + "z" * 43
        api = Api()
        self.addCleanup(api.close)
        fake = FakeCommands()
        self.addCleanup(fake.close)
        fake.add("terraform", [(["output -raw rest_url"], api.url, 0), (["output -raw write_key"], KEY, 0)])
        run = subprocess.run(["bash", "-c", 'source scripts/deploy/lib.sh; use_write_key aws; '
                              'http_retry "$(tf_output aws rest_url)/gtg?details=true"'], cwd=ROOT,
                             env=fake.env(CANDIDATES_API_KEY=other), capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(api.requests, [("/gtg?details=true", f"Bearer {other}")])
        self.assertNotIn("write_key", " ".join(" ".join(c) for c in fake.calls("terraform")))
        self.assertIn("from the environment", run.stderr)

    def test_no_key_output_stops_the_script(self):
        fake = FakeCommands()
        self.addCleanup(fake.close)
        fake.add("terraform", [(["output -raw write_key"], "", 1)])
        env = {k: v for k, v in fake.env().items() if k != "CANDIDATES_API_KEY"}
        run = subprocess.run(["bash", "-c", "set -e; source scripts/deploy/lib.sh; use_write_key aws; echo reached"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(run.returncode, 0)
        self.assertNotIn("reached", run.stdout)
        self.assertIn("no write_key output", run.stderr)


class ValidateWithHttps(unittest.TestCase):
    """Each cloud's validate.sh when rest_url is https://<domain> (a deployment with a
    certificate), with a fake curl: it waits for the domain to answer (on a first apply its DNS
    record cannot exist yet: AWS and Azure print the load balancer's name to point it at, GCP waits
    for the managed certificate, which needs the record), checks the contract there, proves that
    port 80 answers a 301 to the https URL, prints no plain-HTTP warning and puts the key in no
    command line. GCP stops at once on a certificate Google does not retry."""

    DOMAIN = "https://api.example.com"

    def validate(self, cloud, outputs, fakes, curl_gtg=("200",), expect_ok=True, **env):
        fake = FakeCommands()
        self.addCleanup(fake.close)
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        os.makedirs(os.path.join(tmp, "release"))
        write_fake_ctl(os.path.join(tmp, "release", "candidatectl"), tmp)
        outputs = dict(outputs, rest_url=self.DOMAIN, write_key=KEY)
        fake.add("terraform", [(["output -raw " + k], v, 0) for k, v in outputs.items()])
        for name, (rules, stdin) in fakes.items():
            fake.add(name, rules, stdin=stdin)
        # What the domain answers: port 80 a 301 to the same URL over HTTPS (ALB style, with :443),
        # an anonymous POST 401, GET /gtg `curl_gtg` in turn (000: the name does not resolve yet).
        fake.add("curl", [(["%{redirect_url}", "http://api.example.com/gtg?details=true"],
                           "301 https://api.example.com:443/gtg?details=true", 0),
                          (["-X POST", self.DOMAIN + "/candidate/anonymous-write-probe"], "401", 0),
                          (["%{http_code}", self.DOMAIN + "/gtg"], list(curl_gtg), 0)])
        base = {k: v for k, v in os.environ.items() if k != "CANDIDATES_API_KEY"}
        full = dict(base, PATH=fake.env()["PATH"], CARGO_TARGET_DIR=tmp, HEALTH_TIMEOUT="60", HTTP_RETRY_DELAY="0",
                    CANDIDATES_AZURE_CONFIG_DIR=os.path.join(tmp, "az"), SKIP_GRPC="1", **AZURE_ENV)
        full.update(env)
        run = subprocess.run(["bash", os.path.join("scripts", cloud, "validate.sh")], cwd=ROOT, env=full,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        out = run.stdout + run.stderr
        if not expect_ok:
            self.assertNotEqual(run.returncode, 0, out)
            return fake, out
        self.assertEqual(run.returncode, 0, out)
        curl = [" ".join(c[1:]) for c in fake.calls("curl")]
        gtg = [i for i, c in enumerate(curl) if "%{http_code}" in c and c.endswith(self.DOMAIN + "/gtg")]
        self.assertEqual(len(gtg), len(curl_gtg), curl)
        first_write = min(i for i, c in enumerate(curl) if "-X POST" in c)
        self.assertLess(max(gtg), first_write, "the domain was not waited for before the checks")
        ctl_calls = read_lines(os.path.join(tmp, "ctl-calls"))
        self.assertTrue(any(f"--rest-target {self.DOMAIN}" in c for c in ctl_calls), ctl_calls)
        self.assertEqual(set(read_lines(os.path.join(tmp, "ctl-keys"))), {KEY})
        self.assertIn("port 80 redirects to HTTPS (301, path and query kept)", out)
        self.assertNotIn("plain HTTP", out)
        everything = " ".join(" ".join(c) for c in fake.calls()) + " ".join(ctl_calls) + out
        self.assertNotIn(KEY, everything)
        return fake, out

    def test_aws_waits_for_the_domain_it_names_the_alb_for(self):
        _, out = self.validate("aws", {"grpc_endpoint": "nlb:50051", "asg_name": "cand-asg",
                                       "rest_target_group_arn": "arn:rest", "grpc_target_group_arn": "arn:grpc",
                                       "alb_dns_name": "cand-rest-1.us-east-2.elb.amazonaws.com"},
                               {"aws": ([(["sts", "get-caller-identity"], "arn", 0),
                                         (["describe-auto-scaling-groups", "MinSize"], "1", 0),
                                         (["describe-target-health"], "healthy", 0)], False)},
                               curl_gtg=("000", "200"))
        self.assertIn(f"{self.DOMAIN}/gtg answering 200 (its DNS record -> cand-rest-1.us-east-2.elb.amazonaws.com)",
                      out)

    def test_azure_waits_for_the_domain_it_names_the_gateway_for(self):
        _, out = self.validate(
            "azure", {"grpc_endpoint": "10.0.0.9:50051", "resource_group": "cand-rg", "app_gateway_name": "cand-gw",
                      "vmss_name": "cand-vmss", "instances_min": "1", "gateway_fqdn": "cand-abc123.centralus.cloudapp.azure.com"},
            {"az": ([(["login"], "", 0), (["account", "set"], "", 0), (["show-backend-health"], "Healthy", 0)], False)},
            curl_gtg=("000", "200"))
        self.assertIn("(its DNS record -> cand-abc123.centralus.cloudapp.azure.com)", out)

    def gcp(self, statuses, **kw):
        return self.validate(
            "gcp", {"grpc_endpoint": "10.0.0.9:50051", "rest_backend_service": "cand-rest", "mig_name": "cand-mig",
                    "min_replicas": "1", "certificate_name": "cand-0123456789abcdef", "rest_address": "203.0.113.7"},
            {"gcloud": ([(["config", "get-value", "project"], "proj", 0), (["print-access-token"], "token", 0),
                         (["get-health"], "HEALTHY", 0), (["ssl-certificates", "describe"], list(statuses), 0)],
                        False)}, **kw)

    def test_gcp_waits_for_the_managed_certificate(self):
        fake, out = self.gcp(["PROVISIONING", "ACTIVE"])
        self.assertIn("the managed certificate cand-0123456789abcdef ACTIVE (the domains' A records -> 203.0.113.7)",
                      out)
        describes = [c for c in fake.calls("gcloud") if "ssl-certificates" in c]
        self.assertEqual(len(describes), 2, describes)

    def test_gcp_stops_at_a_certificate_google_does_not_retry(self):
        for status in ("PROVISIONING_FAILED_PERMANENTLY", "RENEWAL_FAILED"):
            with self.subTest(status=status):
                fake, out = self.gcp([status], expect_ok=False, CERT_TIMEOUT="30")
                self.assertIn(f"cand-0123456789abcdef is {status}", out)
                self.assertIn("raise certificate_revision", out)
                describes = [c for c in fake.calls("gcloud") if "ssl-certificates" in c]
                self.assertEqual(len(describes), 1, "waited on a certificate that is never retried")
                self.assertEqual(fake.calls("curl"), [], "went on to the checks")


class GcpApplyWaitsForLogMetrics(unittest.TestCase):
    """scripts/gcp/apply.sh applies again when an alert policy's log-based metric is not visible
    yet (terraform-provider-google #11102), and only then (fake terraform, gcloud, packer, cargo)."""

    def run_apply(self, errors):
        fake = FakeCommands()
        self.addCleanup(fake.close)
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        fake.add("gcloud", [])
        fake.add("packer", [])
        fake.add("cargo", [])
        # terraform: the first `apply`s print the given errors and fail; later ones succeed; every
        # other command (init, output) fails, which ends the run in validate.sh after the applies.
        fake.add_script("terraform", f"""#!/usr/bin/env bash
echo "$*" >> {tmp}/calls
[[ " $* " == *" init "* ]] && exit 0
[[ " $* " == *" apply "* ]] || exit 1
n=$(grep -c ' apply ' {tmp}/calls)
errors=({" ".join(repr(e) for e in errors)})
if ((n <= ${{#errors[@]}})); then echo "${{errors[n-1]}}" >&2; exit 1; fi
exit 0
""")
        env = fake.env(GOOGLE_CLOUD_PROJECT="proj", SKIP_IMAGE="1", AUTO_APPROVE="1", METRIC_RETRY_DELAY="0")
        result = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gcp", "apply.sh")], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        with open(os.path.join(tmp, "calls")) as f:
            applies = [line for line in f.read().splitlines() if " apply " in f" {line} "]
        return result, applies

    def test_a_metric_not_yet_visible_is_applied_again(self):
        missing = 'Error: Error creating AlertPolicy: googleapi: Error 404: Cannot find metric(s) that match type = "logging.googleapis.com/user/x"'
        result, applies = self.run_apply([missing, missing])
        self.assertEqual(len(applies), 3, result.stdout + result.stderr)
        self.assertIn("not visible to Cloud Monitoring yet", result.stderr)

    def test_any_other_error_stops_at_once(self):
        result, applies = self.run_apply(["Error: googleapi: Error 403: Permission denied"])
        self.assertEqual(len(applies), 1)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("terraform apply failed", result.stderr)


class BuildHost(unittest.TestCase):
    """scripts/build-release.sh refuses a host that cannot build the image's binaries before it
    runs cargo (fake `uname`, fake `cargo`)."""

    def test_refuses_a_non_x86_64_or_non_linux_host(self):
        for os_name, arch in (("Linux", "aarch64"), ("Darwin", "x86_64")):
            with self.subTest(host=f"{os_name} {arch}"):
                fake = FakeCommands()
                self.addCleanup(fake.close)
                fake.add("uname", [(["-s"], os_name, 0), (["-m"], arch, 0)])
                fake.add("cargo", [])
                with tempfile.TemporaryDirectory() as target:
                    run = subprocess.run(["bash", "scripts/build-release.sh"], cwd=ROOT, stdin=subprocess.DEVNULL,
                                         env=fake.env(CARGO_TARGET_DIR=target), capture_output=True, text=True,
                                         timeout=60)
                self.assertNotEqual(run.returncode, 0)
                self.assertIn("Linux x86_64", run.stderr)
                self.assertEqual(fake.calls("cargo"), [], "cargo ran on a host that cannot build the image's binaries")


if __name__ == "__main__":
    unittest.main()
