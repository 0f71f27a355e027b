"""scripts/{azure,gcp}/serverless-{apply,validate,destroy}.sh with fake CLIs (fakes.FakeCommands:
terraform, az, gcloud, crane) and a local stand-in for the endpoint (test_deploy_scripts.Api):
nothing leaves this machine. What they check: the right root and variables, the one deploy of the
Functions zip, the Cloud Run image pushed before the service and run by digest, the registry token
on standard input only, the contract check's targets, the write key never on a command line."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from fakes import FakeCommands
from test_deploy_scripts import AZURE_ENV, KEY, ROOT, Api, read_lines, write_fake_ctl

DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "us-central1-docker.pkg.dev/proj/candidates-run"


class CloudScripts(unittest.TestCase):
    def setUp(self):
        self.fake = FakeCommands()
        self.addCleanup(self.fake.close)
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        os.makedirs(os.path.join(self.tmp, "release"))
        write_fake_ctl(os.path.join(self.tmp, "release", "candidatectl"), self.tmp)
        self.api = Api()
        self.addCleanup(self.api.close)

    def run_script(self, cloud, script, **env):
        drop = ("CANDIDATES_API_KEY", "GOOGLE_CLOUD_PROJECT", "GCP_REGION", "AZURE_LOCATION", "STACK")
        base = {k: v for k, v in os.environ.items() if k not in drop}
        full = dict(base, PATH=self.fake.env()["PATH"], CARGO_TARGET_DIR=self.tmp, HEALTH_TIMEOUT="30",
                    HTTP_RETRY_DELAY="0", CANDIDATES_AZURE_CONFIG_DIR=os.path.join(self.tmp, "az"), **AZURE_ENV)
        full.update(env)
        return subprocess.run(["bash", os.path.join("scripts", cloud, script)], cwd=ROOT, env=full,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    def assert_checked(self, result, ctl_call):
        out = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, out)
        self.assertEqual(read_lines(os.path.join(self.tmp, "ctl-calls")), [ctl_call])
        self.assertEqual(read_lines(os.path.join(self.tmp, "ctl-keys")), [KEY])
        probes = [a for p, a in self.api.requests if p.startswith("/candidate/anonymous-write-probe")]
        self.assertEqual(probes, [None] * 6)
        self.assertNotIn(KEY, out + " ".join(" ".join(c) for c in self.fake.calls()))

    def assert_root(self, root):
        calls = self.fake.calls("terraform")
        self.assertTrue(calls)
        for call in calls:
            self.assertIn("-chdir=" + os.path.join(ROOT, "terraform", "serverless", root), call)

    # --- Azure ---------------------------------------------------------------------------------

    def azure_fakes(self):
        self.fake.add("az", [(["account", "show"], AZURE_ENV["ARM_CLIENT_ID"], 0)])
        self.fake.add("terraform", [(["output -raw function_url"], self.api.url + "/", 0),
                                    (["output -raw write_key"], KEY, 0),
                                    (["output -raw resource_group"], "candidates-fn-rg", 0),
                                    (["output -raw function_app_name"], "candidates-fn-0123abcd", 0)])

    def test_azure_validate_checks_rest_with_the_write_key(self):
        self.azure_fakes()
        result = self.run_script("azure", "serverless-validate.sh")
        self.assert_checked(result, f"check --rest-target {self.api.url} --skip-grpc")
        self.assert_root("azure")

    def test_azure_apply_deploys_the_zip_once_after_the_apply(self):
        self.azure_fakes()
        package = os.path.join(self.tmp, "app.zip")
        open(package, "w").close()
        result = self.run_script("azure", "serverless-apply.sh", SKIP_BUILD="1", FUNCTIONS_ZIP=package,
                                 AUTO_APPROVE="1", AZURE_LOCATION="westeurope", STACK="demo")
        self.assert_checked(result, f"check --rest-target {self.api.url} --skip-grpc")
        applies = [c for c in self.fake.calls("terraform") if "apply" in c]
        self.assertEqual(len(applies), 1)
        args = " ".join(applies[0])
        for var in ("location=westeurope", "name=demo-fn"):
            self.assertIn(f"-var {var}", args)
        deploys = [c for c in self.fake.calls("az") if "config-zip" in c]
        self.assertEqual(deploys, [["az", "functionapp", "deployment", "source", "config-zip", "--resource-group",
                                    "candidates-fn-rg", "--name", "candidates-fn-0123abcd", "--src", package,
                                    "--output", "none"]])
        # Apply, then the deploy: the outputs it reads exist only after the apply. (The provider's
        # key-less AzureWebJobsStorage is removed by the root itself: function.tf.)
        calls = self.fake.calls()
        apply = max(i for i, c in enumerate(calls) if c[0] == "terraform" and "apply" in c)
        deploy = next(i for i, c in enumerate(calls) if "config-zip" in c)
        self.assertLess(apply, deploy)

    def test_azure_apply_needs_the_package(self):
        self.azure_fakes()
        result = self.run_script("azure", "serverless-apply.sh", SKIP_BUILD="1",
                                 FUNCTIONS_ZIP=os.path.join(self.tmp, "missing.zip"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("run scripts/azure/serverless-build.sh", result.stderr)
        self.assertFalse([c for c in self.fake.calls("terraform") if "apply" in c])

    def test_azure_destroy_passes_the_root_its_variables(self):
        self.azure_fakes()
        result = self.run_script("azure", "serverless-destroy.sh", AUTO_APPROVE="1", STACK="demo")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        destroy = [c for c in self.fake.calls("terraform") if "destroy" in c]
        self.assertEqual(len(destroy), 1)
        self.assertIn("-var name=demo-fn", " ".join(destroy[0]))
        self.assertIn("-auto-approve", destroy[0])
        self.assert_root("azure")

    # --- Google Cloud --------------------------------------------------------------------------

    def gcp_fakes(self):
        self.fake.add("gcloud", [(["print-access-token"], "registry-token", 0)])
        self.fake.add("terraform", [(["output -raw service_url"], self.api.url, 0),
                                    (["output -raw write_key"], KEY, 0),
                                    (["output -raw repository_url"], REPOSITORY, 0)])

    def image_layout(self):
        layout = os.path.join(self.tmp, "image")
        os.makedirs(layout)
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [{"digest": DIGEST}]}, f)
        return layout

    def test_gcp_validate_checks_rest_and_grpc_on_the_one_url(self):
        self.gcp_fakes()
        result = self.run_script("gcp", "serverless-validate.sh", GOOGLE_CLOUD_PROJECT="proj")
        self.assert_checked(result, f"check --rest-target {self.api.url} --grpc-target {self.api.url}")
        self.assert_root("gcp")

    def test_gcp_validate_can_skip_grpc(self):
        self.gcp_fakes()
        result = self.run_script("gcp", "serverless-validate.sh", GOOGLE_CLOUD_PROJECT="proj", SKIP_GRPC="1")
        self.assert_checked(result, f"check --rest-target {self.api.url} --skip-grpc")

    def test_gcp_apply_pushes_before_the_service_and_runs_the_image_by_digest(self):
        self.gcp_fakes()
        self.fake.add("crane", [], stdin=True)
        layout = self.image_layout()
        result = self.run_script("gcp", "serverless-apply.sh", GOOGLE_CLOUD_PROJECT="proj", SKIP_BUILD="1",
                                 IMAGE_DIR=layout, IMAGE_TAG="v1", AUTO_APPROVE="1", STACK="demo")
        self.assert_checked(result, f"check --rest-target {self.api.url} --grpc-target {self.api.url}")
        applies = [c for c in self.fake.calls("terraform") if "apply" in c]
        self.assertEqual(len(applies), 2, applies)
        first, second = (" ".join(a) for a in applies)
        self.assertIn("-target=google_artifact_registry_repository.images", first)
        self.assertNotIn("image=", first)
        self.assertNotIn("-target", second)
        self.assertIn(f"-var image={REPOSITORY}/candidates@{DIGEST}", second)
        for var in ("project_id=proj", "region=us-central1", "name=demo-run"):
            self.assertIn(f"-var {var}", first)
            self.assertIn(f"-var {var}", second)
        crane = self.fake.calls("crane")
        self.assertEqual(crane, [["crane", "auth", "login", "us-central1-docker.pkg.dev", "-u", "oauth2accesstoken",
                                  "--password-stdin"],
                                 ["crane", "push", layout, f"{REPOSITORY}/candidates:v1"]])
        # The registry token went on standard input, never on a command line.
        logins = [extra.get("stdin") for args, extra in self.fake.extras("crane") if args[:2] == ["auth", "login"]]
        self.assertEqual([s.strip() for s in logins], ["registry-token"])
        self.assertNotIn("registry-token", " ".join(" ".join(c) for c in self.fake.calls()))
        # Repository, push, service: in that order.
        calls = self.fake.calls()
        index = [i for i, c in enumerate(calls) if c[0] == "terraform" and "apply" in c]
        push = next(i for i, c in enumerate(calls) if c[:2] == ["crane", "push"])
        self.assertLess(index[0], push)
        self.assertLess(push, index[1])

    def test_gcp_apply_says_what_to_install_without_crane_or_skopeo(self):
        self.gcp_fakes()
        layout = self.image_layout()
        # A PATH with the fakes and the basics only, so that a crane or skopeo on this machine
        # does not count.
        bin_dir = os.path.join(self.tmp, "bin")
        os.makedirs(bin_dir)
        for tool in ("bash", "python3", "git", "dirname", "cat", "date", "mkdir", "chmod", "mv", "rm", "sed",
                     "curl", "sleep", "mktemp"):
            # python3 is this interpreter itself: a pyenv shim on PATH is a script that needs tools
            # this PATH leaves out, and the fake gcloud would fail before the push is reached.
            path = sys.executable if tool == "python3" else shutil.which(tool)
            if path:
                os.symlink(path, os.path.join(bin_dir, tool))
        result = self.run_script("gcp", "serverless-apply.sh", GOOGLE_CLOUD_PROJECT="proj", SKIP_BUILD="1",
                                 IMAGE_DIR=layout, AUTO_APPROVE="1", PATH=f"{self.fake.path}:{bin_dir}")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no crane or skopeo", result.stderr)
        applies = [c for c in self.fake.calls("terraform") if "apply" in c]
        self.assertEqual(len(applies), 1, "only the repository was applied")

    def test_gcp_destroy_passes_the_root_its_variables(self):
        self.gcp_fakes()
        result = self.run_script("gcp", "serverless-destroy.sh", GOOGLE_CLOUD_PROJECT="proj", AUTO_APPROVE="1",
                                 GCP_REGION="europe-west1")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        destroy = [c for c in self.fake.calls("terraform") if "destroy" in c]
        self.assertEqual(len(destroy), 1)
        for var in ("project_id=proj", "region=europe-west1", "name=candidates-run"):
            self.assertIn(f"-var {var}", " ".join(destroy[0]))
        self.assert_root("gcp")


if __name__ == "__main__":
    unittest.main()
