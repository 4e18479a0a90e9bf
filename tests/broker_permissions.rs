//! The rabbitmq image's definitions, loaded into the real local broker (in a vhost of their
//! own, user names suffixed so nothing collides): each agent's user can do its own job with
//! our code, and is refused on every other queue and exchange: it can send jobs only to the
//! stage downstream of it (with `amq.default` writable, any agent could get the
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
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/nix/rabbitmq/definitions.json"
    ))
    .unwrap();
    let (vhost, agents, user, _cleanup) = load_definitions(&text, "perm");
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
            ca_file: None,
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
        ca_file: None,
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

/// Loads broker definitions (`text`) into the local broker, in a vhost of their own with user
/// names suffixed so nothing collides; returns the vhost, the agents (the users' names in
/// the definitions), the suffixing rule, and what removes them again.
fn load_definitions(
    text: &str,
    tag: &str,
) -> (String, Vec<String>, impl Fn(&str) -> String, Cleanup) {
    let suffix = unique_prefix(tag).replace('.', "-");
    let vhost = format!("tuf{suffix}");
    let mut defs: serde_json::Value = serde_json::from_str(text).unwrap();
    let agents: Vec<String> = defs["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    let user = move |agent: &str| format!("{agent}{suffix}");
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
    let cleanup = Cleanup {
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
    (vhost, agents, user, cleanup)
}

/// A deployment's broker passwords (`tuf-signer broker-secrets`) replace the
/// development ones published here: each agent connects with the password in its own file,
/// `dev-AGENT` is refused, and the broker image's entrypoint refuses to start on the
/// development definitions unless told it is a development set-up.
#[tokio::test(flavor = "multi_thread")]
async fn deployment_passwords_replace_the_published_development_ones() {
    if Command::new("rabbitmqctl").arg("--help").output().is_err() {
        panic!("rabbitmqctl is needed to load the definitions into the local broker (apt-get install rabbitmq-server)");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("secrets");
    ok(run(Command::new(SIGNER)
        .args(["broker-secrets", "--out"])
        .arg(&out)));
    let text = std::fs::read_to_string(out.join("definitions.json")).unwrap();
    let (vhost, agents, user, _cleanup) = load_definitions(&text, "secrets");
    for agent in &agents {
        let password = std::fs::read_to_string(out.join(format!("{agent}.password"))).unwrap();
        let with = |password: &str| {
            format!(
                "amqp://{}:{}@127.0.0.1:5672/{vhost}",
                user(agent),
                password.trim()
            )
        };
        let conn = lapin::Connection::connect(&with(&password), Default::default()).await;
        assert!(
            conn.is_ok(),
            "{agent} with its own password: {:?}",
            conn.err()
        );
        let dev_url = with(&format!("dev-{agent}"));
        let dev = lapin::Connection::connect(&dev_url, Default::default()).await;
        assert!(dev.is_err(), "{agent} with the development password");
    }

    // The image's entrypoint, with a stand-in for the server it starts.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("rabbitmq-server"), "#!/bin/sh\necho started\n").unwrap();
    std::fs::set_permissions(
        bin.join("rabbitmq-server"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dev_defs = concat!(env!("CARGO_MANIFEST_DIR"), "/nix/rabbitmq/definitions.json");
    let entrypoint = |defs: &std::path::Path, dev: bool| {
        let mut cmd = Command::new("sh");
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/nix/rabbitmq/entrypoint.sh"
        ))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("TUF_BROKER_DEFINITIONS", defs)
        .env("TUF_BROKER_DEV_DEFINITIONS", dev_defs)
        .env_remove("TUF_BROKER_DEV");
        if dev {
            cmd.env("TUF_BROKER_DEV", "1");
        }
        run(&mut cmd)
    };
    let refused = entrypoint(std::path::Path::new(dev_defs), false);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("tuf-signer broker-secrets"));
    for (defs, dev) in [
        (std::path::Path::new(dev_defs), true),
        (&out.join("definitions.json"), false),
    ] {
        let started = entrypoint(defs, dev);
        assert_eq!(
            String::from_utf8_lossy(&started.stdout),
            "started\n",
            "{defs:?}"
        );
    }
}
