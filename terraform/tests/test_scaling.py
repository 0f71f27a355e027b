"""The scale demo's arithmetic (scripts/deploy/scaling.py) and the calibration run end to end
against the real release binaries on 127.0.0.1 (scripts/deploy/calibrate-instance.sh, as it runs
on an instance): the demo's load must put the minimum number of instances above the target and
settle at the maximum, ramp within Firestore's 500/50/5 rule, and stay under Cosmos DB
serverless's 5,000 RU/s."""
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "deploy"))
import scaling  # noqa: E402


def firestore_limit(t):
    return 500 * 1.5 ** math.floor(t / 300)


class Plan(unittest.TestCase):
    def test_the_demo_crosses_the_threshold_and_settles_at_max(self):
        for target in (1, 37, 200, 1000, 5000):
            for lo, hi in ((1, 2), (2, 4), (2, 10)):
                p = scaling.plan(target, lo, hi)
                self.assertTrue(p["crosses_threshold"], p)
                self.assertGreater(p["rate"] / lo, target, p)
                # Every cloud's policy holds an instance at `target`: steady state ceil(rate / target).
                self.assertEqual(math.ceil(p["rate"] / target), hi, p)
                self.assertEqual((p["expected_min"], p["expected_peak"], p["expected_after"]), (lo, hi, lo))

    def test_firestore_ramp_stays_within_500_50_5(self):
        for target in (100, 200, 1000, 3000):
            p = scaling.plan(target, 2, 4, store="firestore")
            ops, ramp = p["store_ops_per_s"], p["ramp_s"]
            for t in range(0, ramp + 3600, 5):
                rate = ops * min(t, ramp) / ramp if ramp else ops
                self.assertLessEqual(rate, firestore_limit(t) + 1e-6, (target, t, rate))
            # ...and is not needlessly long: 30 s shorter would break the rule (or go under 5 min).
            if ramp > scaling.DEFAULT_RAMP_S:
                self.assertNotEqual(scaling.firestore_ramp_s(ops), 0)
                shorter = ramp - 30
                broken = any(ops * min(t, shorter) / shorter > firestore_limit(t) + 1e-6
                             for t in range(0, shorter + 1, 1))
                self.assertTrue(broken, (target, ramp))

    def test_firestore_rule_itself(self):
        self.assertEqual(scaling.firestore_ramp_s(400), 0)
        self.assertGreater(scaling.firestore_ramp_s(501), 0)

    def test_cosmos_serverless_cap_refuses_a_demo_over_it(self):
        ok = scaling.plan(200, 2, 4, store="cosmos")
        self.assertTrue(any("RU/s" in n for n in ok["notes"]))
        with self.assertRaisesRegex(ValueError, "5000 RU/s"):
            scaling.plan(2000, 2, 4, store="cosmos")

    def test_calibration_caps_the_target_under_cosmos_serverless(self):
        fields = {"cpu_ticks": "100", "hz": "100", "cores": "2"}
        report = {"ok": 100000, "sent": 100000, "elapsed_s": 10.0}
        free = scaling.calibrate(fields, report, 0.6, max_demo_rate=0)
        self.assertEqual(free["bound"], "cpu")
        # 1 s of CPU for 100,000 requests: 10 us each; 2 cores at 60 % -> 120,000 req/s.
        self.assertEqual(free["target_requests_per_instance_per_second"], 120000)
        capped = scaling.calibrate(fields, report, 0.6, store="cosmos", max_instances=4, max_demo_rate=0)
        self.assertEqual(capped["bound"], "cosmos-serverless")
        # The default caps the demo at 3,000 req/s: 3000 / 3.5 = 857 per instance.
        drivable = scaling.calibrate(fields, report, 0.6)
        self.assertEqual((drivable["bound"], drivable["target_requests_per_instance_per_second"]), ("demo-rate", 857))
        self.assertLessEqual(scaling.plan(857, 2, 4)["rate"], 3000)
        scaling.plan(capped["target_requests_per_instance_per_second"], 2, 4, store="cosmos")  # does not raise

    def test_calibration_refuses_a_run_without_successes(self):
        with self.assertRaises(ValueError):
            scaling.calibrate({"cpu_ticks": "5", "hz": "100", "cores": "2"}, {"ok": 0, "sent": 10, "elapsed_s": 1})


