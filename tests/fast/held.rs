//! The targets signer's memory does not grow with the repository: it holds at most
//! `--held-targets` targets, reads a bin back when a job touches one it let go of, and at start
//! reads no bin its own record says it wrote (tests/bins.rs, tests/crash.rs and
//! tests/shared_volume.rs cover the same paths through the broker with everything held).
//! A bin read back must be the bytes the signer recorded: one replaced on the volume is never
//! signed over.

use package_signing::bins::HashBins;
use package_signing::client::send::add_jobs;
use package_signing::client::status;
use package_signing::jobs::TargetsJob;
use package_signing::roles::RoleSettings;

use crate::harness::*;

/// The signers with a targets signer that holds nothing beyond the batch it applies.
async fn start_holding_nothing(repo: &Repo) -> Signers {
    start_holding(repo, 0).await
}

/// The signers with a targets signer that holds at most `held_targets` targets.
async fn start_holding(repo: &Repo, held_targets: usize) -> Signers {
    let settings = RoleSettings {
        held_targets,
        ..repo.settings()
    };
    let signers = Signers::start_with(repo, &repo.inbox, settings);
    for log in [&signers.targets, &signers.snapshot, &signers.timestamp] {
        log.wait_for("signer ready", 1).await;
    }
    signers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targets_signer_holding_no_bin_signs_what_one_holding_all_would() {
    let repo = Repo::init(16);
    let signers = start_holding_nothing(&repo).await;
    // init wrote the bins: the first start reads and verifies each one.
    signers.targets.wait_for("read=16", 1).await;
    let first = repo.releases("first", 40, "one");
    assert_all_signed(&repo.add(&first).await, 40);
    signers.stop().await;

    // Started again: every bin is as its record says, and none is read until touched.
    let signers = start_holding_nothing(&repo).await;
    signers.targets.wait_for("read=0", 1).await;
    let second = repo.releases("second", 40, "two");
    assert_all_signed(&repo.add(&second).await, 40);
    let gone: Vec<&str> = first[..5].iter().map(|r| r.name.as_str()).collect();
    repo.remove(&gone).await;
    // A change of the bin count reads every old bin back, a slice of new bins at a time.
    let rebin = TargetsJob {
        bins: Some(32),
        ..Default::default()
    };
    repo.send(&repo.inbox, &[rebin]).await.outcomes().await;
    let third = repo.releases("third", 20, "three");
    assert_all_signed(&repo.add(&third).await, 20);

    let kept: Vec<_> = [&first[5..], &second[..], &third[..]].concat();
    let mut expected = expected(&kept);
    expected.extend(gone.iter().map(|name| (name.to_string(), None)));
    repo.covered(expected).await;
    repo.assert_downloads(&kept.iter().step_by(3).cloned().collect::<Vec<_>>())
        .await;
    let held = status::read(&repo.layout, &repo.pin()).unwrap();
    assert_eq!(held.targets, 95);
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    signers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bin_replaced_after_the_signer_wrote_it_is_never_signed_over() {
    let repo = Repo::init(16);
    let signers = start_holding_nothing(&repo).await;
    let first = repo.releases("first", 40, "one");
    assert_all_signed(&repo.add(&first).await, 40);
    signers.stop().await;

    // Between two runs, someone who can write the metadata folder puts another bin's file
    // (signed by the same key, so its signature verifies) in place of one bin's newest.
    let bins = HashBins::new(16).unwrap();
    let victim = bins.index_of(&first[0].name);
    let other = (victim + 1) % 16;
    let newest = |i: u32| {
        let name = bins.name(i);
        repo.layout.versioned(&name, repo.newest(&name))
    };
    let victim_file = newest(victim);
    std::fs::write(&victim_file, std::fs::read(newest(other)).unwrap()).unwrap();
    let victim_version = repo.newest(&bins.name(victim));

    // A release for that bin: the signer reads the bin back, finds other bytes, and stops
    // naming the file rather than signing over what it read.
    let signers = start_holding_nothing(&repo).await;
    let name = (0..)
        .map(|i| format!("drupal/victim{i}/1.0.0.0"))
        .find(|n| bins.index_of(n) == victim)
        .unwrap();
    let release = repo.release(&name, "a release for the replaced bin");
    let _pending = repo.submit(&repo.inbox, &[release], 1, false).await;
    let error = signers.failure("targets").await;
    assert!(
        error.contains(&victim_file.display().to_string())
            && error.contains("replaced on the shared volume"),
        "{error}"
    );
    assert_eq!(
        repo.newest(&bins.name(victim)),
        victim_version,
        "nothing signed over it"
    );
}

/// A batch touching more targets than the signer may hold (a bulk import) goes a part of the
/// bins at a time, and still writes each bin it changes once, with every job's changes in
/// the order the jobs were issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_memory_writes_each_bin_once() {
    let repo = Repo::init(16);
    let bins = HashBins::new(16).unwrap();
    let before: Vec<u64> = (0..16).map(|i| repo.newest(&bins.name(i))).collect();
    // Queued before the signers start, so that they are one batch: four jobs of 50 adds,
    // then a job removing three of them.
    let releases = repo.releases("bulk", 200, "bulk");
    let mut jobs = add_jobs(&repo.stage(&releases), 50, false);
    let gone: Vec<String> = releases[..3].iter().map(|r| r.name.clone()).collect();
    jobs.push(TargetsJob {
        remove: gone.clone(),
        ..Default::default()
    });
    let submitted = repo.send(&repo.inbox, &jobs).await;
    // 20 held: a part is about one bin of some 12 targets.
    let signers = start_holding(&repo, 20).await;
    let outcomes = submitted.outcomes().await;
    assert_eq!(outcomes.len(), 200);
    signers.targets.wait_for("jobs=5 ", 1).await;
    signers.targets.wait_for("files_written=16 ", 1).await;
    for i in 0..16 {
        assert_eq!(
            repo.newest(&bins.name(i)),
            before[i as usize] + 1,
            "bin {i} written once"
        );
    }
    let mut expected = expected(&releases[3..]);
    expected.extend(gone.iter().map(|name| (name.clone(), None)));
    repo.covered(expected).await;
    repo.assert_downloads(&releases[3..].iter().step_by(7).cloned().collect::<Vec<_>>())
        .await;
    assert_eq!(
        status::read(&repo.layout, &repo.pin()).unwrap().targets,
        197
    );
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    signers.stop().await;
}
