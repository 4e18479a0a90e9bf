//! `tuf-client validate`: checks a repository folder the way a client would, all of it at
//! once: every signature and threshold, the root chain, that timestamp and snapshot describe
//! the files that are there (version, length, hash), that every target sits in the bin its
//! hash names, that every target's file is in `targets/` with its signed length and hashes
//! (unless the repository's files are published elsewhere), and that nothing expires within a
//! given window.

use std::collections::HashSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tough::schema::RoleType;

use crate::keys::KeyIdRule;
use crate::pin::Pin;
use crate::progress::{Progress, Show};
use crate::repository::expiry::show_duration;
use crate::repository::{Expiries, Layout};
use crate::role::Role;
use crate::roles::check_version;
use crate::schema::Header;
use crate::schema::{listed_name, role_of_listed, Delegations, Snapshot, Targets};
use crate::trusted::{
    published_file, trust_published_snapshot, trust_published_targets, trusted_chain_at, RootChain,
};
use crate::updater::TrustedSet;
use crate::verify::verify_delegated;
use crate::{Error, Result};

/// What `validate` found: each check passed, and each problem.
#[derive(Debug, Default)]
pub struct Report {
    /// What is wrong, one line each; the repository is valid when there is none.
    pub problems: Vec<String>,
    /// What was checked and found right, one line each.
    pub summary: Vec<String>,
}

impl Report {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as `validate` prints it: `ok` lines, then `PROBLEM` lines, then the verdict.
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

/// Most missing or wrong target files named one by one; the rest are counted.
const MAX_FILE_PROBLEMS: usize = 20;

/// When metadata counts as expiring: one window for every role (`--expires-within`), or each
/// role's own warning window, from the lifetimes the signers were given.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    /// This window for every role (`--expires-within`).
    Every(Duration),
    /// Each role's own warning window, from its lifetime (see [`Expiries::warning`]).
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

    /// Why a file of `role`, expiring at `expires`, is reported; `None` when it is not.
    fn judge(&self, role: Role, expires: jiff::Timestamp) -> Option<String> {
        let window = self.of(role);
        let left = expires.as_second() - jiff::Timestamp::now().as_second();
        if left > window.as_secs() as i64 {
            return None;
        }
        if left <= 0 {
            return Some(format!(
                "has expired (at {expires}): clients refuse it until its signer \
                 re-signs it; is it running?"
            ));
        }
        let when = show_duration(Duration::from_secs(left as u64));
        Some(match self {
            Window::Every(_) => format!(
                "expires in {when} (at {expires}), within --expires-within {}",
                show_duration(window)
            ),
            Window::PerRole(expiries) => format!(
                "expires in {when} (at {expires}): less than a quarter of its {} \
                 lifetime is left, and its signer re-signs at half; is it running? \
                 (--expire-{} if the signers were given another lifetime, --expires-within \
                 for one window for every role)",
                show_duration(expiries.of(role)),
                role.name()
            ),
        })
    }
}

/// `tuf-client validate`: prints the report, with progress over the bins on stderr as `show`
/// says; fails when it found problems.
pub fn run(
    layout: &Layout,
    pin: &Pin,
    window: &Window,
    target_files: bool,
    show: Show,
) -> Result<()> {
    let report = validate_showing(layout, pin, window, target_files, show)?;
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
    validate_showing(layout, pin, window, target_files, Show::Hidden)
}

/// [`validate`], showing progress over the bins as `show` says.
fn validate_showing(
    layout: &Layout,
    pin: &Pin,
    window: &Window,
    target_files: bool,
    show: Show,
) -> Result<Report> {
    layout.require_initialised()?;
    let mut check = Check {
        layout,
        window,
        report: Report::default(),
        show,
    };
    // The checks a client makes (the updater's trusted set), on the files on disk: the root
    // chain, then timestamp, snapshot, targets and every bin; a failure in the chain or the
    // top-level roles stops there (nothing below can be checked without them).
    let Some(mut set) = check.root_chain(pin)? else {
        return Ok(check.report);
    };
    let Some(top) = check.top_level(&mut set) else {
        return Ok(check.report);
    };
    let Some(delegations) = top.targets.delegations.clone() else {
        check.problem(
            &top.targets_file,
            "top-level targets delegates nothing".into(),
        );
        return Ok(check.report);
    };
    check.key_ids(set.root(), &delegations);
    let targets = check.bins(&mut set, &delegations, target_files);
    check.snapshot_lists(&top.snapshot, &delegations);
    check.report.summary.push(format!(
        "targets v{}: {} bins, {targets} targets, each in its hash bin",
        top.targets.version,
        delegations.roles.len()
    ));
    check.newer_files(pin, set.root(), &top, &delegations)?;
    check.gzip_copies()?;
    Ok(check.report)
}

