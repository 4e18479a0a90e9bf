//! The paused state (targets only, `tuf-client pause`): no consumer on the queue, so jobs wait
//! there; the expiry refresh runs here directly, under the role's lock, and pruning goes on.

use std::time::Duration;

use tokio::sync::watch;

use super::writer::Writer;
use super::{expiry_interval, hand_on, key_probe_interval, prune_interval, State, Transport};
use crate::health::Activity;
use crate::jobs::ExpiryCheck;
use crate::roles::Stage;
use crate::Result;

/// Holds the role paused until `tuf-client resume` (`Consuming`) or shutdown (`Stopped`).
pub(super) async fn hold<S: Stage, L: Fn() -> Result<S>>(
    transport: &Transport,
    writer: &mut Writer<S, L>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<State> {
    let publisher = tokio::select! {
        e = transport.open(None, 1) => e?,
        _ = shutdown.changed() => return Ok(State::Stopped),
    };
    hand_on::<S>(&publisher, writer.resync()?.into_iter().collect()).await?;
    writer.health.set(Activity::Paused);
    tracing::info!(
        role = %S::ROLE,
        "paused (tuf-client resume to continue): jobs wait in the queue; expiry refresh goes on"
    );
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let mut expiry_check = expiry_interval(&writer.stage);
    let mut prune = prune_interval();
    let mut key_probe = key_probe_interval(&writer.health);
    let state = loop {
        tokio::select! {
            _ = prune.tick() => writer.prune(),
            _ = key_probe.tick() => writer.health.probe(writer.stage.key()),
            _ = poll.tick() => {
                if !writer.is_paused()? {
                    tracing::info!(role = %S::ROLE, "resumed: taking jobs again");
                    break State::Consuming;
                }
            }
            _ = expiry_check.tick() => {
                let check = [S::Job::expiry_check()];
                let done = tokio::task::block_in_place(|| writer.apply_locked(&check))?;
                hand_on::<S>(&publisher, done.downstream).await?;
                writer.health.batch_done(&writer.stage, done.applied.written);
            }
            _ = shutdown.changed() => break State::Stopped,
        }
    };
    publisher.close().await;
    Ok(state)
}
