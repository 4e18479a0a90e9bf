"""python-tuf doing the work of our three signers, for `tuf-bench --scenario` to compare with.

One process, no broker, no fsync: a repository in a folder (DIR/metadata/, consistent
snapshots) with top-level targets delegating to N hashed bins by `path_hash_prefixes`, named
and split as src/bins.rs does (2,048 bins: 3 hex digits, 2 prefixes a bin, bin-000-001;
16,384: 4 hex digits, 4 prefixes a bin), every role signed with its own ed25519 key
(securesystemslib's CryptoSigner, on `cryptography`). Files are written as compact JSON, as
ours are.

A batch does what our pipeline does for a batch of jobs, the way RSTUF's worker does it:
  - reads timestamp.json and the snapshot it names from disk (the bins' versions);
  - for each bin the batch touches: loads the bin's newest file from disk (JSON parse into
    python-tuf objects), adds each target (length, sha256 and sha512, like our TargetsJob),
    bumps the version, signs, writes N.bin-XXX-YYY.json (our targets signer);
  - a new snapshot listing every bin with version, length and sha256 (as ours lists them),
    signed and written as N.snapshot.json (our snapshot signer);
  - a new timestamp.json naming it (our timestamp signer).
Ours also verifies each job's signature and each file it is handed, fsyncs, keeps a ledger
and runs a client's check of the covering timestamp; this program does none of that, so the
comparison is generous to python-tuf.

Prefill (the repository's starting size) does not go through batches: each bin is written
once, holding all its targets, signed once; then one snapshot and one timestamp. That makes
6 million targets feasible; ours fills through bulk jobs instead, and its figures are taken
after the fill either way.

Then two runs:
  (a) throughput: --throughput targets in jobs of --job-size, one batch per job, timed;
  (b) latency: releases (one target each) arriving on --schedule, simulated in-process: the
      loop takes every release that has arrived by now as one batch (RSTUF's coalescing),
      publishes it, and each release's latency is that batch's completion time minus the
      release's arrival time.
--schedule is phases separated by commas, each N/Ts: N releases evenly spread over T seconds
(Drupal's: 100/10s,60/60s is a burst of 100 in 10 s, then 1/s for a minute).

Target names, lengths and hashes are those of tuf-bench's `target()`. Prints one JSON object
on stdout at the end; progress goes to stderr. Its peak RSS is VmHWM: up to the end of the
prefill, then (reset there, as tuf-bench restarts its signers there) to the end.
"""
import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from array import array  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

