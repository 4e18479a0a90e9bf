//! The disk: a full one heals itself, superseded versions stay bounded, and no temp file ever
//! lands in a served folder, against the real broker and a real (small) file system.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A tmpfs of `size` mounted at a folder for the test's life.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Only root may mount.
    fn possible() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn mount(dir: &Path, size: &str) -> SmallDisk {
        let out = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir));
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    /// Fills the disk with one file until `leave` bytes are free.
    fn fill_leaving(&self, leave: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let free = free_bytes(self.path());
        let size = free.saturating_sub(leave);
        std::fs::write(&filler, vec![0u8; size as usize]).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = run(Command::new("umount").arg("-l").arg(&self.dir));
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let stat = rustix::fs::statvfs(dir).unwrap();
    stat.f_bavail * stat.f_frsize
}

fn client(repo: &TestRepo, prefix: &str, args: &[&str]) -> std::process::Output {
    run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args(args)
        .args(["--amqp", &amqp_url(), "--queue-prefix", prefix])
        .args(["--wait", "--timeout", "60s", "--repo"])
        .arg(&repo.repo))
}

/// Every file under `dir` whose name starts with a dot (the former temp files) or holds
/// `.tmp-`: a served folder must never hold one.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().starts_with('.')
                || entry.file_name().to_string_lossy().contains(".tmp-")
            {
                found.push(path);
            }
        }
    }
    found
}

