#!/usr/bin/env python3
"""Stand-in images for the end-to-end container run, and the check that they keep the
flake's contract.

Invariant: a stand-in image's runtime config (user, entrypoint, env, working dir, exposed
ports, volumes, labels) is built from the same data the flake builds its images from
(nix/agents.json, nix/rabbitmq/image.json and the files beside it), and `contract` proves it
equals what nix/images.nix evaluates to. Only the bytes differ: the stand-ins carry this
machine's build of the binaries (target/release) and this machine's RabbitMQ and Erlang
install, each with its shared-library closure, instead of Nix store paths.

  images.py build --bin-dir target/release --out DIR --revision REV
      writes DIR/<image>.tar (docker-archive, tagged <image>:latest, as `nix build .#images`
      names them) for the four agents and the broker; `podman load` / `docker load` each.
      Their bytes depend on the binaries, nix/ and this machine's files only (fixed times,
      owners and order); --digests FILE lists each image's id and archive digest.
  images.py contract --expected nix-configs.json --actual inspect.json
      compares each image's config with the flake's; prints one line per image.
"""

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NIX = ROOT / "nix"
# Every agent's user is in group `tuf`, which owns the shared repository volume (images.nix).
TUF_GID = 10000
SOURCE = "https://gitlab.com/drupal-infrastructure/package-signing/tuf"
CA_BUNDLE = "/etc/ssl/certs/ca-bundle.crt"
# The agents' images hold these programs (the flake's package links its binaries at /bin).
AGENT_PROGRAMS = ["tuf-signer", "tuf-client"]
# What RabbitMQ's and Erlang's shell scripts run, from this machine's Debian packages.
BROKER_TOOL_PACKAGES = ["dash", "bash", "coreutils", "sed", "grep", "hostname"]
BROKER_TREES = ["/usr/lib/erlang", "/usr/lib/rabbitmq"]
# RabbitMQ's scripts find their siblings from $0, so /bin gets wrappers (as Debian's
# /usr/sbin and nixpkgs' bin/ have); Erlang's find their root themselves.
BROKER_WRAPPERS = ["rabbitmq-server", "rabbitmq-diagnostics", "rabbitmqctl", "rabbitmq-plugins"]
BROKER_LINKS = {"erl": "/usr/lib/erlang/bin/erl", "escript": "/usr/lib/erlang/bin/escript"}


def labels(title, description, revision):
    return {
        "org.opencontainers.image.source": SOURCE,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.description": description,
    }


def env_list(env):
    # Nix's mapAttrsToList walks the names in sorted order.
    return [f"{k}={env[k]}" for k in sorted(env)]


def agent_config(name, agent, revision):
    """nix/images.nix `agentConfig`, from the same agents.json entry."""
    return {
        "User": f"{agent['uid']}:{agent.get('gid', TUF_GID)}",
        "Entrypoint": [f"/bin/{agent['program']}"] + agent["args"],
        "Env": env_list(agent["env"]) + [f"SSL_CERT_FILE={CA_BUNDLE}"],
        "WorkingDir": "/srv/tuf",
        "Labels": labels(name, agent["description"], revision),
    }


def broker_config(spec, revision):
    """nix/rabbitmq/default.nix `config`, from the same image.json."""
    return {
        "User": f"{spec['uid']}:{spec['uid']}",
        "Entrypoint": spec["entrypoint"],
        "Env": env_list(spec["env"]),
        "ExposedPorts": {p: {} for p in spec["ports"]},
        "Volumes": {v: {} for v in spec["volumes"]},
        "Labels": labels("rabbitmq", spec["description"], revision),
    }