from securesystemslib.signer import CryptoSigner  # noqa: E402
from tuf.api.metadata import (  # noqa: E402
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer  # noqa: E402

SERIALIZER = JSONSerializer(compact=True)


def log(msg):
    print(f"python-tuf: {msg}", file=sys.stderr, flush=True)


class HashBins:
    """src/bins.rs's split: the shortest hex prefix giving at least `count` values, each bin
    a contiguous run of prefixes."""

    def __init__(self, count):
        assert count > 0 and count & (count - 1) == 0 and count <= 16384, count
        bits = count.bit_length() - 1
        self.count = count
        self.prefix_len = max(1, -(-bits // 4))
        self.per_bin = 16**self.prefix_len // count

    def index_of(self, name):
        h = hashlib.sha256(name.encode()).digest()
        return ((h[0] << 8 | h[1]) >> (16 - 4 * self.prefix_len)) // self.per_bin

    def _hex(self, value):
        return format(value, f"0{self.prefix_len}x")

    def name(self, index):
        first = index * self.per_bin
        last = first + self.per_bin - 1
        if first == last:
            return f"bin-{self._hex(first)}"
        return f"bin-{self._hex(first)}-{self._hex(last)}"

    def prefixes(self, index):
        first = index * self.per_bin
        return [self._hex(p) for p in range(first, first + self.per_bin)]


def target(i, tag):
    """tuf-bench's `target(i, tag)`: name, length and the hashes of the name's bytes."""
    name = f"vendor{i % 5000}/pkg{i}/1.{tag}.{i}.0"
    raw = name.encode()
    hashes = {"sha256": hashlib.sha256(raw).hexdigest(), "sha512": hashlib.sha512(raw).hexdigest()}
    return TargetFile(1000 + i % 9000, hashes, name)


def expiry(days):
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)


class Repo:
    """The repository folder and the four online keys; counts the bytes it writes."""

    def __init__(self, folder, bins):
        self.meta = os.path.join(folder, "metadata")
        os.makedirs(self.meta, exist_ok=True)
        self.bins = HashBins(bins)
        self.signers = {r: CryptoSigner.generate_ed25519() for r in ("root", "targets", "snapshot", "timestamp", "bins")}
        self.written = 0

    def write(self, filename, md):
        data = md.to_bytes(SERIALIZER)
        path = os.path.join(self.meta, filename)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
        self.written += len(data)
        return MetaFile(md.signed.version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})

    def load(self, filename):
        with open(os.path.join(self.meta, filename), "rb") as f:
            return Metadata.from_bytes(f.read())

    def sign_and_write(self, md, role, filename):
        md.sign(self.signers[role])
        return self.write(filename, md)

    def init(self):
        """Root, and top-level targets delegating every bin to the bins key."""
        root = Metadata(Root(expires=expiry(365), consistent_snapshot=True))
        for role in ("root", "targets", "snapshot", "timestamp"):
            root.signed.add_key(self.signers[role].public_key, role)
        self.sign_and_write(root, "root", "1.root.json")
        self.write_root_copy(root)
        key = self.signers["bins"].public_key
        roles = {}
        for i in range(self.bins.count):
            name = self.bins.name(i)
            roles[name] = DelegatedRole(name, [key.keyid], 1, True, path_hash_prefixes=self.bins.prefixes(i))
        top = Metadata(Targets(expires=expiry(365), delegations=Delegations({key.keyid: key}, roles)))
        return self.sign_and_write(top, "targets", "1.targets.json")

    def write_root_copy(self, root):
        with open(os.path.join(self.meta, "root.json"), "wb") as f:
            f.write(root.to_bytes(SERIALIZER))

    def publish_snapshot(self, snapshot, changed, bump=True):
        """Snapshot with `changed` (file name → MetaFile) merged in, then its timestamp.
        Returns the snapshot's size in bytes."""
        snapshot.signed.meta.update(changed)
        snapshot.signed.version += bump
        snapshot.signed.expires = expiry(7)
        snap_meta = self.sign_and_write(snapshot, "snapshot", f"{snapshot.signed.version}.snapshot.json")
        try:
            ts = self.load("timestamp.json")
            ts.signed.version += 1
        except FileNotFoundError:
            ts = Metadata(Timestamp(expires=expiry(1)))
        ts.signed.snapshot_meta = snap_meta
        ts.signed.expires = expiry(1)
        self.sign_and_write(ts, "timestamp", "timestamp.json")
        return snap_meta.length


def prefill(repo, count):
    """Every bin written once with its share of `count` targets, then snapshot and timestamp."""
    bins = repo.bins
    members = [array("I") for _ in range(bins.count)]
    for i in range(count):
        name = f"vendor{i % 5000}/pkg{i}/1.prefill.{i}.0"
        members[bins.index_of(name)].append(i)
    meta = {"targets.json": repo.init()}
    for b in range(bins.count):
        md = Metadata(Targets(expires=expiry(365)))
        for i in members[b]:
            t = target(i, "prefill")
            md.signed.targets[t.path] = t
        members[b] = None
        meta[f"{bins.name(b)}.json"] = repo.sign_and_write(md, "bins", f"1.{bins.name(b)}.json")
        if b % 1024 == 1023:
            log(f"prefill: {b + 1} of {bins.count} bins")
    repo.publish_snapshot(Metadata(Snapshot(expires=expiry(7))), meta, bump=False)


def publish(repo, targets):
    """One batch: each touched bin loaded, extended, signed and written; snapshot; timestamp.
    Returns the snapshot's size in bytes."""
    ts = repo.load("timestamp.json")
    snapshot = repo.load(f"{ts.signed.snapshot_meta.version}.snapshot.json")
    by_bin = {}
    for t in targets:
        by_bin.setdefault(repo.bins.name(repo.bins.index_of(t.path)), []).append(t)
    changed = {}
    for name, adds in by_bin.items():
        file = f"{name}.json"
        version = snapshot.signed.meta[file].version
        md = repo.load(f"{version}.{file}")
        for t in adds:
            md.signed.targets[t.path] = t
        md.signed.version = version + 1
        changed[file] = repo.sign_and_write(md, "bins", f"{version + 1}.{file}")
    return repo.publish_snapshot(snapshot, changed)


def throughput(repo, count, job_size):
    start = time.perf_counter()
    for first in range(0, count, job_size):
        publish(repo, [target(i, "bulk") for i in range(first, min(count, first + job_size))])
    took = time.perf_counter() - start
    return count / took if took else 0.0


def arrivals(schedule):
    """Each release's arrival, in seconds from the start, for phases "N/Ts,..."."""
    out, start = [], 0.0
    for phase in schedule.split(","):
        n, secs = phase.strip().split("/")
        n, secs = int(n), float(secs.rstrip("s"))
        out.extend(start + k * secs / n for k in range(n))
        start += secs
    return out


def latency(repo, schedule):
    """Releases arriving on `schedule`; each batch takes every one arrived by now. Returns
    the sorted latencies (ms), the batches, the bytes written and the last snapshot's size."""
    due = arrivals(schedule)
    written_before = repo.written
    latencies, batches, snapshot_size, done = [], 0, 0, 0
    start = time.perf_counter()
    while done < len(due):
        now = time.perf_counter() - start
        if due[done] > now:
            time.sleep(due[done] - now)
            continue
        ready = done
        while ready < len(due) and due[ready] <= now:
            ready += 1
        snapshot_size = publish(repo, [target(i, "release") for i in range(done, ready)])
        finished = time.perf_counter() - start
        latencies.extend((finished - due[i]) * 1000.0 for i in range(done, ready))
        done, batches = ready, batches + 1
    latencies.sort()
    return latencies, batches, repo.written - written_before, snapshot_size


def peak_rss_mib(reset=False):
    """This process's peak RSS (VmHWM), and with `reset` the peak restarted from now (Linux's
    clear_refs). Not getrusage: its ru_maxrss survives exec, so it would count the memory of
    the process that forked this one (tuf-bench)."""
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if reset:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
    return kib / 1024


def pct(sorted_values, p):
    return sorted_values[round((len(sorted_values) - 1) * p)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, help="repository folder (created)")
    p.add_argument("--bins", type=int, default=2048)
    p.add_argument("--prefill", type=int, default=0, help="targets the repository starts with")
    p.add_argument("--throughput", type=int, default=10000, help="targets in the throughput run")
    p.add_argument("--job-size", type=int, default=500)
    p.add_argument("--schedule", default="100/10s,60/60s", help="N/Ts phases, comma-separated")
    a = p.parse_args()
    repo = Repo(a.dir, a.bins)
    startup = time.perf_counter() - STARTED
    t = time.perf_counter()
    prefill(repo, a.prefill)
    prefill_s = time.perf_counter() - t
    log(f"prefilled {a.prefill} targets in {prefill_s:.1f} s")
    prefill_rss = peak_rss_mib(reset=True)
    rate = throughput(repo, a.throughput, a.job_size)
    log(f"throughput {rate:.0f} targets/s")
    lat, batches, written, snapshot_size = latency(repo, a.schedule)
    log(f"latency: {len(lat)} releases in {batches} batches")
    result = {
        "startup_s": round(startup, 3),
        "prefill_targets": a.prefill,
        "prefill_s": round(prefill_s, 2),
        "throughput_targets_per_s": round(rate, 1),
        "releases": len(lat),
        "batches": batches,
        "p50_ms": round(pct(lat, 0.5), 1),
        "p99_ms": round(pct(lat, 0.99), 1),
        "prefill_peak_rss_mib": round(prefill_rss, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "bytes_per_release": round(written / len(lat)),
        "snapshot_bytes": snapshot_size,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
