//! Signers re-sign their own metadata before it expires, with no job and no operator, only
//! what is within the refresh window, also while paused; `refresh-expiry` forces it
//! (tests/expiry.rs and the refresh half of tests/pause.rs).

use std::time::Duration;

use package_signing::bins::HashBins;
use package_signing::broker::Queue;
use package_signing::jobs::{TargetsJob, TimestampJob};
use package_signing::repository::control::Control;
use package_signing::repository::Expiries;

use crate::harness::*;

fn expires(repo: &Repo, role: &str, version: u64) -> jiff::Timestamp {
    let v = repo.read_json(&repo.layout.versioned(role, version));
    v["signed"]["expires"].as_str().unwrap().parse().unwrap()
}

fn days_from_now(t: &str) -> f64 {
    let t: jiff::Timestamp = t.parse().unwrap();
    (t.as_second() - jiff::Timestamp::now().as_second()) as f64 / 86_400.0
}

/// Init gives the timestamp one day; signers told it lives three days find it within their
/// window (less than half its lifetime left) and re-sign it at once; bins and top-level
/// targets, a year from expiry with a year's lifetime, are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_is_within_the_refresh_window_is_re_signed() {
    let repo = Repo::init(4);
    let mut settings = repo.settings();
    settings.expiries = Expiries {
        timestamp: Duration::from_secs(3 * 86_400),
        ..Expiries::default()
    };
    let (version, expiry) = repo.timestamp();
    assert!(days_from_now(&expiry) <= 1.0);
    let signers = Signers::start_with(&repo, &repo.inbox, settings);

    let expiry = eventually("the timestamp re-signed", || {
        let (v, expiry) = repo.timestamp();
        (v > version).then_some(expiry)
    })
    .await;
    assert!(days_from_now(&expiry) > 2.9, "{expiry}");
    // The targets signer's first batch is its own start-up expiry check (nothing else was
    // sent to it): it wrote nothing.
    signers.targets.wait_for("batch done", 1).await;
    assert_eq!(repo.newest("targets"), 1);
    for bin in HashBins::new(4).unwrap().names() {
        assert_eq!(repo.newest(&bin), 1, "{bin} re-signed outside its window");
    }
    repo.client().await;
    signers.stop().await;
}

/// Lifetimes of seconds: idle, every role re-signs by itself before its metadata expires,
/// and the targets signer goes on doing so while paused; a client accepts the repository
/// throughout. Re-signed once less than three quarters of the lifetime is left (`run
/// --refresh-left-percent 75`): a round takes about three seconds rather than five.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_re_signed_before_it_expires_also_while_paused() {
    let repo = Repo::init_with(4, short_lifetimes());
    let mut settings = repo.settings();
    settings.refresh_window = 0.75;
    let signers = Signers::start_with(&repo, &repo.inbox, settings);
    for log in [&signers.targets, &signers.snapshot, &signers.timestamp] {
        log.wait_for("signer ready", 1).await;
    }
    let releases = repo.releases("rel", 5, "x");
    assert_all_signed(&repo.add(&releases).await, 5);

    for paused in [false, true] {
        if paused {
            Control::new(&repo.layout).pause(None).unwrap();
            signers
                .targets
                .wait_for("paused (tuf-client resume", 1)
                .await;
        }
        let (ts, snap, top) = (
            repo.timestamp().0,
            repo.newest("snapshot"),
            repo.newest("targets"),
        );
        let top_expires = expires(&repo, "targets", top);
        eventually("targets, snapshot and timestamp all re-signed", || {
            (repo.timestamp().0 > ts + 1
                && repo.newest("snapshot") > snap
                && repo.newest("targets") > top)
                .then_some(())
        })
        .await;
        assert!(expires(&repo, "targets", repo.newest("targets")) > top_expires);
        repo.assert_downloads(&releases).await;
    }
    signers.stop().await;
}

/// `tuf-client refresh-expiry`: the targets signer re-signs every bin now (the chain follows
/// to a new timestamp), and `--role timestamp` re-signs just the timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_expiry_forces_every_bin_and_the_timestamp_on_request() {
    let repo = Repo::init(8);
    let signers = repo.start().await;
    let releases = repo.releases("rel", 8, "f");
    assert_all_signed(&repo.add(&releases).await, 8);

    let bins: Vec<(String, u64)> = HashBins::new(8)
        .unwrap()
        .names()
        .map(|b| {
            let v = repo.newest(&b);
            (b, v)
        })
        .collect();
    let (ts, _) = repo.timestamp();
    let job = TargetsJob {
        refresh_expiry: true,
        ..Default::default()
    };
    let _ = repo.send(&repo.inbox, &[job]).await;
    eventually("every bin re-signed and published", || {
        let fresh = bins.iter().all(|(b, v)| repo.newest(b) > *v);
        (fresh && repo.timestamp().0 > ts).then_some(())
    })
    .await;
    repo.covered(expected(&releases)).await;
    repo.assert_downloads(&releases).await;

    let (ts, _) = repo.timestamp();
    let snapshot = repo.newest("snapshot");
    let job = TimestampJob {
        refresh_expiry: true,
        ..Default::default()
    };
    publish(
        &signers,
        Queue::Timestamp,
        &serde_json::to_vec(&job).unwrap(),
    )
    .await;
    eventually("the timestamp re-signed", || {
        (repo.timestamp().0 > ts).then_some(())
    })
    .await;
    assert_eq!(repo.newest("snapshot"), snapshot, "only the timestamp");
    let report = repo.validate();
    assert!(report.is_ok(), "{}", report.render());
    signers.stop().await;
}
