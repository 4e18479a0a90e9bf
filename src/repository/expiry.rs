//! How long each role's metadata stays valid, in whole seconds (python-tuf refuses fractions).

use std::time::Duration;

use crate::{Error, Result};

/// Each role's lifetime: a newly signed version expires this long after it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiries {
    /// The root's lifetime (365 days by default).
    pub root: Duration,
    /// Top-level targets' lifetime (365 days by default).
    pub targets: Duration,
    /// Every bin's lifetime (365 days by default).
    pub bins: Duration,
    /// The snapshot's lifetime (7 days by default).
    pub snapshot: Duration,
    /// The timestamp's lifetime (1 day by default).
    pub timestamp: Duration,
}

impl Expiries {
    /// The lifetime of `role`'s metadata.
    pub fn of(&self, role: crate::role::Role) -> Duration {
        use crate::role::Role;
        match role {
            Role::Root => self.root,
            Role::Targets => self.targets,
            Role::Bins => self.bins,
            Role::Snapshot => self.snapshot,
            Role::Timestamp => self.timestamp,
        }
    }

    /// Below this much time left, `role`'s metadata is close to expiring: a quarter of its
    /// lifetime, by which time its signer (which re-signs once half is left, by default)
    /// should long have acted. `status` shows it in yellow and `validate` reports it.
    pub fn warning(&self, role: crate::role::Role) -> Duration {
        self.of(role) / 4
    }
}

const DAY: u64 = 86_400;

impl Default for Expiries {
    fn default() -> Self {
        Expiries {
            root: Duration::from_secs(365 * DAY),
            targets: Duration::from_secs(365 * DAY),
            bins: Duration::from_secs(365 * DAY),
            snapshot: Duration::from_secs(7 * DAY),
            timestamp: Duration::from_secs(DAY),
        }
    }
}

/// `now + d`, truncated to whole seconds.
pub fn expires_in(d: Duration) -> jiff::Timestamp {
    let now = jiff::Timestamp::now().as_second();
    jiff::Timestamp::from_second(now + d.as_secs() as i64).expect("expiry within jiff's range")
}

/// [`parse_duration`], or none at all: `0` or `0s` (a wait or window that may be empty).
pub fn parse_duration_or_zero(text: &str) -> Result<Duration> {
    match text.trim_end_matches('s') {
        "0" => Ok(Duration::ZERO),
        _ => parse_duration(text),
    }
}

/// Parses `365d`, `12h`, `30m`, `90s` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| bad_duration(text))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * DAY,
        _ => return Err(bad_duration(text)),
    };
    if secs == 0 {
        return Err(bad_duration(text));
    }
    Ok(Duration::from_secs(secs))
}

/// `d` as [`parse_duration`] reads it, largest units first: `1d`, `91d 6h`, `90s`, `0s`.
pub fn show_duration(d: Duration) -> String {
    let mut left = d.as_secs();
    let mut parts = Vec::new();
    for (unit, secs) in [("d", DAY), ("h", 3600), ("m", 60), ("s", 1)] {
        if left >= secs {
            parts.push(format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

fn bad_duration(text: &str) -> Error {
    Error::Usage(format!(
        "{text:?} is not a duration; write a positive whole number with s, m, h or d (e.g. 7d, 12h)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * DAY);
        assert_eq!(parse_duration("12h").unwrap().as_secs(), 43_200);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert!(parse_duration("1.5d").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3w").is_err());
    }

    #[test]
    fn expiry_has_no_fraction() {
        assert_eq!(expires_in(Duration::from_secs(5)).subsec_nanosecond(), 0);
    }
}
