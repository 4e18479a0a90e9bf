//! `tuf-client status`: each role's newest version, expiry and key ids, the target count,
//! whether the signers are paused, and (given a broker) how many jobs wait in each queue.

use std::fmt::Write;

use tough::schema::{RoleType, Signed};

use crate::pin::Pin;
use crate::role::Role;
use crate::schema::{Snapshot, Targets, Timestamp};

use crate::broker::amqp::{inspect_queues, AmqpConfig};
use crate::broker::Queue;
use crate::repository::control::{Control, Pause};
use crate::repository::{signed, Expiries, Layout};
use crate::roles::latest_root;
use crate::Result;

/// One role's line in the report.
pub struct RoleStatus {
    /// The role's name (`root`, `targets`, `snapshot`, `timestamp`).
    pub role: String,
    /// The newest version published.
    pub version: u64,
    /// When that version expires.
    pub expires: jiff::Timestamp,
    /// The hex ids of the keys the root lists for the role.
    pub key_ids: Vec<String>,
}

/// One queue's line in the report.
pub struct QueueStatus {
    /// The queue's name on the broker, prefix included (`tuf.targets`).
    pub queue: String,
    /// `(messages, consumers)`, `None` when the queue does not exist yet.
    pub depth: Option<(u32, u32)>,
}

/// What `tuf-client status` reports, read from the repository (and the broker).
pub struct Status {
    /// The top-level roles, root first.
    pub roles: Vec<RoleStatus>,
    /// How many bins the published top-level targets delegates to.
    pub bins: usize,
    /// How many targets the published bins sign, all bins together.
    pub targets: usize,
    /// The pause in force, if the signers are paused.
    pub paused: Option<Pause>,
    /// Each queue's depth and consumers; empty without a broker.
    pub queues: Vec<QueueStatus>,
}

/// The top-level files the published `timestamp.json` leads to, as read from disk (the
/// signatures are `validate`'s and the updater's to check; this is for reporting).
pub struct TopLevel {
    /// The published timestamp.
    pub timestamp: Signed<Timestamp>,
    /// The snapshot the timestamp names.
    pub snapshot: Signed<Snapshot>,
    /// The top-level targets.
    pub targets: Signed<Targets>,
}

/// Reads timestamp → snapshot → top-level targets, no bin.
pub fn top_level(layout: &Layout) -> Result<TopLevel> {
    let (timestamp, _) = signed::load::<Timestamp>(&layout.timestamp(), Role::Timestamp.name())?;
    let snapshot = load_listed::<Snapshot>(layout, &timestamp.signed.meta, Role::Snapshot)?;
    let targets = load_listed::<Targets>(layout, &snapshot.signed.meta, Role::Targets)?;
    Ok(TopLevel {
        timestamp,
        snapshot,
        targets,
    })
}

/// `role`'s file at the version `meta` lists for it (1 when it lists none).
fn load_listed<T: serde::de::DeserializeOwned + crate::schema::Metadata>(
    layout: &Layout,
    meta: &std::collections::BTreeMap<String, crate::schema::MetaFile>,
    role: Role,
) -> Result<Signed<T>> {
    let version = meta.get(role.file()).map(|m| m.version.get()).unwrap_or(1);
    let (file, _) = signed::load::<T>(&layout.versioned(role, version), role.name())?;
    Ok(file)
}

impl TopLevel {
    /// The published version and expiry of an online top-level role's file.
    pub fn of(&self, role: Role) -> (u64, jiff::Timestamp) {
        match role {
            Role::Timestamp => (
                self.timestamp.signed.version.get(),
                self.timestamp.signed.expires,
            ),
            Role::Snapshot => (
                self.snapshot.signed.version.get(),
                self.snapshot.signed.expires,
            ),
            _ => (
                self.targets.signed.version.get(),
                self.targets.signed.expires,
            ),
        }
    }
}

/// The number of bins the published repository delegates to, reading no bin.
pub fn published_bins(layout: &Layout) -> Result<usize> {
    let top = top_level(layout)?.targets;
    Ok(top.signed.delegations.map_or(0, |d| d.roles.len()))
}

