"""Runs terraform/modules/instance-config for real: `terraform init` + `apply` of a throwaway root
module that calls it (the module has no providers, so this works offline), and checks that
cloud-init would get valid YAML: the env file with the shared keys plus the store's and the access
settings, the API key file, and extra files byte for byte. And a root's access.tf (terraform_data is
Terraform's own, so it applies offline too): the write key it makes, what reaches user data (its
digest, never the key), that a second plan keeps it and `-replace` rotates it."""
import hashlib
import json
import os
import re
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


def terraform(root, *args, check=True):
    done = subprocess.run(["terraform", *args], cwd=root, env=ENV, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"terraform {args[0]}: {done.stdout}\n{done.stderr}")
    return done


def write_root(root, arguments):
    with open(os.path.join(root, "main.tf"), "w") as f:
        f.write(f'module "config" {{\n  source = "{MODULE}"\n{arguments}\n}}\n'
                'output "user_data" { value = module.config.user_data }\n'
                'output "env" { value = module.config.env }\n')


def outputs(root):
    out = terraform(root, "output", "-json")
    return {k: v["value"] for k, v in json.loads(out.stdout).items()}


def run_module(arguments):
    """Applies a root module calling instance-config with `arguments` (HCL text); returns its
    outputs."""
    with tempfile.TemporaryDirectory() as root:
        write_root(root, arguments)
        terraform(root, "init", "-backend=false", "-input=false")
        terraform(root, "apply", "-auto-approve", "-input=false")
        return outputs(root)


def plan_error(arguments):
    """`terraform plan` of a root calling instance-config with `arguments`: its error output (the
    plan must fail)."""
    with tempfile.TemporaryDirectory() as root:
        write_root(root, arguments)
        terraform(root, "init", "-backend=false", "-input=false")
        done = terraform(root, "plan", "-input=false", "-no-color", check=False)
        if done.returncode == 0:
            raise AssertionError(f"the plan was accepted: {arguments}")
        return " ".join(done.stderr.split())


def env_pairs(entry):
    return dict(line.split("=", 1) for line in entry["content"].splitlines() if line and not line.startswith("#"))


DIGEST = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"  # sha256("x")
ACCESS = {"CANDIDATES_API_KEYS_FILE": "/etc/candidates/api-keys", "CANDIDATES_AUTH_WRITE": "scope",
          "CANDIDATES_AUTH_READ": "anyone"}


COMMON = """
  deployment             = "test"
  http_port              = 8000
  grpc_port              = 50051
  metrics_port           = 9090
  drain_period_seconds   = 25
  shutdown_grace_seconds = 10
"""
NO_KEYS = "  api_key_lines          = []\n"


