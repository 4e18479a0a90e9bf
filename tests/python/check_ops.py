"""Cross-checks the deployment files against the flake and the broker definitions.

- every image a DDEV compose file or a GitLab CI job names is an image the flake builds
  (nix/agents.json plus rabbitmq), from the project's registry path, by the digest .ddev/.env
  pins for it (never a tag), and a service's TUF_IMAGE names the image it runs;
- every AMQP_URL in the compose files logs in as a user the rabbitmq image's definitions
  create, with the password whose hash is there, and each agent uses its own user;
- each signer mounts only its own key volume, the packaging pipeline only the submitter key
  volume, and no service mounts the root key but tuf-init.
Prints one line per check; exits 1 on the first failure.
"""
import base64
import hashlib
import json
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
agents = json.loads((root / "nix/agents.json").read_text())
flake_images = set(agents) | {"rabbitmq"}
definitions = json.loads((root / "nix/rabbitmq/definitions.json").read_text())
users = {u["name"]: u["password_hash"] for u in definitions["users"]}
env = dict(line.split("=", 1) for line in (root / ".ddev/.env").read_text().splitlines() if line and not line.startswith("#"))
registry = env["TUF_REGISTRY"]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL", msg)


def password_matches(stored, password):
    raw = base64.b64decode(stored)
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


checked = 0
for path in sorted((root / ".ddev").glob("docker-compose.*.yaml")):
    compose = yaml.safe_load(path.read_text())
    for name, service in (compose.get("services") or {}).items():
        image = service.get("image", "")
        # By digest, from the release .ddev/.env pins (scripts/release): never a tag.
        m = re.fullmatch(r"\$\{TUF_REGISTRY\}/([a-z-]+)@\$\{(TUF_DIGEST_[A-Z_]+)\}", image)
        if not m or m.group(1) not in flake_images:
            fail(f"{path.name}: {name} uses image {image!r}, not one the flake builds, by its pinned digest")
        elif m.group(2) != "TUF_DIGEST_" + m.group(1).upper().replace("-", "_"):
            fail(f"{path.name}: {name} takes {m.group(1)}'s digest from {m.group(2)}")
        elif m.group(2) not in env:
            fail(f"{path.name}: {name}'s image digest {m.group(2)} is not pinned in .ddev/.env")
        running_as = (service.get("environment") or {}).get("TUF_IMAGE")
        if running_as is not None and running_as != image:
            fail(f"{path.name}: {name} says it runs as {running_as!r}, but runs {image!r}")
        url = (service.get("environment") or {}).get("AMQP_URL")
        if url:
            u = urlparse(url)
            user, password = unquote(u.username or ""), unquote(u.password or "")
            if user != name:
                fail(f"{path.name}: {name} logs in to the broker as {user!r}, not as itself")
            elif user not in users:
                fail(f"{path.name}: broker user {user!r} is not in the rabbitmq definitions")
            elif not password_matches(users[user], password):
                fail(f"{path.name}: {user}'s password does not match the definitions")
        mounts = [v.split(":")[0] for v in service.get("volumes") or []]
        keys = [m for m in mounts if m.startswith("tuf-keys-")]
        if name in ("delegated-targets-signer", "snapshot-signer", "timestamp-signer"):
            role = {"delegated-targets-signer": "targets"}.get(name, name.removesuffix("-signer"))
            if keys != [f"tuf-keys-{role}"]:
                fail(f"{path.name}: {name} mounts key volumes {keys}, expected only tuf-keys-{role}")
        elif name == "packaging-pipeline":
            if keys != ["tuf-keys-submitter"]:
                fail(f"{path.name}: {name} mounts key volumes {keys}, expected only tuf-keys-submitter")
        elif name != "tuf-init" and keys:
            fail(f"{path.name}: {name} mounts key volumes {keys}")
        if name != "tuf-init" and any("root-key" in m for m in mounts):
            fail(f"{path.name}: {name} mounts the root key")
        checked += 1
print(f"compose: {checked} services checked")

ci = (root / ".gitlab-ci.yml").read_text()
agents_line = re.search(r'AGENTS: "([^"]+)"', ci).group(1).split()
if set(agents_line) != flake_images:
    fail(f".gitlab-ci.yml AGENTS {agents_line} differ from the flake's images {sorted(flake_images)}")
for m in re.finditer(r'"\$R/([a-z-]+):\$IMAGE_TAG"', ci):
    if m.group(1) not in flake_images:
        fail(f".gitlab-ci.yml runs image {m.group(1)}, which the flake does not build")
if not re.search(r"^\s+- scripts/e2e-containers --engine docker --images images\b", ci, re.M):
    fail(".gitlab-ci.yml: the e2e job does not run scripts/e2e-containers on the built images")
if not registry.endswith("package-signing/tuf"):
    fail(f".ddev/.env TUF_REGISTRY {registry} is not the project's registry path")
for agent in agents:
    if agent not in users:
        fail(f"agent {agent} has no broker user in the definitions")
print("gitlab-ci: images and agents checked")
print(f"ops consistency: {'ok' if not failures else 'FAILED'}")
sys.exit(1 if failures else 0)
