//! The health record and its rules on the three signers running in-process (the library's
//! `health::check`, what `tuf-signer health` prints): healthy once started; a key that cannot
//! sign (the unplugged token of `signing.rs`, through `keys::Sign`) is reported by the key
//! probe while no job comes, with its reason, and healthy again once the key signs; a signer
//! stopped says so. The broker test `tests/health.rs` runs the command against real processes.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use package_signing::health::{check, Finding, Rules};
use package_signing::keys::{previous_key_file, FileKey, KeySource, RoleKeys, SigningKey};
use package_signing::ops::init::find_key;
use package_signing::role::Role;
use package_signing::worker::WorkerOptions;

use crate::harness::*;
use crate::signers::Signers;
use crate::signing::Unplugged;

/// The targets signer's findings, from its state folder `state`.
fn targets_findings(repo: &Repo, state: &Path) -> Vec<Finding> {
    let mut all = check(state, &repo.layout, Some(Role::Targets), &Rules::default()).unwrap();
    assert_eq!(all.len(), 1);
    all.pop().unwrap().1
}

fn failures(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| !f.healthy)
        .map(|f| f.says.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_probe_reports_a_key_that_cannot_sign_while_no_job_comes() {
    let repo = Repo::init(4);
    let state = repo.settings().state;
    let plugged = Arc::new(AtomicBool::new(true));
    let keys = repo.keys.clone();
    let token = plugged.clone();
    let options = WorkerOptions {
        key_probe: Duration::from_millis(100),
        ..WorkerOptions::default()
    };
    let signers = Signers::start_with_options(
        &repo.inbox,
        repo.settings(),
        move |role| {
            let file = find_key(&keys, role.name());
            if role != Role::Targets {
                return KeySource::file(file);
            }
            let token = token.clone();
            KeySource::new(move || {
                let key = Unplugged {
                    key: FileKey::load(&file)?,
                    plugged: token.clone(),
                };
                Ok(RoleKeys {
                    key: SigningKey::new(Box::new(key))?,
                    previous: None,
                    previous_file: previous_key_file(&file),
                })
            })
        },
        options,
    );
    for log in [&signers.targets, &signers.snapshot, &signers.timestamp] {
        log.wait_for("signer ready", 1).await;
    }
    // Healthy once it has taken its first batch (its expiry check) and probed its key.
    let findings = eventually("the targets signer healthy and active", || {
        let findings = targets_findings(&repo, &state);
        let active = findings[0].says.contains("active");
        let probed = findings[1].says.contains("signed");
        (failures(&findings).is_empty() && active && probed).then_some(findings)
    })
    .await;
    assert!(findings[1].says.starts_with("key "), "{findings:?}");
    assert!(
        findings
            .iter()
            .any(|f| f.says.starts_with("targets.json v")),
        "{findings:?}"
    );

    // The token is pulled out while no job comes: the probe sees it.
    plugged.store(false, Ordering::SeqCst);
    let failed = eventually("the key reported unable to sign", || {
        let failed = failures(&targets_findings(&repo, &state));
        (!failed.is_empty()).then_some(failed)
    })
    .await;
    assert_eq!(failed.len(), 1, "only the key fails: {failed:?}");
    assert!(failed[0].contains("cannot sign since"), "{failed:?}");
    assert!(failed[0].contains("token not present (test)"), "{failed:?}");
    assert!(failed[0].contains("check the key's token"), "{failed:?}");
    signers
        .targets
        .wait_for("key cannot sign: nothing is signed until it can", 1)
        .await;
    // Said once, not at every probe.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(signers.targets.count("key cannot sign"), 1);

    // Back in: healthy again, and the log says so.
    plugged.store(true, Ordering::SeqCst);
    eventually("the key healthy again", || {
        failures(&targets_findings(&repo, &state))
            .is_empty()
            .then_some(())
    })
    .await;
    signers.targets.wait_for("key can sign again", 1).await;

    // Stopped: the record says so at once.
    signers.stop().await;
    let failed = failures(&targets_findings(&repo, &state));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("stopped at"), "{failed:?}");
}