@unittest.skipUnless(shutil.which("terraform"), "terraform not installed")
class InstanceConfig(unittest.TestCase):
    def test_env_file_and_extra_files_survive_rendering(self):
        outputs = run_module(COMMON + NO_KEYS + f"""
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
        pairs = env_pairs(env_file)
        self.assertEqual(pairs, {
            **ACCESS,
            "CANDIDATES_HTTP_ADDR": "0.0.0.0:8000",
            "CANDIDATES_GRPC_ADDR": "0.0.0.0:50051",
            "CANDIDATES_METRICS_ADDR": "0.0.0.0:9090",
            "CANDIDATES_DRAIN_PERIOD": "25s",
            "CANDIDATES_SHUTDOWN_GRACE": "10s",
            "CANDIDATES_GRPC_MAX_CONNECTION_AGE": "5m",
            # No API explorer in deployments unless asked (the module's api_explorer default).
            "CANDIDATES_API_EXPLORER": "false",
            # The store's settings win over the shared ones.
            "CANDIDATES_LOG_FORMAT": "text",
            "CANDIDATES_STORE": "cosmos",
            "COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/",
        })
        self.assertEqual(pairs, outputs["env"])

        for (path, mode, src), entry in zip(
                [("/usr/local/sbin/candidates-lifecycle-drain", "0755", DRAIN_SCRIPT),
                 ("/etc/systemd/system/candidates-lifecycle.service", "0644", DRAIN_UNIT)],
                doc["write_files"][2:], strict=True):
            self.assertEqual((entry["path"], entry["permissions"]), (path, mode))
            with open(src) as f:
                self.assertEqual(entry["content"].rstrip("\n"), f.read().rstrip("\n"))
        self.assertEqual(doc["runcmd"], [["systemctl", "daemon-reload"],
                                         ["systemctl", "enable", "--now", "candidates-lifecycle.service"]])

    def test_env_only(self):
        doc = yaml.safe_load(run_module(COMMON + NO_KEYS + '  store_env = { CANDIDATES_STORE = "firestore" }')["user_data"])
        self.assertEqual([f["path"] for f in doc["write_files"]],
                         ["/etc/candidates/candidates.env", "/etc/candidates/api-keys"])
        self.assertNotIn("runcmd", doc)
        self.assertIn("CANDIDATES_STORE=firestore", doc["write_files"][0]["content"].splitlines())

    def test_key_file_and_access_settings(self):
        """The key file holds exactly the lines given, as cloud-init writes it (owner and octal mode
        as strings: cloud-init falls back to 0644 on a mode it cannot decode); no store setting
        loosens the write rule; OIDC settings appear only when given."""
        lines = [f"{DIGEST} candidates.read,candidates.write deploy", f"{DIGEST[::-1]} candidates.read dashboard"]
        outputs = run_module(COMMON + f"""
  api_key_lines    = {json.dumps(lines)}
  auth_read        = "scope"
  oidc_issuer      = "https://login.microsoftonline.com/tenant/v2.0"
  oidc_audience    = "api://candidates"
  oidc_scope_claim = "roles"
  store_env = {{
    CANDIDATES_STORE      = "dynamodb"
    CANDIDATES_AUTH_WRITE = "anyone"
    CANDIDATES_AUTH_READ  = "anyone"
  }}
""")
        doc = yaml.safe_load(outputs["user_data"])
        keys = doc["write_files"][1]
        self.assertEqual((keys["path"], keys["owner"], keys["permissions"]),
                         ("/etc/candidates/api-keys", "root:candidates", "0640"))
        self.assertIsInstance(keys["permissions"], str)
        self.assertEqual([l for l in keys["content"].splitlines() if not l.startswith("#")], lines)
        pairs = env_pairs(doc["write_files"][0])
        self.assertEqual({k: v for k, v in pairs.items() if "AUTH" in k or "API_KEYS" in k or "OIDC" in k}, {
            "CANDIDATES_API_KEYS_FILE": "/etc/candidates/api-keys",
            "CANDIDATES_AUTH_WRITE": "scope",
            "CANDIDATES_AUTH_READ": "scope",
            "CANDIDATES_OIDC_ISSUER": "https://login.microsoftonline.com/tenant/v2.0",
            "CANDIDATES_OIDC_AUDIENCE": "api://candidates",
            "CANDIDATES_OIDC_SCOPE_CLAIM": "roles",
        })

    def test_bad_access_settings_are_refused_at_plan(self):
        base = COMMON + '  store_env = { CANDIDATES_STORE = "firestore" }\n'
        none = '  api_key_lines = []\n'
        key = "cand_" + "a" * 43
        for arguments, message in (
                (f'  api_key_lines = ["{key} candidates.write mine"]', "the SHA-256 digest of a key (never the key)"),
                (f'  api_key_lines = ["{DIGEST} candidates.write a", "{DIGEST.upper()} candidates.read b"]',
                 "Two API key lines hold the same digest"),
                (f'  api_key_lines = ["{DIGEST} candidates.admin mine"]', "candidates.read and/or candidates.write"),
                (f'  api_key_lines = ["{DIGEST} candidates.write two words"]', "Each API key line"),
                (none + '  auth_read = "everyone"', "auth_read is anyone, authenticated or scope"),
                (none + '  oidc_issuer = "https://issuer.example"', "oidc_issuer and oidc_audience go together"),
                (none + '  oidc_issuer = "http://issuer.example"\n  oidc_audience = "a"', "oidc_issuer is an https:// URL"),
                (none + '  oidc_issuer = "https://issuer.example"\n  oidc_audience = "a\\nCANDIDATES_AUTH_WRITE=anyone"',
                 "oidc_audience holds no spaces"),
        ):
            with self.subTest(arguments=arguments):
                error = plan_error(base + arguments)
                self.assertIn(message, error)


@unittest.skipUnless(shutil.which("terraform"), "terraform not installed")
class RootWriteKey(unittest.TestCase):
    """terraform/aws/access.tf (the same file in every root, invariants/access.rs) with the module
    call the roots make, applied for real."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        shutil.copy(os.path.join(HERE, "..", "aws", "access.tf"), self.root)
        write_root(self.root, COMMON + """
  api_key_lines    = local.api_key_lines
  auth_read        = var.auth_read
  oidc_issuer      = var.oidc_issuer
  oidc_audience    = var.oidc_audience
  oidc_scope_claim = var.oidc_scope_claim
  store_env        = { CANDIDATES_STORE = "dynamodb" }
""")
        terraform(self.root, "init", "-backend=false", "-input=false")

    def key(self):
        return terraform(self.root, "output", "-raw", "write_key").stdout

    def test_the_key_reaches_the_instances_only_as_its_digest_and_stays_until_replaced(self):
        applied = terraform(self.root, "apply", "-auto-approve", "-input=false", "-no-color")
        key = self.key()
        self.assertRegex(key, r"^cand_[A-Za-z0-9_-]{43}$")
        self.assertNotIn(key, applied.stdout + applied.stderr)
        listed = json.loads(terraform(self.root, "output", "-json").stdout)
        self.assertTrue(listed["write_key"]["sensitive"])
        self.assertIn("write_key = <sensitive>", terraform(self.root, "output", "-no-color").stdout)

        user_data = outputs(self.root)["user_data"]
        digest = hashlib.sha256(key.encode()).hexdigest()
        self.assertNotIn(key, user_data)
        self.assertNotIn(key[len("cand_"):], user_data)
        doc = yaml.safe_load(user_data)
        keys = [l for l in doc["write_files"][1]["content"].splitlines() if not l.startswith("#")]
        self.assertEqual(keys, [f"{digest} candidates.read,candidates.write deploy"])

        # uuid() is new on every plan; ignore_changes keeps the key.
        replan = terraform(self.root, "plan", "-detailed-exitcode", "-input=false", "-no-color", check=False)
        self.assertEqual(replan.returncode, 0, replan.stdout + replan.stderr)
        self.assertEqual(self.key(), key)

        # Rotation, as the docs say; the operator's line for the old key keeps it valid meanwhile.
        old_line = f"{digest} candidates.read,candidates.write deploy-previous"
        rotated = terraform(self.root, "apply", "-auto-approve", "-input=false", "-no-color",
                            "-replace=terraform_data.write_key", "-var", f"api_key_lines=[\"{old_line}\"]")
        new_key = self.key()
        self.assertRegex(new_key, r"^cand_[A-Za-z0-9_-]{43}$")
        self.assertNotEqual(new_key, key)
        self.assertNotIn(new_key, rotated.stdout + rotated.stderr)
        self.assertNotIn(key, rotated.stdout + rotated.stderr, "a rotation must not print the old key")
        # Nothing Terraform shows prints the key: show, state show, a planned rotation or destroy.
        for args in (["show", "-no-color"], ["state", "show", "terraform_data.write_key"],
                     ["plan", "-no-color", "-input=false", "-replace=terraform_data.write_key"],
                     ["plan", "-no-color", "-input=false", "-destroy"]):
            shown = terraform(self.root, *args)
            self.assertNotIn(new_key, shown.stdout + shown.stderr, args)
            self.assertNotIn(new_key[len("cand_"):], shown.stdout + shown.stderr, args)
        doc = yaml.safe_load(outputs(self.root)["user_data"])
        keys = [l for l in doc["write_files"][1]["content"].splitlines() if not l.startswith("#")]
        self.assertEqual(keys, [f"{hashlib.sha256(new_key.encode()).hexdigest()} candidates.read,candidates.write deploy",
                                old_line])

    def test_keys_differ_between_deployments(self):
        seen = set()
        for _ in range(2):
            terraform(self.root, "apply", "-auto-approve", "-input=false", "-replace=terraform_data.write_key")
            seen.add(self.key())
        self.assertEqual(len(seen), 2)
        for key in seen:
            # 43 hex digits of two uuid()s: go-uuid fills every bit (no RFC 4122 version digit).
            self.assertRegex(key, r"^cand_[0-9a-f]{43}$")


if __name__ == "__main__":
    unittest.main()