/// The disk fills up while releases keep coming: the signers hit `ENOSPC`, prune what no
/// client can still need (past a 1 s grace here) and try again, and their regular pruning
/// frees space once the disk is nearly full. Every submission is signed; python-tuf verifies
/// the result and downloads every release.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_heals_itself_and_loses_nothing() {
    if !SmallDisk::possible() {
        println!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let prefix = unique_prefix("disk");
    let mut disk = None;
    // The repository on the small disk; logs and python-tuf's files stay off it.
    let repo = TestRepo::init_with(16, &[], |dir| disk = Some(SmallDisk::mount(dir, "8m")));
    let disk = disk.expect("mounted");
    // Age and count keep every version this test writes: only a full disk prunes here.
    let retention = [
        "--prune-after",
        "1h",
        "--keep-versions",
        "1000",
        "--prune-grace",
        "1s",
    ];
    let mut signers: Vec<Proc> = ["targets", "snapshot", "timestamp"]
        .iter()
        .map(|r| repo.spawn_signer(r, &prefix, &retention))
        .collect();
    for s in &mut signers {
        wait_ready(s);
    }
    let releases = make_releases(&repo.path("rel"), 12, "disk");
    let targets_dir = repo.repo.join("targets");
    let out = client(
        &repo,
        &prefix,
        &[
            "add-targets",
            "--targets-dir",
            targets_dir.to_str().unwrap(),
            repo.path("rel").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let filler = disk.fill_leaving(96 * 1024);
    println!(
        "disk filled: {} KiB free of 8 MiB",
        free_bytes(disk.path()) / 1024
    );
    // Each round removes a release and adds it back: new bin, snapshot and timestamp
    // versions every time, far more than 96 KiB in all.
    let rounds = 25;
    for round in 0..rounds {
        let (name, _) = &releases[round % releases.len()];
        for verb in ["remove-targets", "add-targets"] {
            let target = format!("{name}={}", releases[round % releases.len()].1.display());
            let args: Vec<&str> = match verb {
                "remove-targets" => vec![verb, name],
                // Its file is in targets/ from the first add: only the metadata grows.
                _ => vec![verb, "--no-copy", "--target", &target],
            };
            let out = client(&repo, &prefix, &args);
            assert!(
                out.status.success(),
                "round {round} {verb}: {}\n--- signers:\n{}",
                String::from_utf8_lossy(&out.stderr),
                common::stream::warnings(&signers)
            );
        }
    }
    let logs: String = signers.iter().map(Proc::log_text).collect();
    let healed = logs
        .matches("disk full: removed superseded versions")
        .count()
        + logs
            .matches("disk nearly full: removed superseded versions")
            .count();
    assert!(healed > 0, "the disk never filled up:\n{logs}");
    let snapshots = repo.layout().scan_versions().unwrap()["snapshot"].len();
    println!(
        "{} rounds on a full disk: {healed} prunings, {snapshots} snapshot versions on disk \
         of {} written, {} KiB free",
        rounds,
        2 * rounds + 2,
        free_bytes(disk.path()) / 1024
    );
    assert!(snapshots < 2 * rounds, "superseded snapshots were pruned");
    assert!(temp_files(&repo.repo.join("metadata")).is_empty());
    assert!(temp_files(&targets_dir).is_empty());
    std::fs::remove_file(filler).unwrap();
    let report = ngclient_verify(&repo, &items_for(&releases));
    println!("python-tuf: {report}");
    delete_queues(&prefix).await;
}

/// A signer killed with a temp file written and not yet in place leaves it in its staging
/// folder, never in `metadata/`; the next signer to start removes it. A failed submission
/// leaves nothing in `targets/`.
#[tokio::test(flavor = "multi_thread")]
async fn a_writer_killed_mid_write_leaves_no_temp_file_where_clients_look() {
    let prefix = unique_prefix("staging");
    let repo = TestRepo::init(16, &[]);
    let staging = repo.repo.join("control/staging");
    let mut targets = repo.spawn_signer_env(
        "targets",
        &repo.key("targets"),
        &prefix,
        &[],
        &[("TUF_FAILPOINT", "staging:temp-written")],
    );
    let mut snapshot = repo.spawn_signer("snapshot", &prefix, &[]);
    let _timestamp = repo.spawn_signer("timestamp", &prefix, &[]);
    wait_ready(&mut targets);
    wait_ready(&mut snapshot);
    let releases = make_releases(&repo.path("rel"), 5, "stage");
    repo.submit_over_broker(&prefix, &repo.path("rel"), &[]);
    let start = std::time::Instant::now();
    while targets.is_running() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never reached the failpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(targets.log_text().contains("aborting here"));
    // control/staging/UID/PROCESS/FILE
    let left: Vec<PathBuf> = std::fs::read_dir(&staging)
        .unwrap()
        .flatten()
        .flat_map(|user| std::fs::read_dir(user.path()).unwrap().flatten())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .filter(|p| !p.ends_with(".lock"))
        .collect();
    assert!(
        !left.is_empty(),
        "the killed signer's temp files are in its staging folder"
    );
    assert!(temp_files(&repo.repo.join("metadata")).is_empty());

    // Started again: the leftovers go, and the batch (never acknowledged) is signed.
    let mut targets = repo.spawn_signer("targets", &prefix, &[]);
    wait_ready(&mut targets);
    repo.wait_covered(expected_for(&releases), Duration::from_secs(60));
    for path in &left {
        assert!(!path.exists(), "{} was left", path.display());
    }
    assert!(temp_files(&repo.repo.join("metadata")).is_empty());

    // A submission that fails (no broker to send to) after copying its files leaves no temp
    // file in targets/ and no staging folder.
    let mine = staging.join(rustix::process::geteuid().as_raw().to_string());
    let before = std::fs::read_dir(&mine).unwrap().count();
    let more = make_releases(&repo.path("more"), 3, "fail");
    let out = run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .args([
            "add-targets",
            "--amqp",
            "amqp://guest:guest@127.0.0.1:1/%2f",
        ])
        .args(["--broker-wait", "0s", "--targets-dir"])
        .arg(repo.repo.join("targets"))
        .arg(repo.path("more")));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gave up after waiting"), "{stderr}");
    assert!(temp_files(&repo.repo.join("targets")).is_empty());
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), before);
    drop(more);
    let report = ngclient_verify(&repo, &items_for(&releases));
    println!("python-tuf: {report}");
    delete_queues(&prefix).await;
}
