//! The signing seam (`keys::Sign`): a key whose holder cannot sign (a token unplugged, a
//! KMS unreachable) fails the batch before anything is written; the job is neither lost nor
//! dead-lettered, and is signed once the key can sign again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use package_signing::keys::{previous_key_file, FileKey, KeySource, RoleKeys, Sign, SigningKey};
use package_signing::ops::init::find_key;
use package_signing::role::Role;
use package_signing::{Error, Result};

use crate::harness::*;
use crate::signers::Signers;

/// A key on a token that can be pulled out: signs while `plugged`, else fails as a token
/// does.
pub(crate) struct Unplugged {
    pub(crate) key: FileKey,
    pub(crate) plugged: Arc<AtomicBool>,
}

impl Sign for Unplugged {
    fn public_key(&self) -> Vec<u8> {
        self.key.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        if self.plugged.load(Ordering::SeqCst) {
            self.key.sign(message)
        } else {
            Err(Error::Signing("token not present (test)".into()))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_cannot_sign_fails_the_batch_which_is_signed_once_it_can() {
    let repo = Repo::init(4);
    let plugged = Arc::new(AtomicBool::new(true));
    let keys = repo.keys.clone();
    let token = plugged.clone();
    let signers = Signers::start_with_keys(&repo.inbox, repo.settings(), move |role| {
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
    });
    for log in [&signers.targets, &signers.snapshot, &signers.timestamp] {
        log.wait_for("signer ready", 1).await;
    }
    let before = repo.releases("rel-a", 3, "a");
    assert_all_signed(&repo.add(&before).await, 3);
    let metadata = || {
        // The versions (their gzip copies are made later, off the signing path).
        let mut names: Vec<_> = std::fs::read_dir(repo.layout.metadata_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| !name.to_string_lossy().ends_with(".gz"))
            .collect();
        names.sort();
        (names, repo.timestamp())
    };
    let published = metadata();

    plugged.store(false, Ordering::SeqCst);
    let held = repo.releases("rel-b", 4, "b");
    let submitted = repo.submit(&repo.inbox, &held, 100, false).await;
    signers.targets.wait_for("cannot sign", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        metadata(),
        published,
        "nothing is written while the key cannot sign"
    );
    assert!(
        dead_letters(&repo.inbox).is_empty(),
        "a key that cannot sign is not the job's fault"
    );
    let mut client = repo.client().await;
    for r in &held {
        assert_eq!(client.download(&r.name).await, None, "{} signed", r.name);
    }

    plugged.store(true, Ordering::SeqCst);
    assert_all_signed(&submitted.outcomes().await, 4);
    repo.assert_downloads(&before).await;
    repo.assert_downloads(&held).await;
    assert!(signers.all_running());
    signers.stop().await;
}
