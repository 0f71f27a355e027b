"""scripts/aws/serverless-{build,validate,destroy}.sh with fake CLIs (fakes.FakeCommands) and a
local stand-in for the function URL (test_deploy_scripts.Api): nothing leaves this machine."""
import os
import shutil
import subprocess
import tempfile
import unittest

from fakes import FakeCommands
from test_deploy_scripts import KEY, ROOT, Api, read_lines, write_fake_ctl


def run(script, fake, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("CANDIDATES_API_KEY", "LAMBDA_ARCH", "LAMBDA_ZIP")}
    full = dict(base, PATH=fake.env()["PATH"], HEALTH_TIMEOUT="30", HTTP_RETRY_DELAY="0", **env)
    return subprocess.run(["bash", os.path.join("scripts", "aws", script)], cwd=ROOT, env=full,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


class ServerlessScripts(unittest.TestCase):
    def setUp(self):
        self.fake = FakeCommands()
        self.addCleanup(self.fake.close)
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def test_validate_checks_the_function_url_with_the_write_key(self):
        api = Api()
        self.addCleanup(api.close)
        os.makedirs(os.path.join(self.tmp, "release"))
        write_fake_ctl(os.path.join(self.tmp, "release", "candidatectl"), self.tmp)
        # AWS writes the URL with a trailing slash.
        self.fake.add("terraform", [(["output -raw function_url"], api.url + "/", 0),
                                    (["output -raw write_key"], KEY, 0)])
        self.fake.add("aws", [(["sts", "get-caller-identity"], "arn", 0)])
        result = run("serverless-validate.sh", self.fake, CARGO_TARGET_DIR=self.tmp)
        out = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, out)
        for call in self.fake.calls("terraform"):
            self.assertIn("-chdir=" + os.path.join(ROOT, "terraform", "serverless", "aws"), call)
        self.assertEqual(read_lines(os.path.join(self.tmp, "ctl-calls")),
                         [f"check --rest-target {api.url} --skip-grpc"])
        self.assertEqual(read_lines(os.path.join(self.tmp, "ctl-keys")), [KEY])
        probes = [a for p, a in api.requests if p.startswith("/candidate/anonymous-write-probe")]
        self.assertEqual(probes, [None] * 6)
        self.assertEqual([a for p, a in api.requests if "details" in p], [f"Bearer {KEY}"])
        self.assertNotIn(KEY, out + " ".join(" ".join(c) for c in self.fake.calls()))

    def test_validate_fails_when_writes_are_open(self):
        api = Api(open_writes=True)
        self.addCleanup(api.close)
        os.makedirs(os.path.join(self.tmp, "release"))
        write_fake_ctl(os.path.join(self.tmp, "release", "candidatectl"), self.tmp)
        self.fake.add("terraform", [(["output -raw function_url"], api.url + "/", 0),
                                    (["output -raw write_key"], KEY, 0)])
        self.fake.add("aws", [(["sts", "get-caller-identity"], "arn", 0)])
        result = run("serverless-validate.sh", self.fake, CARGO_TARGET_DIR=self.tmp)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("the deployment is open for writes", result.stderr)

    def test_destroy_passes_the_root_its_variables(self):
        self.fake.add("aws", [(["sts", "get-caller-identity"], "arn", 0)])
        self.fake.add("terraform", [])
        package = os.path.join(self.tmp, "gone", "bootstrap-x86_64.zip")
        result = run("serverless-destroy.sh", self.fake, LAMBDA_ARCH="x86_64", LAMBDA_ZIP=package,
                     AUTO_APPROVE="1", AWS_REGION="eu-west-1", STACK="demo")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        destroy = [c for c in self.fake.calls("terraform") if "destroy" in c]
        self.assertEqual(len(destroy), 1, self.fake.calls("terraform"))
        args = " ".join(destroy[0])
        for var in ("region=eu-west-1", "name=demo-fn", "architecture=x86_64", f"package={package}"):
            self.assertIn(f"-var {var}", args)
        self.assertIn("-auto-approve", args)
        # filebase64sha256 needs a file even on destroy: an empty stand-in.
        self.assertTrue(os.path.isfile(package))

    def test_apply_refuses_a_reservation_the_account_cannot_give(self):
        package = os.path.join(self.tmp, "bootstrap-arm64.zip")
        open(package, "wb").close()
        self.fake.add("aws", [(["sts", "get-caller-identity"], "arn", 0),
                              (["get-account-settings"], "50", 0),
                              (["get-function-concurrency"], "None", 0)])
        self.fake.add("terraform", [])
        result = run("serverless-apply.sh", self.fake, SKIP_BUILD="1", LAMBDA_ZIP=package,
                     RESERVED_CONCURRENCY="10", AUTO_APPROVE="1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("would leave 40 unreserved executions; Lambda needs 100", result.stderr)
        self.assertFalse([c for c in self.fake.calls("terraform") if "apply" in c])

    def test_apply_passes_a_reservation_the_account_can_give(self):
        package = os.path.join(self.tmp, "bootstrap-arm64.zip")
        open(package, "wb").close()
        self.fake.add("aws", [(["sts", "get-caller-identity"], "arn", 0),
                              (["get-account-settings"], "990", 0),
                              (["get-function-concurrency"], "10", 0)])
        self.fake.add("terraform", [(["output"], "", 1)])
        result = run("serverless-apply.sh", self.fake, SKIP_BUILD="1", LAMBDA_ZIP=package,
                     RESERVED_CONCURRENCY="20", AUTO_APPROVE="1")
        applies = [" ".join(c) for c in self.fake.calls("terraform") if "apply" in c]
        self.assertEqual(len(applies), 1, result.stdout + result.stderr)
        self.assertIn("-var reserved_concurrency=20", applies[0])

    def test_build_refuses_a_cross_build_it_cannot_do(self):
        # This machine's other architecture, with no Rust target installed for it.
        self.fake.add("uname", [(["-m"], "x86_64", 0)])
        self.fake.add("rustup", [(["target", "list"], "x86_64-unknown-linux-gnu", 0)])
        self.fake.add("cargo", [])
        result = run("serverless-build.sh", self.fake, LAMBDA_ARCH="arm64",
                     LAMBDA_ZIP=os.path.join(self.tmp, "b.zip"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("rustup target add aarch64-unknown-linux-gnu", result.stderr)
        self.assertEqual(self.fake.calls("cargo"), [])


if __name__ == "__main__":
    unittest.main()
