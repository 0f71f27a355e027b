#!/usr/bin/env python3
"""Builds the Cloud Run image of candidate-server as an OCI image layout, without a container
daemon or any tool beyond Python's standard library and ldd.

The image has one layer and nothing but what the binary needs to run:

    /usr/local/bin/candidate-server       the binary (the entrypoint; no shell, no package manager)
    /lib64/ld-linux-x86-64.so.2, /lib/x86_64-linux-gnu/lib*.so.*
                                          its dynamic loader and shared libraries, as ldd finds
                                          them on the build machine (none for a static binary)
    /etc/ssl/certs/ca-certificates.crt    CA certificates (the cloud stores' HTTPS; SSL_CERT_FILE)
    /etc/passwd, /etc/group               root and nonroot (65532), the user it runs as
    /home/nonroot                         nonroot's home and working directory (writable by it)
    /tmp                                  1777

The config runs it as 65532:65532 with CANDIDATES_SINGLE_PORT=true (REST and gRPC on one port),
CANDIDATES_HTTP_ADDR=0.0.0.0:8080 (Cloud Run's `PORT` replaces the port), /metrics on
127.0.0.1:9090 only, JSON logs, and a drain
that fits Cloud Run's 10 s between SIGTERM and SIGKILL. The build is reproducible: fixed
timestamps (SOURCE_DATE_EPOCH, default 0), owners and order, gzip without a name or time.

    serverless/cloud-run/build-image.py --binary target/release/candidate-server --output target/cloud-run/image

writes the layout (oci-layout, index.json, blobs/sha256/...) to --output, and with --archive also a
tar of it (an "oci-archive"). Push with e.g. `crane push target/cloud-run/image <registry>/<repo>:<tag>`
or `skopeo copy oci:target/cloud-run/image docker://<registry>/<repo>:<tag>` (docs/serverless.md).
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

BINARY_PATH = "usr/local/bin/candidate-server"
CA_PATH = "etc/ssl/certs/ca-certificates.crt"
NONROOT = 65532
PORT = 8080

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX = "application/vnd.oci.image.index.v1+json"


def shared_objects(binary):
    """(path in the image, path on this machine) of the dynamic loader and every library ldd
    resolves for the binary; [] for a static binary."""
    result = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    text = result.stdout + result.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if result.returncode != 0:
        sys.exit(f"build-image: ldd {binary} failed: {text.strip()}")
    found = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            sys.exit(f"build-image: {binary}: a library is missing: {line}")
        match = re.match(r"^(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$", line)
        if match:  # linux-vdso.so.1 has no path: the kernel provides it
            found.append((match.group(1).lstrip("/"), os.path.realpath(match.group(1))))
    return found


def elf_machine(binary):
    """The image architecture of an ELF executable (OCI names)."""
    with open(binary, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF":
        sys.exit(f"build-image: {binary} is not an ELF executable")
    machine = int.from_bytes(header[18:20], "little")
    return {0x3E: "amd64", 0xB7: "arm64"}.get(machine) or sys.exit(f"build-image: unsupported ELF machine {machine:#x}")


def layer_tar(binary, ca_file, mtime):
    """The one layer, as an uncompressed tar (bytes): sorted entries, fixed owners and times."""
    files = {
        BINARY_PATH: (binary, 0o755),
        CA_PATH: (ca_file, 0o644),
        "etc/passwd": (
            b"root:x:0:0:root:/root:/sbin/nologin\n"
            b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
            0o644,
        ),
        "etc/group": (b"root:x:0:\nnonroot:x:65532:\n", 0o644),
    }
    for inside, outside in shared_objects(binary):
        files[inside] = (outside, 0o755)
    dirs = {"tmp": (0o1777, 0), "home/nonroot": (0o755, NONROOT)}
    for path in files:
        parent = os.path.dirname(path)
        while parent:
            dirs.setdefault(parent, (0o755, 0))
            parent = os.path.dirname(parent)
    for path in list(dirs):
        parent = os.path.dirname(path)
        while parent:
            dirs.setdefault(parent, (0o755, 0))
            parent = os.path.dirname(parent)

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(set(dirs) | set(files)):
            info = tarfile.TarInfo(path)
            info.mtime = mtime
            info.uname = info.gname = ""
            if path in dirs:
                mode, owner = dirs[path]
                info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, owner, owner
                tar.addfile(info)
            else:
                source, mode = files[path]
                data = source if isinstance(source, bytes) else open(source, "rb").read()
                info.mode, info.size = mode, len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image_config(arch, diff_id, created):
    return {
        "created": created,
        "architecture": arch,
        "os": "linux",
        "config": {
            "User": f"{NONROOT}:{NONROOT}",
            "Entrypoint": ["/" + BINARY_PATH],
            "Env": [
                "PATH=/usr/local/bin",
                "SSL_CERT_FILE=/" + CA_PATH,
                "CANDIDATES_SINGLE_PORT=true",
                f"CANDIDATES_HTTP_ADDR=0.0.0.0:{PORT}",
                "CANDIDATES_LOG_FORMAT=json",
                # Cloud Run routes only PORT: /metrics stays inside the instance (a sidecar may scrape it).
                "CANDIDATES_METRICS_ADDR=127.0.0.1:9090",
                # Cloud Run kills 10 s after SIGTERM, and routes without our health checks: no drain.
                "CANDIDATES_DRAIN_PERIOD=0s",
                "CANDIDATES_SHUTDOWN_GRACE=8s",
            ],
            "ExposedPorts": {f"{PORT}/tcp": {}},
            "WorkingDir": "/home/nonroot",
            "StopSignal": "SIGTERM",
            "Labels": {
                "org.opencontainers.image.title": "candidate-server",
                "org.opencontainers.image.description": "candidates.v1.CandidateService: REST and gRPC on one port",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "serverless/cloud-run/build-image.py"}],
    }


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/release/candidate-server")
    parser.add_argument("--output", default="target/cloud-run/image", help="OCI layout directory (replaced)")
    parser.add_argument("--archive", help="also write the layout as a tar here (oci-archive)")
    parser.add_argument("--ca-file", default="/etc/ssl/certs/ca-certificates.crt")
    parser.add_argument("--tag", default="latest", help="org.opencontainers.image.ref.name in index.json")
    parser.add_argument("--gzip-level", type=int, default=9, choices=range(1, 10))
    args = parser.parse_args()

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    arch = elf_machine(args.binary)
    tar = layer_tar(args.binary, args.ca_file, epoch)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    layer = gzip.compress(tar, compresslevel=args.gzip_level, mtime=0)

    if os.path.exists(args.output):
        shutil.rmtree(args.output)
    os.makedirs(os.path.join(args.output, "blobs", "sha256"))
    with open(os.path.join(args.output, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    layer_desc = {"mediaType": LAYER_GZIP, **write_blob(args.output, layer)}
    config_desc = {"mediaType": CONFIG, **write_blob(args.output, canonical(image_config(arch, diff_id, created)))}
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc, "layers": [layer_desc]}
    manifest_desc = {
        "mediaType": MANIFEST,
        **write_blob(args.output, canonical(manifest)),
        "platform": {"architecture": arch, "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": args.tag},
    }
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest_desc]}
    with open(os.path.join(args.output, "index.json"), "wb") as f:
        f.write(canonical(index))

    if args.archive:
        with tarfile.open(args.archive, mode="w", format=tarfile.USTAR_FORMAT) as archive:
            for root, dirnames, filenames in os.walk(args.output):
                dirnames.sort()
                if root != args.output:
                    info = tarfile.TarInfo(os.path.relpath(root, args.output))
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
                    archive.addfile(info)
                for name in sorted(filenames):
                    path = os.path.join(root, name)
                    info = archive.gettarinfo(path, os.path.relpath(path, args.output))
                    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = epoch, 0, 0, "", "", 0o644
                    with open(path, "rb") as f:
                        archive.addfile(info, f)

    print(
        json.dumps(
            {
                "layout": args.output,
                "manifest": manifest_desc["digest"],
                "layer_bytes": len(layer),
                "uncompressed_bytes": len(tar),
                "architecture": arch,
            }
        )
    )


if __name__ == "__main__":
    main()
