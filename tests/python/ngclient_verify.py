"""Verifies a repository with python-tuf's ngclient, the reference TUF client.

usage: ngclient_verify.py ROOT_JSON METADATA_URL TARGETS_URL WORKDIR NAME=EXPECTED_FILE...

Trusts ROOT_JSON, refreshes from METADATA_URL, then for each NAME finds its target info
(walking the hashed-bin delegations) and downloads it from TARGETS_URL, checking the bytes
equal EXPECTED_FILE. A NAME given as "!NAME" must NOT be found. Prints one JSON line with
what it checked; exits 1 on any failure.

With NGCLIENT_KEEP=1 the WORKDIR of an earlier run is kept: the client starts from the
metadata it trusted then, as an installed Composer plugin does (root rotations, key changes
and rollback checks are then exercised against that state).
"""
import json
import os
import shutil
import sys

from tuf.ngclient import Updater


def main() -> int:
    root_json, metadata_url, targets_url, workdir = sys.argv[1:5]
    wanted = sys.argv[5:]
    metadata_dir = os.path.join(workdir, "metadata")
    download_dir = os.path.join(workdir, "downloads")
    keep = os.environ.get("NGCLIENT_KEEP") == "1" and os.path.exists(
        os.path.join(metadata_dir, "root.json"))
    if keep:
        root_bytes = None
        shutil.rmtree(download_dir, ignore_errors=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(metadata_dir)
        with open(root_json, "rb") as f:
            root_bytes = f.read()
    os.makedirs(download_dir)

    updater = Updater(
        bootstrap=root_bytes,
        metadata_dir=metadata_dir,
        metadata_base_url=metadata_url,
        target_base_url=targets_url,
        target_dir=download_dir,
    )
    updater.refresh()
    checked, absent = 0, 0
    for item in wanted:
        if item.startswith("!"):
            name = item[1:]
            if updater.get_targetinfo(name) is not None:
                print(f"{name}: found but should have been removed", file=sys.stderr)
                return 1
            absent += 1
            continue
        name, expected = item.split("=", 1)
        info = updater.get_targetinfo(name)
        if info is None:
            print(f"{name}: not found in the signed metadata", file=sys.stderr)
            return 1
        path = updater.download_target(info, filepath=os.path.join(download_dir, f"t{checked}"))
        with open(path, "rb") as got, open(expected, "rb") as want:
            if got.read() != want.read():
                print(f"{name}: downloaded bytes differ from {expected}", file=sys.stderr)
                return 1
        checked += 1
    trusted = updater._trusted_set  # noqa: SLF001 - versions for the report only
    print(json.dumps({
        "verified": checked,
        "absent": absent,
        "root": trusted.root.version,
        "timestamp": trusted.timestamp.version,
        "snapshot": trusted.snapshot.version,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