class Verify(unittest.TestCase):
    """scaling.py verify: the demo's samples against the plan's counts and the policy's bounds."""

    def plan(self, cloud="aws"):
        return scaling.plan(200, 2, 4, cloud=cloud)

    def test_on_time_peak_and_scale_in_pass(self):
        p = self.plan()
        samples = [(0, 2, 2), (400, 3, 3), (900, 4, 4), (p["duration_s"] + 1000, 3, 3), (p["duration_s"] + 1500, 2, 2)]
        ok, lines = scaling.verify(p, samples, p["duration_s"])
        self.assertTrue(ok, lines)

    def test_no_scale_out_fails(self):
        p = self.plan()
        ok, lines = scaling.verify(p, [(0, 2, 2), (600, 2, 2), (p["duration_s"] + 60, 2, 2)], p["duration_s"])
        self.assertFalse(ok)
        self.assertIn("peak: FAIL", lines[0])

    def test_a_peak_later_than_the_policy_allows_fails(self):
        p = self.plan()
        late = p["peak_by_s"] + 30
        ok, lines = scaling.verify(p, [(0, 2, 2), (late, 4, 4), (late + 2000, 2, 2)], late + 60)
        self.assertFalse(ok)
        self.assertIn("later than the policy", lines[0])

    def test_a_slow_or_missing_scale_in_fails(self):
        p = self.plan()
        stop = p["duration_s"]
        ok, lines = scaling.verify(p, [(0, 2, 2), (600, 4, 4), (stop + 100, 4, 4)], stop)
        self.assertFalse(ok)
        self.assertIn("final: FAIL", lines[1])
        slow = stop + p["final_by_s"] + 60
        ok, lines = scaling.verify(p, [(0, 2, 2), (600, 4, 4), (slow, 2, 2)], stop)
        self.assertFalse(ok)
        self.assertIn("later than the policy", lines[1])
        # Back at the minimum, then up again by the last sample: not settled.
        ok, lines = scaling.verify(p, [(0, 2, 2), (600, 4, 4), (stop + 100, 2, 2), (stop + 200, 3, 3)], stop)
        self.assertFalse(ok)

    def test_unreadable_counts_fail(self):
        ok, lines = scaling.verify(self.plan(), [(0, None, None)], 10)
        self.assertFalse(ok)

    def test_the_load_lasts_until_the_peak_is_due(self):
        for cloud in scaling.POLICY:
            for store in (None, "firestore", "cosmos"):
                p = scaling.plan(200, 2, 4, store=store, cloud=cloud)
                self.assertGreaterEqual(p["duration_s"], p["peak_by_s"], p)
                self.assertGreaterEqual(p["duration_s"], p["ramp_s"] + scaling.HOLD_S, p)

    def test_overrides_move_the_expected_peak(self):
        p = scaling.plan(200, 2, 4, cloud="aws", rate=500, ramp_s=60, duration_s=600)
        self.assertEqual((p["expected_peak"], p["ramp_s"], p["duration_s"]), (3, 60, 600))
        stress = scaling.plan(200, 2, 4, cloud="azure", stress=True)
        self.assertEqual((stress["expected_peak"], stress["ramp_s"]), (3, 0))
        self.assertEqual(scaling.seconds_of("20m"), 1200)
        self.assertEqual(scaling.seconds_of("1200s"), 1200)


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def tf_default(path, variable):
    text = read("terraform", path)
    block = re.search(r'variable "%s" \{(.*?)\n\}' % variable, text, re.S).group(1)
    return re.search(r'default\s*=\s*"?([^"\n]+)"?', block).group(1).strip()


def iso_minutes(value):
    return int(re.fullmatch(r"PT(\d+)M", value).group(1)) * 60