class Rootfs:
    """A layer's files, by path inside the image; written as one tar at the end.
    Host files keep their real (usr-merged) paths; /bin, /sbin, /lib and /lib64 link into /usr
    as on the Debian host they come from."""

    def __init__(self):
        self.entries = {}  # path -> (kind, data, mode, uid, gid)
        for top in ["bin", "sbin", "lib", "lib64"]:
            self.entries[top] = ("link", f"usr/{top}", 0o777, 0, 0)

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self.entries[path.strip("/")] = ("dir", None, mode, uid, gid)

    def text(self, path, data, mode=0o644):
        self.entries[path.strip("/")] = ("file", data.encode(), mode, 0, 0)

    def link(self, path, target):
        self.entries[path.strip("/")] = ("link", target, 0o777, 0, 0)

    def host_file(self, path):
        """A file of this machine at its canonical path, symlinks along the way recreated."""
        path = os.path.abspath(path)
        while os.path.islink(path):
            target = os.readlink(path)
            self.entries[canonical_dir(path)] = ("link", target, 0o777, 0, 0)
            path = os.path.normpath(os.path.join(os.path.dirname(path), target))
        real = os.path.realpath(path)
        self.entries[real.strip("/")] = ("host", real, os.stat(real).st_mode & 0o7777, 0, 0)
        return real

    def host_tree(self, top):
        for dirpath, dirnames, filenames in os.walk(top):
            self.dir(dirpath, os.stat(dirpath).st_mode & 0o7777)
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if os.path.islink(p):
                    self.link(p, os.readlink(p))
                elif os.path.isfile(p):
                    self.entries[p.strip("/")] = ("host", p, os.stat(p).st_mode & 0o7777, 0, 0)

    def with_libraries(self):
        """Adds the shared-library closure (ldd) of every ELF file in the layer."""
        elves = [d for (k, d, *_ ) in self.entries.values() if k == "host" and is_elf(d)]
        for lib in sorted(set(l for e in elves for l in ldd(e))):
            self.host_file(lib)

    def write(self, out):
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries, key=lambda p: (p.count("/"), p)):
                kind, data, mode, uid, gid = self.entries[path]
                for parent in parents(path):
                    if parent not in self.entries:
                        self.entries[parent] = ("dir", None, 0o755, 0, 0)
                        tar.addfile(info(parent, tarfile.DIRTYPE, 0o755, 0, 0))
                if kind == "dir":
                    tar.addfile(info(path, tarfile.DIRTYPE, mode, uid, gid))
                elif kind == "link":
                    ti = info(path, tarfile.SYMTYPE, mode, uid, gid)
                    ti.linkname = data
                    tar.addfile(ti)
                elif kind == "file":
                    ti = info(path, tarfile.REGTYPE, mode, uid, gid)
                    ti.size = len(data)
                    tar.addfile(ti, io.BytesIO(data))
                else:
                    ti = info(path, tarfile.REGTYPE, mode, uid, gid)
                    ti.size = os.path.getsize(data)
                    with open(data, "rb") as f:
                        tar.addfile(ti, f)


def canonical_dir(path):
    """`path` with its directory resolved (the link itself kept), relative to /."""
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path)).strip("/")


