"""Verifies a repository with python-tuf's ngclient, the reference TUF client.

usage: ngclient_verify.py ROOT_JSON METADATA_URL TARGETS_URL WORKDIR NAME=EXPECTED_FILE...

Trusts ROOT_JSON, refreshes from METADATA_URL, then for each NAME finds its target info
(walking the hashed-bin delegations) and downloads it from TARGETS_URL, checking the bytes
equal EXPECTED_FILE. A NAME given as "!NAME" must NOT be found. Prints one JSON line with
what it checked; exits 1 on any failure.

With NGCLIENT_KEEP=1 the WORKDIR of an earlier run is kept: the client starts from the
metadata it trusted then, as an installed Composer plugin does (root rotations, key changes
and rollback checks are then exercised against that state).

With NGCLIENT_GZIP=1 the client sends `Accept-Encoding: gzip` (python-tuf's fetcher sends none)
and decodes gzip-encoded responses, as a web server with precompressed copies sends them; the
report's "gzip_responses" counts them.
"""
import json
import os
import shutil
import sys

from tuf.ngclient import Updater
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

GZIP_RESPONSES = []


class GzipFetcher(Urllib3Fetcher):
    """python-tuf's fetcher, asking for gzip; urllib3 decodes what comes gzip-encoded."""

    def __init__(self) -> None:
        super().__init__()
        from tuf.ngclient._internal.proxy import ProxyEnvironment  # noqa: PLC0415
        self._proxy_env = ProxyEnvironment(
            headers={"User-Agent": "ngclient_verify", "Accept-Encoding": "gzip"})
        request = self._proxy_env.request

        def counted(*args, **kwargs):
            response = request(*args, **kwargs)
            if response.headers.get("Content-Encoding") == "gzip":
                GZIP_RESPONSES.append(args[1])
            return response
        self._proxy_env.request = counted


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
        fetcher=GzipFetcher() if os.environ.get("NGCLIENT_GZIP") == "1" else None,
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
        "gzip_responses": len(GZIP_RESPONSES),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
