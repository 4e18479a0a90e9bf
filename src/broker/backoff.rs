//! The wait before trying the broker again, the same for signers and for commands.

use std::time::Duration;

/// The wait before reconnecting: doubling from [`Backoff::FIRST`] to [`Backoff::CAP`], each
/// wait drawn between half and all of the current step ("equal jitter"), so that signers
/// cut off together do not come back in step, and every signer is consuming again within
/// [`Backoff::CAP`] of the broker's return.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            step: Backoff::FIRST,
        }
    }
}

impl Backoff {
    /// The first wait's step.
    pub const FIRST: Duration = Duration::from_millis(250);
    /// The longest step: no wait is longer.
    pub const CAP: Duration = Duration::from_secs(3);
    /// A connection that lasted this long starts the next wait from the first step again.
    pub const STABLE: Duration = Duration::from_secs(10);

    /// The wait before the next attempt, and the step doubled for the one after.
    pub fn next_delay(&mut self) -> Duration {
        let mut random = [0u8; 4];
        let _ = aws_lc_rs::rand::fill(&mut random);
        let fraction = u32::from_le_bytes(random) as f64 / u32::MAX as f64;
        let delay = self.step.mul_f64(0.5 + fraction / 2.0);
        self.step = (self.step * 2).min(Backoff::CAP);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits grow from a quarter second to the cap and stay under it, each between half and
    /// all of its step; a new backoff starts from the first step again.
    #[test]
    fn reconnect_waits_grow_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let mut step = Backoff::FIRST;
        let mut delays = Vec::new();
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?}"
            );
            delays.push(delay);
            step = (step * 2).min(Backoff::CAP);
        }
        assert!(delays.iter().all(|d| *d <= Backoff::CAP));
        assert!(delays[11] >= Backoff::CAP / 2, "reached the cap");
        let distinct: std::collections::HashSet<_> = delays[6..].iter().collect();
        assert!(distinct.len() > 1, "jittered, not in step: {delays:?}");
        assert!(Backoff::default().next_delay() <= Backoff::FIRST);
    }
}
