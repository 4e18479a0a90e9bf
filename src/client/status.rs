//! `tuf-client status`: each role's newest version, expiry, key ids and the target count.

use std::fmt::Write;

use tough::schema::{RoleType, Snapshot, Targets, Timestamp};

use crate::repository::{signed, Layout};
use crate::roles::latest_root;
use crate::Result;

pub struct RoleStatus {
    pub role: String,
    pub version: u64,
    pub expires: jiff::Timestamp,
    pub key_ids: Vec<String>,
}

pub struct Status {
    pub roles: Vec<RoleStatus>,
    pub bins: usize,
    pub targets: usize,
}

pub fn read(layout: &Layout) -> Result<Status> {
    let root = latest_root(layout)?;
    let keys_of = |role: RoleType| -> Vec<String> {
        root.signed
            .roles
            .get(&role)
            .map(|r| r.keyids.iter().map(hex::encode).collect())
            .unwrap_or_default()
    };
    let (ts, _) = signed::load::<Timestamp>(&layout.timestamp(), "timestamp")?;
    let snap_version = ts
        .signed
        .meta
        .get("snapshot.json")
        .map(|m| m.version.get())
        .unwrap_or(1);
    let (snapshot, _) =
        signed::load::<Snapshot>(&layout.versioned("snapshot", snap_version), "snapshot")?;
    let top_version = snapshot
        .signed
        .meta
        .get("targets.json")
        .map(|m| m.version.get())
        .unwrap_or(1);
    let (top, _) = signed::load::<Targets>(&layout.versioned("targets", top_version), "targets")?;
    let mut targets = 0;
    let mut bins = 0;
    for (file, meta) in &snapshot.signed.meta {
        if let Some(bin) = file.strip_suffix(".json").filter(|b| *b != "targets") {
            let (t, _) =
                signed::load::<Targets>(&layout.versioned(bin, meta.version.get()), "bin")?;
            targets += t.signed.targets.len();
            bins += 1;
        }
    }
    let roles = vec![
        RoleStatus {
            role: "root".into(),
            version: root.signed.version.get(),
            expires: root.signed.expires,
            key_ids: keys_of(RoleType::Root),
        },
        RoleStatus {
            role: "targets".into(),
            version: top.signed.version.get(),
            expires: top.signed.expires,
            key_ids: keys_of(RoleType::Targets),
        },
        RoleStatus {
            role: "snapshot".into(),
            version: snapshot.signed.version.get(),
            expires: snapshot.signed.expires,
            key_ids: keys_of(RoleType::Snapshot),
        },
        RoleStatus {
            role: "timestamp".into(),
            version: ts.signed.version.get(),
            expires: ts.signed.expires,
            key_ids: keys_of(RoleType::Timestamp),
        },
    ];
    Ok(Status {
        roles,
        bins,
        targets,
    })
}

impl Status {
    pub fn render(&self) -> String {
        let now = jiff::Timestamp::now();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<10} {:>8}  {:<21} {:<14} key ids",
            "role", "version", "expires", ""
        );
        for r in &self.roles {
            let left = r.expires.duration_since(now);
            let hours = left.as_secs() / 3600;
            let note = if left.is_negative() {
                "EXPIRED".to_string()
            } else if hours < 48 {
                format!("in {hours} h")
            } else {
                format!("in {} d", hours / 24)
            };
            let ids: Vec<String> = r
                .key_ids
                .iter()
                .map(|k| k[..16.min(k.len())].to_string())
                .collect();
            let _ = writeln!(
                out,
                "{:<10} {:>8}  {:<21} {:<14} {}",
                r.role,
                r.version,
                r.expires.to_string(),
                note,
                ids.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "bins: {}   targets signed: {}",
            self.bins, self.targets
        );
        out
    }
}