/// The top-level files a client trusts, and where they are.
struct TopLevel {
    snapshot: Snapshot,
    targets: Targets,
    targets_file: PathBuf,
}

/// One validation under way: each step adds to the report, naming each file by its path in
/// the repository (`metadata/2.bin-0-3.json`), which the operator opens.
struct Check<'a> {
    layout: &'a Layout,
    window: &'a Window,
    report: Report,
    /// How progress over the bins shows.
    show: Show,
}

impl Check<'_> {
    /// Every `.gz` file in `metadata/` is the gzip copy of a version beside it, with its bytes
    /// ([`crate::repository::gzip`]): a web server that serves precompressed files (nginx
    /// `gzip_static`) serves any `NAME.gz` in place of `NAME`, so a stray or stale one (a
    /// `timestamp.json.gz`) would be served to clients.
    fn gzip_copies(&mut self) -> Result<()> {
        use crate::repository::gzip;
        let dir = self.layout.metadata_dir();
        let mut copies = 0;
        for entry in std::fs::read_dir(&dir).map_err(Error::io("cannot list metadata", &dir))? {
            let path = entry
                .map_err(Error::io("cannot list metadata", &dir))?
                .path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(gzip::SUFFIX) {
                continue;
            }
            let Some(plain) = crate::repository::layout::version_of_copy(name) else {
                self.problem(
                    &path,
                    "is no gzip copy of a metadata version, but a web server \
                    that serves precompressed files would serve it: remove it"
                        .into(),
                );
                continue;
            };
            let read = |p: &Path| crate::durable::read_plain(p, 1 << 30);
            let same = read(&path)
                .and_then(|bytes| gzip::decompress(&bytes))
                .and_then(|unpacked| Ok(unpacked == read(&dir.join(plain))?));
            match same {
                Ok(true) => copies += 1,
                Ok(false) => self.problem(&path, format!("does not gunzip to {plain}: remove it")),
                // Pruned meanwhile (a copy goes just before its version).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => self.problem(
                    &path,
                    format!(
                        "cannot be checked against {plain} ({e}): \
                    remove it"
                    ),
                ),
            }
        }
        if copies > 0 {
            self.report.summary.push(format!(
                "{copies} gzip copies in metadata/, each its version's bytes"
            ));
        }
        Ok(())
    }

    /// `problem`, about the file at `path`.
    fn problem(&mut self, path: &Path, problem: String) {
        let file = path.strip_prefix(&self.layout.dir).unwrap_or(path);
        self.report
            .problems
            .push(format!("{}: {problem}", file.display()));
    }

    /// Whether the file at `path` (of `role`) expires within the window.
    fn expiry(&mut self, path: &Path, role: Role, expires: jiff::Timestamp) {
        if let Some(why) = self.window.judge(role, expires) {
            self.problem(path, why);
        }
    }

    /// The root chain from the pin, as the signers adopt it. Expiry is judged against the
    /// window, every role at once, so the set is given the earliest reference time (for it,
    /// nothing has expired). `None` when no chain verifies.
    fn root_chain(&mut self, pin: &Pin) -> Result<Option<TrustedSet>> {
        let set = match trusted_chain_at(self.layout, pin, jiff::Timestamp::MIN) {
            Ok(set) => set,
            Err(e) => {
                self.report.problems.push(e.to_string());
                self.report
                    .problems
                    .push("no root chain verifies; nothing else can be checked".into());
                return Ok(None);
            }
        };
        let root = set.root();
        let file = self.layout.versioned(Role::Root.name(), root.version.get());
        self.expiry(&file, Role::Root, root.expires);
        self.report.summary.push(format!(
            "root chain v{}..v{} from the pinned root {} ({} signature(s) checked per version)",
            pin.load()?.root.version,
            root.version,
            pin.file.display(),
            root.roles[&RoleType::Root].threshold
        ));
        Ok(Some(set))
    }

    /// timestamp.json, the snapshot it names and the top-level targets the snapshot names,
    /// each checked as a client checks it; `None` after the first that fails.
    fn top_level(&mut self, set: &mut TrustedSet) -> Option<TopLevel> {
        let layout = self.layout;
        let timestamp_file = layout.timestamp();
        let trusted = std::fs::read(&timestamp_file)
            .map_err(Error::io("cannot read", &timestamp_file))
            .and_then(|bytes| trust_published_snapshot(set, layout, &bytes));
        if let Err(e) = trusted {
            return self.failed(&timestamp_file, e);
        }
        let snapshot_file = published_file(set, layout, Role::Snapshot.name());
        let targets_file = published_file(set, layout, Role::Targets.name());
        let targets =
            match trust_published_targets(set, layout, Role::Targets.name(), Role::Root.name()) {
                Ok(t) => t.clone(),
                Err(e) => return self.failed(&targets_file, e),
            };
        let (timestamp, snapshot) = (
            set.timestamp().expect("trusted"),
            set.snapshot().expect("trusted").clone(),
        );
        self.report.summary.push(format!(
            "timestamp v{} -> snapshot v{} (length and sha256 match)",
            timestamp.version, snapshot.version
        ));
        self.expiry(&timestamp_file, Role::Timestamp, timestamp.expires);
        self.expiry(&snapshot_file, Role::Snapshot, snapshot.expires);
        self.expiry(&targets_file, Role::Targets, targets.expires);
        Some(TopLevel {
            snapshot,
            targets,
            targets_file,
        })
    }

    /// A step that failed on `e`: a problem about the file the error names, or else about
    /// `path`.
    fn failed<T>(&mut self, path: &Path, e: Error) -> Option<T> {
        match e {
            Error::Published { path, source } => self.problem(&path, source.to_string()),
            Error::Io { ref path, .. } => self.problem(&path.clone(), e.to_string()),
            e => self.problem(path, e.to_string()),
        }
        None
    }

    /// php-tuf checks the ids of the root's keys and of the keys targets delegates to.
    fn key_ids(&mut self, root: &crate::schema::Root, delegations: &Delegations) {
        let rules = [
            KeyIdRule::of_all(&root.keys),
            KeyIdRule::of_all(&delegations.keys),
        ];
        self.report.summary.push(
            match rules {
                [Some(KeyIdRule::PhpTuf), Some(KeyIdRule::PhpTuf)] => {
                    "key ids by php-tuf's rule (php-tuf, python-tuf and go-tuf accept them)"
                }
                [Some(KeyIdRule::Spec), Some(KeyIdRule::Spec)] => {
                    "key ids by the specification's rule (php-tuf, so Composer's TUF plugin, \
                     refuses them)"
                }
                _ => "key ids by mixed or unknown rules (php-tuf refuses any not by its rule)",
            }
            .into(),
        );
    }

    /// Every bin the top-level targets delegates, as a client checks it; each target in the
    /// hash range of its bin, and (with `target_files`) its file where clients download it.
    /// Returns how many targets the bins sign.
    fn bins(
        &mut self,
        set: &mut TrustedSet,
        delegations: &Delegations,
        target_files: bool,
    ) -> usize {
        let mut targets = 0;
        let mut file_problems = 0;
        let total = delegations.roles.len() as u64;
        let mut checked = Progress::new("checked", " bins", total, self.show);
        for role in &delegations.roles {
            checked.inc(1);
            // Not listed, the problem is the snapshot's.
            let file = published_file(set, self.layout, &role.name);
            let bin =
                match trust_published_targets(set, self.layout, &role.name, Role::Targets.name()) {
                    Ok(bin) => bin.clone(),
                    Err(e) => {
                        self.failed::<()>(&file, e);
                        continue;
                    }
                };
            self.expiry(&file, Role::Bins, bin.expires);
            for name in bin.targets.keys().filter(|name| !role.matches(name)) {
                self.problem(
                    &file,
                    format!("{name} is not in the hash range this bin is delegated"),
                );
            }
            targets += bin.targets.len();
            if !target_files {
                continue;
            }
            for (name, target) in &bin.targets {
                if let Err(why) = check_target_file(self.layout, name, target) {
                    file_problems += 1;
                    if file_problems <= MAX_FILE_PROBLEMS {
                        self.report.problems.push(why);
                    }
                }
            }
        }
        checked.finish();
        if file_problems > MAX_FILE_PROBLEMS {
            self.report.problems.push(format!(
                "... and {} more target files missing or not as signed",
                file_problems - MAX_FILE_PROBLEMS
            ));
        }
        if target_files && file_problems == 0 {
            self.report.summary.push(format!(
                "{targets} target files in {} with their signed length and hashes",
                self.layout.targets_dir().display()
            ));
        }
        targets
    }

    /// Bins of an earlier bin count stay listed (a snapshot may never drop a file); anything
    /// else the delegations do not name has no business there.
    fn snapshot_lists(&mut self, snapshot: &Snapshot, delegations: &Delegations) {
        let delegated: HashSet<String> = delegations
            .roles
            .iter()
            .map(|r| listed_name(&r.name))
            .collect();
        let snapshot_file = self
            .layout
            .versioned(Role::Snapshot.name(), snapshot.version.get());
        let mut retired = 0;
        for file in snapshot.meta.keys() {
            if file == Role::Targets.file() || delegated.contains(file) {
                continue;
            }
            match role_of_listed(file) {
                Some(bin) if crate::bins::HashBins::is_bin_name(bin) => retired += 1,
                _ => self.problem(
                    &snapshot_file,
                    format!("lists {file}, which is neither targets.json nor a bin"),
                ),
            }
        }
        if retired > 0 {
            self.report.summary.push(format!(
                "snapshot also lists {retired} retired bin(s) of an earlier bin count (kept: \
                 clients refuse a snapshot that drops a file)"
            ));
        }
    }

    /// Files newer than the ones listed are what a signer adopts as its state when it starts
    /// or reloads: each must verify, or the signer stops on it.
    fn newer_files(
        &mut self,
        pin: &Pin,
        root: &crate::schema::Root,
        top: &TopLevel,
        delegations: &Delegations,
    ) -> Result<()> {
        // What the signers adopt: the same chain, from the same pin.
        let chain = RootChain {
            current: root.clone(),
            pin: pin.clone(),
        };
        let versions = self.layout.scan_versions()?;
        let listed = |role: &str| top.snapshot.listed(role).map_or(0, |m| m.version.get());
        let mut unlisted = 0;
        let mut newer =
            |role: &str, listed: u64, check: &dyn Fn(&[u8], &Path) -> Result<Header>| {
                let Some(newest) = versions.get(role).and_then(|v| v.last()).copied() else {
                    return;
                };
                if newest <= listed {
                    return;
                }
                unlisted += 1;
                let path = self.layout.versioned(role, newest);
                let result = std::fs::read(&path)
                    .map_err(Error::io("cannot read metadata", &path))
                    .and_then(|bytes| check(&bytes, &path))
                    .and_then(|header| check_version(&path, header.version.get(), newest));
                if let Err(e) = result {
                    self.report.problems.push(e.to_string());
                }
            };
        newer(
            Role::Snapshot.name(),
            top.snapshot.version.get(),
            &|b, p| chain.verify_role(b, p, RoleType::Snapshot),
        );
        newer(Role::Targets.name(), top.targets.version.get(), &|b, p| {
            chain.verify_role(b, p, RoleType::Targets)
        });
        for role in &delegations.roles {
            newer(&role.name, listed(&role.name), &|b, p| {
                verify_delegated(b, p, delegations, &role.name)
            });
        }
        if unlisted > 0 {
            self.report.summary.push(format!(
                "{unlisted} file(s) newer than the snapshot lists (a batch on its way) checked"
            ));
        }
        Ok(())
    }
}

/// The file clients download for target `name`: there, with the signed length and hashes.
fn check_target_file(
    layout: &Layout,
    name: &str,
    file: &crate::schema::TargetFile,
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
