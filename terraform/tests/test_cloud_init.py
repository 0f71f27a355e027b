"""Runs terraform/modules/instance-config for real: `terraform init` + `apply` of a throwaway root
module that calls it (the module has no providers, so this works offline), and checks that
cloud-init would get valid YAML: the env file with the shared keys plus the store's, and extra
files byte for byte."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.abspath(os.path.join(HERE, "..", "modules", "instance-config"))
DRAIN_SCRIPT = os.path.abspath(os.path.join(HERE, "..", "aws", "files", "lifecycle-drain.sh"))
DRAIN_UNIT = os.path.abspath(os.path.join(HERE, "..", "aws", "files", "candidates-lifecycle.service"))
ENV = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")


def run_module(arguments):
    """Applies a root module calling instance-config with `arguments` (HCL text); returns its
    outputs."""
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "main.tf"), "w") as f:
            f.write(f'module "config" {{\n  source = "{MODULE}"\n{arguments}\n}}\n'
                    'output "user_data" { value = module.config.user_data }\n'
                    'output "env" { value = module.config.env }\n')
        for command in (["init", "-backend=false", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
            done = subprocess.run(["terraform", *command], cwd=root, env=ENV, capture_output=True, text=True,
                                  timeout=120)
            if done.returncode != 0:
                raise AssertionError(f"terraform {command[0]}: {done.stderr}")
        out = subprocess.run(["terraform", "output", "-json"], cwd=root, env=ENV, capture_output=True, text=True,
                             timeout=60, check=True)
        return {k: v["value"] for k, v in json.loads(out.stdout).items()}


COMMON = """
  deployment             = "test"
  http_port              = 8000
  grpc_port              = 50051
  metrics_port           = 9090
  drain_period_seconds   = 25
  shutdown_grace_seconds = 10
"""


@unittest.skipUnless(shutil.which("terraform"), "terraform not installed")
class InstanceConfig(unittest.TestCase):
    def test_env_file_and_extra_files_survive_rendering(self):
        outputs = run_module(COMMON + f"""
  store_env = {{
    CANDIDATES_STORE          = "cosmos"
    COSMOS_ENDPOINT           = "https://acct.documents.azure.com:443/"
    CANDIDATES_LOG_FORMAT     = "text"
  }}
  files = [
    {{ path = "/usr/local/sbin/candidates-lifecycle-drain", permissions = "0755", content = file("{DRAIN_SCRIPT}") }},
    {{ path = "/etc/systemd/system/candidates-lifecycle.service", permissions = "0644", content = file("{DRAIN_UNIT}") }},
  ]
  enable_units = ["candidates-lifecycle.service"]
""")
        text = outputs["user_data"]
        self.assertTrue(text.startswith("#cloud-config\n"), text[:40])
        doc = yaml.safe_load(text)

        env_file = doc["write_files"][0]
        self.assertEqual(env_file["path"], "/etc/candidates/candidates.env")
        self.assertEqual((env_file["owner"], env_file["permissions"]), ("root:candidates", "0640"))
        pairs = dict(line.split("=", 1) for line in env_file["content"].splitlines()
                     if line and not line.startswith("#"))
        self.assertEqual(pairs, {
            "CANDIDATES_HTTP_ADDR": "0.0.0.0:8000",
            "CANDIDATES_GRPC_ADDR": "0.0.0.0:50051",
            "CANDIDATES_METRICS_ADDR": "0.0.0.0:9090",
            "CANDIDATES_DRAIN_PERIOD": "25s",
            "CANDIDATES_SHUTDOWN_GRACE": "10s",
            "CANDIDATES_GRPC_MAX_CONNECTION_AGE": "5m",
            # The store's settings win over the shared ones.
            "CANDIDATES_LOG_FORMAT": "text",
            "CANDIDATES_STORE": "cosmos",
            "COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/",
        })
        self.assertEqual(pairs, outputs["env"])

        for (path, mode, src), entry in zip(
                [("/usr/local/sbin/candidates-lifecycle-drain", "0755", DRAIN_SCRIPT),
                 ("/etc/systemd/system/candidates-lifecycle.service", "0644", DRAIN_UNIT)],
                doc["write_files"][1:], strict=True):
            self.assertEqual((entry["path"], entry["permissions"]), (path, mode))
            with open(src) as f:
                self.assertEqual(entry["content"].rstrip("\n"), f.read().rstrip("\n"))
        self.assertEqual(doc["runcmd"], [["systemctl", "daemon-reload"],
                                         ["systemctl", "enable", "--now", "candidates-lifecycle.service"]])

    def test_env_only(self):
        doc = yaml.safe_load(run_module(COMMON + '  store_env = { CANDIDATES_STORE = "firestore" }')["user_data"])
        self.assertEqual(len(doc["write_files"]), 1)
        self.assertNotIn("runcmd", doc)
        self.assertIn("CANDIDATES_STORE=firestore", doc["write_files"][0]["content"].splitlines())


if __name__ == "__main__":
    unittest.main()