class PolicyBoundsMatchTheRoots(unittest.TestCase):
    """The demo's time bounds (scaling.POLICY) are derived from the roots' cooldowns, windows and
    warm-ups: when a root waits longer than the bound assumes, this fails."""

    def test_aws(self):
        warmup = int(tf_default("aws/variables.tf", "instance_warmup_seconds"))
        self.assertGreaterEqual(scaling.POLICY["aws"]["step_out"], warmup + 180)  # warm-up + 3 datapoints
        self.assertGreaterEqual(scaling.POLICY["aws"]["decision_in"], 15 * 60)  # 15 datapoints under target

    def test_azure(self):
        text = read("terraform", "azure", "compute.tf")
        rules = re.findall(r"rule \{(.*?)\n    \}", text, re.S)
        self.assertTrue(rules)
        for rule in rules:
            window = iso_minutes(re.search(r'time_window\s*=\s*"(PT\d+M)"', rule).group(1))
            cooldown = iso_minutes(re.search(r'cooldown\s*=\s*"(PT\d+M)"', rule).group(1))
            direction = re.search(r'direction\s*=\s*"(\w+)"', rule).group(1)
            self.assertIn(re.search(r'value\s*=\s*"(\d+)"', rule).group(1), ("1",), "bounds assume one per action")
            if direction == "Increase":
                self.assertLessEqual(window, scaling.POLICY["azure"]["decision_out"], rule)
                self.assertLessEqual(cooldown, scaling.POLICY["azure"]["step_out"], rule)
            else:
                self.assertLessEqual(window, scaling.POLICY["azure"]["decision_in"], rule)
                self.assertLessEqual(cooldown, scaling.POLICY["azure"]["step_in"], rule)

    def test_gcp(self):
        cooldown = int(tf_default("gcp/variables.tf", "cooldown_seconds"))
        self.assertLessEqual(cooldown + 60, scaling.POLICY["gcp"]["step_out"])
        text = read("terraform", "gcp", "compute.tf")
        window = int(re.search(r"scale_in_control \{\s*time_window_sec\s*=\s*(\d+)", text).group(1))
        # The autoscaler's 10-minute stabilisation, and at most one instance per window.
        self.assertLessEqual(max(600, window), scaling.POLICY["gcp"]["decision_in"])
        self.assertLessEqual(window, scaling.POLICY["gcp"]["step_in"])
        self.assertRegex(text, r"max_scaled_in_replicas \{\s*fixed\s*=\s*1")


class Burstable(unittest.TestCase):
    """Calibration caps the target at a burstable type's baseline share of its vCPUs."""

    def test_the_roots_default_types_are_known_burstables(self):
        for path, var, share in (("aws/variables.tf", "instance_type", 0.20),
                                 ("azure/variables.tf", "vm_size", 0.20),
                                 ("gcp/variables.tf", "machine_type", 0.25)):
            self.assertEqual(scaling.baseline_share(tf_default(path, var)), share, (path, var))

    def test_baseline_caps_the_target(self):
        fields = {"cpu_ticks": "100", "hz": "100", "cores": "2"}
        report = {"ok": 100000, "sent": 100000, "elapsed_s": 10.0}
        full = scaling.calibrate(fields, report, 0.6, max_demo_rate=0, instance_type="m7i.large")
        self.assertEqual((full["bound"], full["target_requests_per_instance_per_second"]), ("cpu", 120000))
        t3 = scaling.calibrate(fields, report, 0.6, max_demo_rate=0, instance_type="t3.small")
        # 10 us per request, 2 vCPUs at their 20 % baseline: 40,000 req/s, not 120,000.
        self.assertEqual((t3["bound"], t3["target_requests_per_instance_per_second"]), ("cpu-baseline", 40000))
        e2 = scaling.calibrate(fields, report, 0.6, max_demo_rate=0, instance_type="e2-small")
        self.assertEqual(e2["target_requests_per_instance_per_second"], 50000)
        b = scaling.calibrate(fields, report, 0.6, max_demo_rate=0, instance_type="Standard_B2s")
        self.assertEqual(b["target_requests_per_instance_per_second"], 40000)
        self.assertEqual(scaling.calibrate(fields, report, 0.6, max_demo_rate=0, instance_type="t3.small",
                                           baseline=0.5)["target_requests_per_instance_per_second"], 100000)

    def test_an_unknown_burstable_is_refused(self):
        for name in ("t3.4xlarge", "t4g.huge", "Standard_B2ts_v2", "Standard_B2als_v2"):
            with self.assertRaisesRegex(ValueError, "CAL_BASELINE"):
                scaling.baseline_share(name)
        self.assertEqual(scaling.baseline_share("n2-standard-2"), 1.0)
        self.assertEqual(scaling.baseline_share("Standard_D2s_v5"), 1.0)


