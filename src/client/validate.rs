//! `tuf-client validate`: checks a repository folder the way a client would, all of it at
//! once: every signature and threshold, the root chain, that timestamp and snapshot describe
//! the files that are there (version, length, hash), that every target sits in the bin its
//! hash names, that every target's file is in `targets/` with its signed length and hashes
//! (unless the repository's files are published elsewhere), and that nothing expires within a
//! given window.

use std::fmt::Write;
use std::time::Duration;

use tough::schema::RoleType;

use crate::keys::KeyIdRule;
use crate::pin::Pin;
use crate::repository::expiry::show_duration;
use crate::repository::{Expiries, Layout};
use crate::role::Role;
use crate::roles::check_version;
use crate::schema::Header;
use crate::trusted::{
    trust_published_snapshot, trust_published_targets, trusted_chain_at, RootChain,
};
use crate::updater::TrustedSet;
use crate::verify::verify_delegated;
use crate::{Error, Result};

#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub summary: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.summary {
            let _ = writeln!(out, "ok      {line}");
        }
        for p in &self.problems {
            let _ = writeln!(out, "PROBLEM {p}");
        }
        let _ = writeln!(
            out,
            "{}",
            if self.is_ok() {
                "repository valid".to_string()
            } else {
                format!("{} problem(s)", self.problems.len())
            }
        );
        out
    }
}

fn read(layout: &Layout, file: &str) -> Result<Vec<u8>> {
    let path = layout.metadata_dir().join(file);
    std::fs::read(&path).map_err(Error::io("cannot read", &path))
}

/// Most missing or wrong target files named one by one; the rest are counted.
const MAX_FILE_PROBLEMS: usize = 20;

/// When metadata counts as expiring: one window for every role (`--expires-within`), or each
/// role's own warning window, from the lifetimes the signers were given.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    Every(Duration),
    PerRole(Expiries),
}

impl Window {
    /// `--expires-within` when given, else each role's warning window from `expiries`.
    pub fn new(every: Option<Duration>, expiries: Expiries) -> Window {
        every.map_or(Window::PerRole(expiries), Window::Every)
    }

    fn of(&self, role: Role) -> Duration {
        match self {
            Window::Every(window) => *window,
            Window::PerRole(expiries) => expiries.warning(role),
        }
    }

    /// Why `what` (of `role`), expiring at `expires`, is reported; `None` when it is not.
    fn judge(&self, what: &str, role: Role, expires: jiff::Timestamp) -> Option<String> {
        let window = self.of(role);
        let left = expires.as_second() - jiff::Timestamp::now().as_second();
        if left > window.as_secs() as i64 {
            return None;
        }
        if left <= 0 {
            return Some(format!(
                "{what} has expired (at {expires}): clients refuse it until its signer \
                 re-signs it; is it running?"
            ));
        }
        let when = show_duration(Duration::from_secs(left as u64));
        Some(match self {
            Window::Every(_) => format!(
                "{what} expires in {when} (at {expires}), within --expires-within {}",
                show_duration(window)
            ),
            Window::PerRole(expiries) => format!(
                "{what} expires in {when} (at {expires}): less than a quarter of its {} \
                 lifetime is left, and its signer re-signs at half; is it running? \
                 (--expire-{} if the signers were given another lifetime, --expires-within \
                 for one window for every role)",
                show_duration(expiries.of(role)),
                role.name()
            ),
        })
    }
}

/// `tuf-client validate`: prints the report; fails when it found problems.
pub fn run(layout: &Layout, pin: &Pin, window: &Window, target_files: bool) -> Result<()> {
    let report = validate(layout, pin, window, target_files)?;
    print!("{}", report.render());
    if report.is_ok() {
        Ok(())
    } else {
        Err(Error::Verify(format!(
            "{} problem(s) found",
            report.problems.len()
        )))
    }
}