def parents(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def info(path, kind, mode, uid, gid):
    ti = tarfile.TarInfo(path)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, uid, gid, 1
    return ti


def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def ldd(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    return re.findall(r"(/\S+) \(0x", out)


def identity(fs, name, uid, group, gid):
    # images.nix `identity`: only the image's own user and group.
    fs.text("etc/passwd", f"root:x:0:0::/root:/sbin/nologin\n{name}:x:{uid}:{gid}::/var/empty:/sbin/nologin\n")
    fs.text("etc/group", f"root:x:0:\n{group}:x:{gid}:{name}\n")


def agent_rootfs(name, agent, bin_dir):
    fs = Rootfs()
    for program in AGENT_PROGRAMS:
        fs.entries[f"usr/bin/{program}"] = ("host", str(bin_dir / program), 0o755, 0, 0)
    fs.entries[CA_BUNDLE.strip("/")] = ("host", "/etc/ssl/certs/ca-certificates.crt", 0o644, 0, 0)
    gid = agent.get("gid", TUF_GID)  # images.nix gidOf, groupOf
    identity(fs, name, agent["uid"], agent.get("group", "tuf"), gid)
    uid = agent["uid"]
    # images.nix fakeRootCommands
    fs.dir("srv/tuf", 0o755, uid, gid)
    fs.dir("srv/tuf/repo", 0o3775, uid, gid)
    fs.dir("srv/tuf/client", 0o755, uid, gid)
    fs.dir("srv/tuf/state", 0o700, uid, uid)  # a signer's own state (TUF_STATE): its volume
    fs.dir("run/keys", 0o700, uid, uid)
    fs.dir("tmp", 0o1777)
    fs.with_libraries()
    return fs


def broker_rootfs(spec):
    fs = Rootfs()
    for top in BROKER_TREES:
        fs.host_tree(top)
    files = subprocess.run(["dpkg", "-L"] + BROKER_TOOL_PACKAGES, capture_output=True, text=True, check=True).stdout
    for f in files.split():
        if re.match(r"^/(usr/)?s?bin/[^/]+$", f) and os.path.isfile(f):
            fs.host_file(f)
    for name in BROKER_WRAPPERS:
        fs.text(f"usr/bin/{name}", f'#!/bin/sh\nexec /usr/lib/rabbitmq/bin/{name} "$@"\n', 0o755)
    for name, target in BROKER_LINKS.items():
        fs.link(f"usr/bin/{name}", target)
    fs.link("usr/bin/sh", "dash")
    fs.text("etc/rabbitmq/rabbitmq.conf", (NIX / "rabbitmq/rabbitmq.conf").read_text())
    fs.text("etc/rabbitmq/definitions.json", (NIX / "rabbitmq/definitions.json").read_text())
    fs.text("etc/rabbitmq/definitions.dev.json", (NIX / "rabbitmq/definitions.json").read_text())
    fs.text("etc/rabbitmq/entrypoint.sh", (NIX / "rabbitmq/entrypoint.sh").read_text())
    fs.text("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
    uid = spec["uid"]
    identity(fs, "rabbitmq", uid, "rabbitmq", uid)
    # default.nix fakeRootCommands
    fs.dir("var/lib/rabbitmq", 0o755, uid, uid)
    fs.dir("tmp", 0o1777)
    fs.with_libraries()
    return fs


def docker_archive(fs, config, name, out):
    """One-layer docker-archive, the format `nix build .#images` produces and `load` takes."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        layer = Path(tmp) / "layer.tar"
        fs.write(layer)
        digest = sha256_file(layer)
        image = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:01Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}"]},
        }
        config_bytes = json.dumps(image, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = [{"Config": config_name, "RepoTags": [f"{name}:latest"], "Layers": [f"{digest}/layer.tar"]}]
        # Every entry with fixed owner, mode and time, in a fixed order: the archive's bytes
        # depend on its contents only (scripts/repro compares them across two builds).
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
            ti = info(f"{digest}/layer.tar", tarfile.REGTYPE, 0o644, 0, 0)
            ti.size = layer.stat().st_size
            with open(layer, "rb") as f:
                tar.addfile(ti, f)
            for fname, data in [(config_name, config_bytes), ("manifest.json", json.dumps(manifest).encode())]:
                ti = info(fname, tarfile.REGTYPE, 0o644, 0, 0)
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
    # The image id: the digest of its config, which names its layer's digest.
    return "sha256:" + config_name.removesuffix(".json")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(args):
    agents = json.loads((NIX / "agents.json").read_text())
    spec = json.loads((NIX / "rabbitmq/image.json").read_text())
    bin_dir = Path(args.bin_dir).resolve()
    for program in AGENT_PROGRAMS:
        if not (bin_dir / program).is_file():
            sys.exit(f"images.py: {bin_dir / program} is missing: run `cargo build --release --bins` first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Stripped, as Nix's build strips what it installs: the images hold no debug info.
    stripped = out / ".bin"
    stripped.mkdir(exist_ok=True)
    for program in AGENT_PROGRAMS:
        subprocess.run(["strip", "-o", str(stripped / program), str(bin_dir / program)], check=True)
    bin_dir = stripped
    images = [(name, agent_rootfs(name, agent, bin_dir), agent_config(name, agent, args.revision)) for name, agent in agents.items()]
    images.append(("rabbitmq", broker_rootfs(spec), broker_config(spec, args.revision)))
    digests = []
    for name, fs, config in images:
        image_id = docker_archive(fs, config, name, out / f"{name}.tar")
        digests += [f"image/{name} {image_id}", f"archive/{name}.tar sha256:{sha256_file(out / f'{name}.tar')}"]
        print(f"stand-in image {name}: {out / name}.tar, id {image_id}", flush=True)
    for program in AGENT_PROGRAMS:
        (stripped / program).unlink()
    stripped.rmdir()
    if args.digests:
        Path(args.digests).write_text("".join(line + "\n" for line in digests))


# The parts of an image's config the contract covers, with the empty value an engine reports
# for a part the image does not set.
CONTRACT = {"User": "", "Entrypoint": [], "Env": [], "WorkingDir": "", "ExposedPorts": {}, "Volumes": {}, "Labels": {}}


def contract(args):
    expected = json.loads(Path(args.expected).read_text())
    actual = json.loads(Path(args.actual).read_text())
    failed = 0
    for name in sorted(expected):
        if name not in actual:
            print(f"FAIL image {name}: not loaded")
            failed += 1
            continue
        got = actual[name]
        diffs = []
        for key, empty in CONTRACT.items():
            want, have = expected[name].get(key) or empty, got.get(key) or empty
            if key == "Env":
                # The engine adds PATH where an image sets none; the flake's images set none.
                have = [e for e in have if not e.startswith("PATH=")]
                want, have = sorted(want), sorted(have)
            if want != have:
                diffs.append(f"{key}: flake {json.dumps(want)}, image {json.dumps(have)}")
        if diffs:
            failed += 1
            print(f"FAIL image {name} differs from nix/images.nix: " + "; ".join(diffs))
        else:
            print(f"ok   image {name}: user, entrypoint, env, workdir, ports, volumes, labels equal the flake's")
    sys.exit(1 if failed else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the five stand-in images as docker-archive files")
    b.add_argument("--bin-dir", default=str(ROOT / "target/release"))
    b.add_argument("--out", required=True)
    b.add_argument("--revision", default="dirty", help="the org.opencontainers.image.revision label")
    b.add_argument("--digests", help="write each image's id and archive digest there, one `NAME sha256:HEX` per line")
    b.set_defaults(run=build)
    c = sub.add_parser("contract", help="compare loaded images' configs with the flake's")
    c.add_argument("--expected", required=True, help="JSON: image name -> config, from nix eval")
    c.add_argument("--actual", required=True, help="JSON: image name -> config, from `image inspect`")
    c.set_defaults(run=contract)
    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