class CalibrationLoad(unittest.TestCase):
    def test_within_the_stores_rules(self):
        fs = scaling.calibration_load("firestore", 60)
        self.assertLessEqual(fs["rate"] * scaling.store_ops_per_request(), scaling.FIRESTORE_START_OPS)
        self.assertLessEqual(fs["keys"], scaling.FIRESTORE_START_OPS)  # the populate fits one second
        cosmos = scaling.calibration_load("cosmos", 60)
        budget = scaling.COSMOS_SERVERLESS_RU_S * scaling.COSMOS_HEADROOM
        self.assertLessEqual(cosmos["rate"] * scaling.cosmos_ru_per_request(), budget)
        self.assertLessEqual(cosmos["keys"] * scaling.COSMOS_RU["put"], budget)
        for store in (None, "dynamodb", "firestore", "cosmos"):
            load = scaling.calibration_load(store, 60)
            self.assertTrue(0 < load["ramp_s"] < load["seconds"], load)


class ScaleDemoScript(unittest.TestCase):
    """scripts/deploy/lib.sh's scale_demo prints the expected counts before any load starts (the
    load generator is replaced by `true`, the cloud's count by a constant)."""

    def test_prints_the_expected_instance_counts_before_the_load(self):
        script = ("source scripts/deploy/lib.sh; count() { echo 2 2; }; build_client() { :; }; CANDIDATECTL=true; "
                  "INTERVAL=1 WATCH_AFTER=0 scale_demo gcp http://127.0.0.1:9 200 2 4 firestore count")
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
        out = run.stdout + run.stderr
        expected = out.find("expected instance counts: 2 now -> 4 at full load (700 req/s")
        load = out.find("==> load: 700 req/s (ramp 390s, total 1290s)")
        self.assertGreaterEqual(expected, 0, out)
        self.assertGreater(load, expected, out)
        # The count stayed at 2: the demo says so and fails (test_deploy_scripts runs it end to end).
        self.assertEqual(run.returncode, 1, out)
        self.assertIn("peak: FAIL", out)

    def test_refuses_a_demo_over_the_cosmos_serverless_cap(self):
        script = ("source scripts/deploy/lib.sh; count() { echo 2 2; }; build_client() { :; }; CANDIDATECTL=true; "
                  "INTERVAL=1 WATCH_AFTER=0 scale_demo azure http://127.0.0.1:9 3000 2 4 cosmos count")
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("5000 RU/s", run.stderr)
        self.assertNotIn("==> load:", run.stdout + run.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(os.access(os.path.join(ROOT, "dist", "candidatectl"), os.X_OK),
                     "dist/ has no release build (scripts/build-release.sh; scripts/test.sh builds it first)")
class CalibrationRun(unittest.TestCase):
    """calibrate-instance.sh as it runs on an instance, against a real server on 127.0.0.1."""

    def calibrate(self, server_env=None, script_env=None):
        """Starts the release server with the memory store (plus server_env), runs
        calibrate-instance.sh against it for 3 s (plus script_env); returns the run."""
        http, grpc = free_port(), free_port()
        with tempfile.TemporaryDirectory() as data:
            env = {"PATH": "/usr/bin:/bin", "CANDIDATES_STORE": "memory", "CANDIDATES_DATA_DIR": data,
                   "CANDIDATES_HTTP_ADDR": f"127.0.0.1:{http}", "CANDIDATES_GRPC_ADDR": f"127.0.0.1:{grpc}",
                   "CANDIDATES_DRAIN_PERIOD": "0s", "CANDIDATES_LOG_FORMAT": "json", **(server_env or {})}
            server = subprocess.Popen([os.path.join(ROOT, "dist", "candidate-server")], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{http}/gtg", timeout=1)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                base = {k: v for k, v in os.environ.items() if k not in ("CANDIDATES_API_KEY", "CANDIDATES_API_KEYS_FILE")}
                return subprocess.run(
                    ["bash", os.path.join(ROOT, "scripts", "deploy", "calibrate-instance.sh"), "3", "2000", "1",
                     f"http://127.0.0.1:{http}", str(server.pid)],
                    env=dict(base, CANDIDATECTL=os.path.join(ROOT, "dist", "candidatectl"), KEYS="200",
                             CANDIDATES_ENV_FILE="/nonexistent", **(script_env or {})),
                    capture_output=True, text=True, timeout=120)
            finally:
                server.terminate()
                server.wait(timeout=30)

    def check(self, run, label):
        self.assertEqual(run.returncode, 0, run.stderr)
        fields, report = scaling.parse_calibration(run.stdout)
        result = scaling.calibrate(fields, report, 0.6, max_demo_rate=0)
        print(f"\nlocal calibration ({label}; memory store, 127.0.0.1, 2,000 req/s ramped over 1 s, 3 s): "
              f"{json.dumps(result)}", file=sys.stderr)
        self.assertGreater(result["requests_ok"], 100)
        self.assertEqual(result["errors"], 0)
        self.assertGreater(result["server_cpu_s"], 0)
        self.assertGreater(result["target_requests_per_instance_per_second"], 0)
        p = scaling.plan(result["target_requests_per_instance_per_second"], 2, 4)
        self.assertTrue(p["crosses_threshold"])

    def test_calibration_measures_the_servers_cpu_per_request_and_yields_a_target(self):
        self.check(self.calibrate(), "open server")

    def test_calibration_on_a_deployment_instance_brings_its_own_key_and_takes_it_away(self):
        """As on an instance of a deployment: a key file holding only other keys' digests, writes
        and reads behind it. The script mints a key for the run, adds its digest to the file, and
        removes it afterwards: the file is as it was, and no key crossed to the instance."""
        with tempfile.TemporaryDirectory() as etc:
            keys = os.path.join(etc, "api-keys")
            original = ("# Written at first boot by cloud-init from Terraform (test)\n"
                        f"{'ab' * 32} candidates.read,candidates.write deploy\n")
            with open(keys, "w") as f:
                f.write(original)
            os.chmod(keys, 0o640)
            run = self.calibrate(
                {"CANDIDATES_API_KEYS_FILE": keys, "CANDIDATES_AUTH_WRITE": "scope", "CANDIDATES_AUTH_READ": "scope"},
                {"CANDIDATES_API_KEYS_FILE": keys})
            self.check(run, "key file, reads and writes need a key")
            self.assertIn("a key for this run (calibrate-instance-", run.stderr)
            with open(keys) as f:
                self.assertEqual(f.read(), original)
            self.assertEqual(os.stat(keys).st_mode & 0o777, 0o640)
            self.assertEqual(sorted(os.listdir(etc)), ["api-keys"], "a temporary file was left behind")
            self.assertNotRegex(run.stdout + run.stderr, r"cand_[A-Za-z0-9_-]{43}")

    def test_without_a_key_the_writes_are_refused(self):
        """The same server without the script's key (CANDIDATES_API_KEY set to an unknown one, so
        nothing is minted): every write fails, which is what the minted key prevents."""
        with tempfile.TemporaryDirectory() as etc:
            keys = os.path.join(etc, "api-keys")
            with open(keys, "w") as f:
                f.write(f"{'ab' * 32} candidates.read,candidates.write deploy\n")
            run = self.calibrate({"CANDIDATES_API_KEYS_FILE": keys},
                                 {"CANDIDATES_API_KEYS_FILE": keys, "CANDIDATES_API_KEY": "cand_" + "x" * 43})
            self.assertNotEqual(run.returncode, 0)


if __name__ == "__main__":
    unittest.main()
