//! The shared broker as the tests use it directly: raw publishes, dead letters, clean-up.

use std::time::{Duration, Instant};

use super::*;

/// Deletes a test's queues and exchanges so the broker does not fill up across runs.
pub async fn delete_queues(prefix: &str) {
    use lapin::options::QueueDeleteOptions;
    use package_signing::broker::Queue;
    let Ok(conn) =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    let channel = conn.create_channel().await.unwrap();
    for q in [
        Queue::Targets,
        Queue::Snapshot,
        Queue::Timestamp,
        Queue::DeadLetter,
    ] {
        let _ = channel
            .queue_delete(
                q.name(prefix).as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await;
        let _ = channel
            .exchange_delete(
                q.exchange(prefix).as_str().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

/// A connection to `url` and a channel on it with publisher confirms on.
pub async fn confirming_channel(url: &str) -> (lapin::Connection, lapin::Channel) {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    (conn, channel)
}

/// Publishes a raw body to one of a deployment's queues (through its exchange) and waits for
/// the broker's confirm.
pub async fn publish_raw(prefix: &str, queue: package_signing::broker::Queue, body: &[u8]) {
    use lapin::options::BasicPublishOptions;
    let (_conn, channel) = confirming_channel(&amqp_url()).await;
    let confirm = channel
        .basic_publish(
            queue.exchange(prefix).as_str().into(),
            queue.name(prefix).as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        confirm,
        lapin::Confirmation::Ack(None),
        "unroutable: is the queue declared?"
    );
}

/// Takes every message from the dead-letter queue: (body, x-rejection-reason).
pub async fn drain_dead_letters(
    prefix: &str,
    expect: usize,
    timeout: Duration,
) -> Vec<(Vec<u8>, String)> {
    use lapin::options::{BasicAckOptions, BasicGetOptions};
    use lapin::types::AMQPValue;
    let conn = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = package_signing::broker::Queue::DeadLetter.name(prefix);
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < expect && start.elapsed() < timeout {
        match channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
        {
            Some(msg) => {
                let reason = msg
                    .delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-rejection-reason").cloned())
                    .map(|v| match v {
                        AMQPValue::LongString(s) => {
                            String::from_utf8_lossy(s.as_bytes()).to_string()
                        }
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                msg.delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .unwrap();
                out.push((msg.delivery.data.clone(), reason));
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    out
}