/// Validates the repository at `layout`, its roots checked from `pin` (the root the caller
/// trusts); metadata expiring within its role's `window` is a problem. With `target_files`, every
/// signed target must be in `targets/` (as `DIR/SHA256.FILE`) with its signed length and
/// hashes, as clients will download it.
pub fn validate(layout: &Layout, pin: &Pin, window: &Window, target_files: bool) -> Result<Report> {
    layout.require_initialised()?;
    let mut report = Report::default();
    let expiry = |report: &mut Report, what: &str, role: Role, expires: jiff::Timestamp| {
        report.problems.extend(window.judge(what, role, expires));
    };

    // The checks a client makes (the updater's trusted set), on the files on disk: the root
    // chain, then timestamp, snapshot, targets and every bin. Expiry is judged here against
    // the window, every role at once, so the set is given the earliest reference time (for
    // it, nothing has expired).
    let mut set = match trusted_chain_at(layout, pin, jiff::Timestamp::MIN) {
        Ok(set) => set,
        Err(e) => {
            report.problems.push(e.to_string());
            report
                .problems
                .push("no root chain verifies; nothing else can be checked".into());
            return Ok(report);
        }
    };
    let root = set.root().clone();
    // What the signers adopt: the same chain, from the same pin.
    let chain = RootChain {
        current: root.clone(),
        pin: pin.clone(),
    };
    let versions = layout.scan_versions()?;
    expiry(&mut report, Role::Root.name(), Role::Root, root.expires);
    report.summary.push(format!(
        "root chain v{}..v{} from the pinned root {} ({} signature(s) checked per version)",
        pin.load()?.root.version,
        root.version,
        pin.file.display(),
        root.roles[&RoleType::Root].threshold
    ));
    // The top-level roles: a failure stops here (nothing below can be checked without them).
    let top_level = |set: &mut TrustedSet| -> Result<()> {
        trust_published_snapshot(set, layout, &read(layout, Role::Timestamp.file())?)?;
        trust_published_targets(set, layout, Role::Targets.name(), Role::Root.name()).map(drop)
    };
    if let Err(e) = top_level(&mut set) {
        report.problems.push(e.to_string());
        return Ok(report);
    }
    let timestamp = set.timestamp().expect("loaded").clone();
    let snapshot = set.snapshot().expect("loaded").clone();
    let top = set.targets(Role::Targets.name()).expect("loaded").clone();
    expiry(
        &mut report,
        Role::Timestamp.name(),
        Role::Timestamp,
        timestamp.expires,
    );
    expiry(
        &mut report,
        Role::Snapshot.name(),
        Role::Snapshot,
        snapshot.expires,
    );
    expiry(
        &mut report,
        Role::Targets.name(),
        Role::Targets,
        top.expires,
    );
    report.summary.push(format!(
        "timestamp v{} -> snapshot v{} (length and sha256 match)",
        timestamp.version, snapshot.version
    ));
    let Some(delegations) = &top.delegations else {
        report
            .problems
            .push("top-level targets delegates nothing".into());
        return Ok(report);
    };
    // php-tuf checks the ids of the root's keys and of the keys targets delegates to.
    let rules = [&root.keys, &delegations.keys].map(KeyIdRule::of_all);
    report.summary.push(
        match rules {
            [Some(KeyIdRule::PhpTuf), Some(KeyIdRule::PhpTuf)] => {
                "key ids by php-tuf's rule (php-tuf, python-tuf and go-tuf accept them)"
            }
            [Some(KeyIdRule::Spec), Some(KeyIdRule::Spec)] => {
                "key ids by the specification's rule (php-tuf, so Composer's TUF plugin, refuses them)"
            }
            _ => "key ids by mixed or unknown rules (php-tuf refuses any not by its rule)",
        }
        .into(),
    );
    let mut targets = 0;
    let mut file_problems = 0;
    for role in &delegations.roles {
        let bin =
            trust_published_targets(&mut set, layout, &role.name, Role::Targets.name()).cloned();
        let bin = match bin {
            Ok(bin) => bin,
            Err(e) => {
                report.problems.push(e.to_string());
                continue;
            }
        };
        expiry(&mut report, &role.name, Role::Bins, bin.expires);
        for name in bin.targets.keys() {
            if !role.matches(name) {
                report.problems.push(format!(
                    "{}: {name} is not in the hash range this bin is delegated",
                    role.name,
                ));
            }
        }
        targets += bin.targets.len();
        if target_files {
            for (name, file) in &bin.targets {
                if let Err(why) = check_target_file(layout, name, file) {
                    file_problems += 1;
                    if file_problems <= MAX_FILE_PROBLEMS {
                        report.problems.push(why);
                    }
                }
            }
        }
    }
    if file_problems > MAX_FILE_PROBLEMS {
        report.problems.push(format!(
            "... and {} more target files missing or not as signed",
            file_problems - MAX_FILE_PROBLEMS
        ));
    }
    if target_files && file_problems == 0 {
        report.summary.push(format!(
            "{targets} target files in {} with their signed length and hashes",
            layout.targets_dir().display()
        ));
    }
    // Bins of an earlier bin count stay listed (a snapshot may never drop a file); anything
    // else the delegations do not name has no business there.
    let delegated: std::collections::HashSet<String> = delegations
        .roles
        .iter()
        .map(|r| format!("{}.json", r.name))
        .collect();
    let mut retired = 0;
    for file in snapshot.meta.keys() {
        if file == Role::Targets.file() || delegated.contains(file) {
            continue;
        }
        match file.strip_suffix(".json") {
            Some(bin) if crate::repository::HashBins::is_bin_name(bin) => retired += 1,
            _ => report.problems.push(format!(
                "snapshot lists {file}, which is neither targets.json nor a bin"
            )),
        }
    }
    if retired > 0 {
        report.summary.push(format!(
            "snapshot also lists {retired} retired bin(s) of an earlier bin count (kept: clients \
             refuse a snapshot that drops a file)"
        ));
    }
    report.summary.push(format!(
        "targets v{}: {} bins, {targets} targets, each in its hash bin",
        top.version,
        delegations.roles.len()
    ));
    let snapshot_listed = |role: &str| {
        snapshot
            .meta
            .get(&format!("{role}.json"))
            .map_or(0, |m| m.version.get())
    };

    // Files newer than the ones listed are what a signer adopts as its state when it starts
    // or reloads: each must verify, or the signer stops on it.
    let mut unlisted = 0;
    let mut newer =
        |role: &str, listed: u64, check: &dyn Fn(&[u8], &std::path::Path) -> Result<Header>| {
            let Some(newest) = versions.get(role).and_then(|v| v.last()).copied() else {
                return;
            };
            if newest <= listed {
                return;
            }
            unlisted += 1;
            let path = layout.versioned(role, newest);
            let result = std::fs::read(&path)
                .map_err(Error::io("cannot read metadata", &path))
                .and_then(|bytes| check(&bytes, &path))
                .and_then(|header| check_version(&path, header.version.get(), newest));
            if let Err(e) = result {
                report.problems.push(e.to_string());
            }
        };
    newer(Role::Snapshot.name(), snapshot.version.get(), &|b, p| {
        chain.verify_role(b, p, RoleType::Snapshot)
    });
    newer(Role::Targets.name(), top.version.get(), &|b, p| {
        chain.verify_role(b, p, RoleType::Targets)
    });
    for role in &delegations.roles {
        newer(&role.name, snapshot_listed(&role.name), &|b, p| {
            verify_delegated(b, p, delegations, &role.name)
        });
    }
    if unlisted > 0 {
        report.summary.push(format!(
            "{unlisted} file(s) newer than the snapshot lists (a batch on its way) checked"
        ));
    }
    Ok(report)
}

/// The file clients download for target `name`: there, with the signed length and hashes.
fn check_target_file(
    layout: &Layout,
    name: &str,
    file: &crate::updater::metadata::TargetFile,
) -> std::result::Result<(), String> {
    let Some(prefix) = file.hash_prefix() else {
        return Err(format!("{name}: signed with no hash"));
    };
    let path = layout
        .targets_dir()
        .join(crate::repository::layout::consistent_path(name, prefix));
    let missing = || {
        format!(
            "{name}: no file {} (clients cannot download it): copy the release in with \
             `add-targets --targets-dir REPO/targets`, or, if the files are published \
             elsewhere, run validate with --no-target-files",
            path.display()
        )
    };
    let size = std::fs::metadata(&path).map_err(|_| missing())?.len();
    if size != file.length {
        return Err(format!(
            "{}: {size} bytes, signed as {}",
            path.display(),
            file.length
        ));
    }
    let bytes = std::fs::read(&path).map_err(|_| missing())?;
    file.check(name, &bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}