/// The repository's status, its roots checked from `pin`.
pub fn read(layout: &Layout, pin: &Pin) -> Result<Status> {
    let root = latest_root(layout, pin)?;
    let keys_of = |role: RoleType| -> Vec<String> {
        root.roles
            .get(&role)
            .map(|r| r.keyids.iter().map(hex::encode).collect())
            .unwrap_or_default()
    };
    let top = top_level(layout)?;
    let delegated = top
        .targets
        .signed
        .delegations
        .as_ref()
        .map(|d| d.roles.as_slice())
        .unwrap_or_default();
    let mut roles = vec![RoleStatus {
        role: Role::Root.name().into(),
        version: root.version.get(),
        expires: root.expires,
        key_ids: keys_of(RoleType::Root),
    }];
    for (role, kind) in [
        (Role::Targets, RoleType::Targets),
        (Role::Snapshot, RoleType::Snapshot),
        (Role::Timestamp, RoleType::Timestamp),
    ] {
        let (version, expires) = top.of(role);
        roles.push(RoleStatus {
            role: role.name().into(),
            version,
            expires,
            key_ids: keys_of(kind),
        });
    }
    Ok(Status {
        roles,
        bins: delegated.len(),
        targets: count_targets(layout, &top.snapshot, delegated)?,
        paused: Control::new(layout).paused()?,
        queues: Vec::new(),
    })
}

/// The targets in the `delegated` bins, at the versions `snapshot` lists (a bin it does not
/// list counts none).
fn count_targets(
    layout: &Layout,
    snapshot: &Signed<Snapshot>,
    delegated: &[crate::schema::DelegatedRole],
) -> Result<usize> {
    let mut targets = 0;
    for role in delegated {
        if let Some(meta) = snapshot.signed.listed(&role.name) {
            let (t, _) =
                signed::load::<Targets>(&layout.versioned(&role.name, meta.version.get()), "bin")?;
            targets += t.signed.targets.len();
        }
    }
    Ok(targets)
}

/// `tuf-client status`: prints the repository's status (in `colour` or not) and, with a
/// broker, its queues; an expiry is close by `expiries` (the lifetimes the signers were
/// given; [`Expiries::warning`]).
pub async fn show(
    layout: &Layout,
    pin: &Pin,
    broker: Option<&AmqpConfig>,
    colour: bool,
    expiries: &Expiries,
) -> Result<()> {
    let mut report = read(layout, pin)?;
    if let Some(config) = broker {
        report = report.with_queues(config).await?;
    }
    print!("{}", report.render(colour, expiries));
    Ok(())
}

/// `tuf-client pause`: stops the targets signers taking jobs (see [`Control::pause`]).
pub fn pause(layout: &Layout, reason: Option<String>) -> Result<()> {
    layout.require_initialised()?;
    match Control::new(layout).pause(reason)? {
        Some(p) => println!("already paused since {}", p.since),
        None => println!(
            "paused: the targets signers stop taking jobs within a second (the batch in hand \
             finishes); submissions wait in the queue"
        ),
    }
    Ok(())
}

/// `tuf-client resume`: lets them take jobs again.
pub fn resume(layout: &Layout) -> Result<()> {
    layout.require_initialised()?;
    match Control::new(layout).resume()? {
        Some(p) => println!("resumed (paused since {})", p.since),
        None => println!("was not paused"),
    }
    Ok(())
}

impl Status {
    /// Adds each queue's depth and consumers as the broker reports them.
    pub async fn with_queues(mut self, config: &AmqpConfig) -> Result<Status> {
        let all = [
            Queue::Targets,
            Queue::Snapshot,
            Queue::Timestamp,
            Queue::DeadLetter,
        ];
        self.queues = inspect_queues(config, &all)
            .await?
            .into_iter()
            .map(|(q, depth)| QueueStatus {
                queue: q.name(&config.prefix),
                depth,
            })
            .collect();
        Ok(self)
    }

