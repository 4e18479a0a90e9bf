//! The rabbitmq image's definitions, loaded into the real local broker (in a vhost of their
//! own, user names suffixed so nothing collides): each agent's user can do its own job with
//! our code, and is refused on every other queue and exchange: it can send jobs only to the
//! stage downstream of it (issue 10: with `amq.default` writable, any agent could get the
//! targets key to sign anything).

mod common;

use std::process::Command;

use common::*;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use package_signing::broker::amqp::AmqpConfig;
use package_signing::broker::{Endpoint, Queue};

fn rabbitmqctl(args: &[&str]) -> std::process::Output {
    run(Command::new("rabbitmqctl").args(args))
}

struct Cleanup {
    vhost: String,
    users: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_vhost", &self.vhost]);
        for u in &self.users {
            rabbitmqctl(&["delete_user", u]);
        }
    }
}

fn url(user: &str, agent: &str, vhost: &str) -> String {
    format!("amqp://{user}:dev-{agent}@127.0.0.1:5672/{vhost}")
}

async fn refused_to_consume(url: &str, queue: &str) -> bool {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_consume(
            queue.into(),
            "probe".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .is_err()
}

async fn refused_to_declare(url: &str, queue: &str) -> bool {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .is_err()
}

/// Whether the broker refuses `url`'s user a publish to `exchange`: refused means the channel
/// is closed (403) before the confirm comes.
async fn refused_to_publish(url: &str, exchange: &str, routing_key: &str) -> bool {
    let (_conn, channel) = confirming_channel(url).await;
    let publish = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            br#"{"add":[{"name":"drupal/core/99.0.0.0","length":1,"hashes":{}}]}"#,
            lapin::BasicProperties::default(),
        )
        .await;
    match publish {
        Err(_) => true,
        Ok(confirm) => confirm.await.is_err(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_agent_user_does_its_own_job_and_nothing_else() {
    if Command::new("rabbitmqctl").arg("--help").output().is_err() {
        panic!("rabbitmqctl is needed to load the definitions into the local broker (apt-get install rabbitmq-server)");
    }
    let suffix = unique_prefix("perm").replace('.', "-");
    let vhost = format!("tuf{suffix}");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/nix/rabbitmq/definitions.json"
    ))
    .unwrap();
    let mut defs: serde_json::Value = serde_json::from_str(&text).unwrap();
    let agents: Vec<String> = defs["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    let user = |agent: &str| format!("{agent}{suffix}");
    for u in defs["users"].as_array_mut().unwrap() {
        u["name"] = user(u["name"].as_str().unwrap()).into();
    }
    for p in defs["permissions"].as_array_mut().unwrap() {
        p["user"] = user(p["user"].as_str().unwrap()).into();
        p["vhost"] = vhost.clone().into();
    }
    for kind in ["queues", "exchanges", "bindings"] {
        for q in defs[kind].as_array_mut().unwrap() {
            q["vhost"] = vhost.clone().into();
        }
    }
    defs["vhosts"] = serde_json::json!([{"name": vhost}]);
    let _cleanup = Cleanup {
        vhost: vhost.clone(),
        users: agents.iter().map(|a| user(a)).collect(),
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&defs).unwrap()).unwrap();
    // rabbitmqctl reads it as the broker's user; it holds only password hashes.
    std::fs::set_permissions(
        file.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = rabbitmqctl(&["import_definitions", file.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "import_definitions: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let own = |agent: &str| match agent {
        "delegated-targets-signer" => Some(Queue::Targets),
        "snapshot-signer" => Some(Queue::Snapshot),
        "timestamp-signer" => Some(Queue::Timestamp),
        _ => None,
    };
    for agent in &agents {
        let amqp = url(&user(agent), agent, &vhost);
        // Its own job, with exactly the declarations our code makes, matching the
        // definitions' queue arguments (a mismatch would be refused as PRECONDITION_FAILED).
        let config = AmqpConfig {
            url: amqp.clone(),
            prefix: String::new(),
            patience: AmqpConfig::PATIENCE,
            queue_type: Default::default(),
        };
        let endpoint = Endpoint::amqp(&config, own(agent), 10)
            .await
            .unwrap_or_else(|e| panic!("{agent} cannot start its own job: {e}"));
        let publish_to = own(agent).map_or(Some(Queue::Targets), Queue::next);
        if let Some(queue) = publish_to {
            endpoint
                .publish(queue, b"{\"probe\":true}")
                .await
                .unwrap_or_else(|e| panic!("{agent} cannot publish to {queue:?}: {e}"));
        }
        drop(endpoint);

        // Anyone else's queue: refused.
        for other in [Queue::Targets, Queue::Snapshot, Queue::Timestamp] {
            if own(agent) != Some(other) {
                assert!(
                    refused_to_consume(&amqp, &other.name("")).await,
                    "{agent} may consume {other:?}"
                );
            }
        }
        assert!(
            refused_to_declare(&amqp, "tuf.not-ours").await,
            "{agent} may declare any queue"
        );
        // Jobs only where its role sends them; never through the default exchange, which
        // routes to any queue by name.
        let sends_to = Queue::used_by(own(agent));
        for queue in [
            Queue::Targets,
            Queue::Snapshot,
            Queue::Timestamp,
            Queue::DeadLetter,
        ] {
            let refused = refused_to_publish(&amqp, &queue.exchange(""), &queue.name("")).await;
            assert_eq!(
                refused,
                !sends_to.contains(&queue),
                "{agent} publishing to {}",
                queue.exchange("")
            );
            assert!(
                refused_to_publish(&amqp, "", &queue.name("")).await,
                "{agent} may publish to {} through amq.default",
                queue.name("")
            );
        }
    }
    // `tuf-client status --amqp` in the packaging-pipeline container: looking at every
    // queue's depth is a passive declaration, which its user may make.
    let config = AmqpConfig {
        url: url(&user("packaging-pipeline"), "packaging-pipeline", &vhost),
        prefix: String::new(),
        patience: AmqpConfig::PATIENCE,
        queue_type: Default::default(),
    };
    let all = [
        Queue::Targets,
        Queue::Snapshot,
        Queue::Timestamp,
        Queue::DeadLetter,
    ];
    let seen = package_signing::broker::amqp::inspect_queues(&config, &all)
        .await
        .unwrap();
    assert!(
        seen.iter().all(|(_, depth)| depth.is_some()),
        "status cannot see every queue: {:?}",
        seen.iter()
            .map(|(q, d)| (q, d.is_some()))
            .collect::<Vec<_>>()
    );
    // The guest-free users cannot reach the default vhost either.
    let amqp = url(&user("snapshot-signer"), "snapshot-signer", "%2f");
    assert!(
        lapin::Connection::connect(&amqp, lapin::ConnectionProperties::default())
            .await
            .is_err()
    );
}