    /// The report; with `colour`, close expiries (by [`Expiries::warning`]) in yellow and
    /// expired ones, a pause and dead letters in red.
    pub fn render(&self, colour: bool, expiries: &Expiries) -> String {
        let paint = Paint(colour);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<10} {:>8}  {:<21} {:<14} key ids",
            "role", "version", "expires", ""
        );
        let now = jiff::Timestamp::now();
        for r in &self.roles {
            let _ = writeln!(out, "{}", r.render(now, expiries, paint));
        }
        let _ = writeln!(
            out,
            "bins: {}   targets signed: {}",
            self.bins, self.targets
        );
        let _ = writeln!(out, "{}", self.render_pause(paint));
        if !self.queues.is_empty() {
            let _ = writeln!(out, "{:<40} {:>9} {:>10}", "queue", "messages", "consumers");
            for q in &self.queues {
                let line = match q.depth {
                    Some((messages, consumers)) => {
                        format!("{:<40} {messages:>9} {consumers:>10}", q.queue)
                    }
                    None => format!("{:<40} {:>9} {:>10}", q.queue, "-", "(absent)"),
                };
                let dead = q.queue.ends_with("dead-letter") && q.depth.is_some_and(|d| d.0 > 0);
                let _ = writeln!(out, "{}", paint.on(line, if dead { "31" } else { "" }));
            }
        }
        out
    }

    /// Whether signing is paused, since when and why (in red), or running.
    fn render_pause(&self, paint: Paint) -> String {
        let Some(p) = &self.paused else {
            return "signing: running (not paused)".into();
        };
        let why = p
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        paint.on(
            format!(
                "PAUSED since {}{why} (targets jobs wait; tuf-client resume)",
                p.since
            ),
            "1;31",
        )
    }
}

/// Terminal colours, or none.
#[derive(Debug, Clone, Copy)]
struct Paint(bool);

impl Paint {
    /// `text` in the colour of the SGR `code` (none when empty, or colour is off).
    fn on(self, text: String, code: &str) -> String {
        if self.0 && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    }
}

impl RoleStatus {
    /// One line of the role table: version, expiry (yellow when within the role's warning
    /// window, red when past) and the first characters of each key id.
    fn render(&self, now: jiff::Timestamp, expiries: &Expiries, paint: Paint) -> String {
        let left = self.expires.duration_since(now);
        let hours = left.as_secs() / 3600;
        let (note, code) = if left.is_negative() {
            ("EXPIRED".to_string(), "1;31")
        } else {
            let text = if hours < 48 {
                format!("in {hours} h")
            } else {
                format!("in {} d", hours / 24)
            };
            let role = Role::of_metadata(&self.role).unwrap_or(Role::Bins);
            let close = (left.as_secs() as u64) < expiries.warning(role).as_secs();
            (text, if close { "33" } else { "" })
        };
        let ids: Vec<String> = self
            .key_ids
            .iter()
            .map(|k| k[..16.min(k.len())].to_string())
            .collect();
        format!(
            "{:<10} {:>8}  {:<21} {} {}",
            self.role,
            self.version,
            self.expires.to_string(),
            paint.on(format!("{note:<14}"), code),
            ids.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, seconds_left: i64) -> RoleStatus {
        RoleStatus {
            role: name.into(),
            version: 3,
            expires: jiff::Timestamp::from_second(
                jiff::Timestamp::now().as_second() + seconds_left,
            )
            .unwrap(),
            key_ids: vec!["ab".repeat(32)],
        }
    }

    #[test]
    fn close_expiry_is_yellow_expired_red_and_plain_without_colour() {
        let status = Status {
            roles: vec![
                role("root", 300 * 86_400),
                role("timestamp", 3_600),
                role("snapshot", -10),
            ],
            bins: 16,
            targets: 5,
            paused: Some(Pause {
                since: jiff::Timestamp::UNIX_EPOCH,
                reason: Some("freeze".into()),
            }),
            queues: vec![QueueStatus {
                queue: "tuf.dead-letter".into(),
                depth: Some((2, 0)),
            }],
        };
        let coloured = status.render(true, &Expiries::default());
        let line = |text: &str, start: &str| {
            text.lines()
                .find(|l| l.starts_with(start))
                .unwrap()
                .to_string()
        };
        assert!(!line(&coloured, "root").contains("\x1b["), "{coloured}");
        assert!(
            line(&coloured, "timestamp").contains("\x1b[33m"),
            "{coloured}"
        );
        assert!(
            line(&coloured, "snapshot").contains("\x1b[1;31mEXPIRED"),
            "{coloured}"
        );
        assert!(coloured.contains("\x1b[1;31mPAUSED since"), "{coloured}");
        assert!(
            line(&coloured, "\x1b[31mtuf.dead-letter").contains(" 2 "),
            "{coloured}"
        );
        let plain = status.render(false, &Expiries::default());
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(plain.contains("PAUSED since") && plain.contains("freeze"));
    }
}
