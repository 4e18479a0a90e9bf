//! The images' runtime contract, run for real: each agent's entrypoint command with the
//! environment its image sets (read from nix/agents.json, the file nix/images.nix builds the
//! images from), the image's mount points mapped to folders here, against the real broker.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Agent {
    uid: u32,
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn agents() -> BTreeMap<String, Agent> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/agents.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn program(name: &str) -> &'static str {
    match name {
        "tuf-signer" => SIGNER,
        "tuf-client" => CLIENT,
        other => panic!("nix/agents.json names {other}, which this crate does not build"),
    }
}

/// The container's paths, as mounted here: the repository volume, the key mount and the
/// signer's own state volume. Every path the image names is mapped: none reaches the host's.
fn map_path(value: &str, repo: &TestRepo) -> String {
    if let Some(rest) = value.strip_prefix("/srv/tuf/repo") {
        format!("{}{rest}", repo.repo.display())
    } else if let Some(rest) = value.strip_prefix("/run/keys/") {
        repo.keys.join(rest).display().to_string()
    } else if let Some(rest) = value.strip_prefix("/srv/tuf/state") {
        format!("{}{rest}", repo.path("state").display())
    } else if let Some(rest) = value.strip_prefix("/srv/tuf/client") {
        format!("{}{rest}", repo.path("client").display())
    } else {
        assert!(
            !value.starts_with('/'),
            "nix/agents.json names {value}, a path this test does not mount"
        );
        value.to_string()
    }
}

fn command(agent: &Agent, repo: &TestRepo, prefix: &str) -> Command {
    let mut cmd = Command::new(program(&agent.program));
    cmd.args(&agent.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in &agent.env {
        cmd.env(k, map_path(v, repo));
    }
    // What the deployment gives at run time (compose/DDEV): the broker URL and queue prefix.
    cmd.env("AMQP_URL", amqp_url())
        .env("TUF_QUEUE_PREFIX", prefix);
    cmd
}

/// The health check `.ddev/docker-compose.NAME.yaml` gives agent `name` (its `test:` line, a
/// flow sequence that is JSON too), without the leading "CMD".
fn compose_health_check(name: &str) -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(".ddev/docker-compose.{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("test: "))
        .unwrap_or_else(|| panic!("{}: no healthcheck test", path.display()));
    let test: Vec<String> = serde_json::from_str(line).unwrap();
    assert_eq!(test[0], "CMD", "{}: {line}", path.display());
    test[1..].to_vec()
}

/// Runs agent `name`'s compose health check in its image's environment until it passes (a
/// signer is healthy once it has taken its first batch and probed its key).
fn wait_healthy(name: &str, agent: &Agent, repo: &TestRepo) {
    let check = compose_health_check(name);
    let binary = check[0]
        .strip_prefix("/bin/")
        .expect("the health check runs a /bin program");
    assert_eq!(
        binary, agent.program,
        "{name}'s health check runs its own program"
    );
    let start = std::time::Instant::now();
    loop {
        let mut cmd = Command::new(program(binary));
        cmd.args(&check[1..])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &agent.env {
            cmd.env(k, map_path(v, repo));
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        if out.status.success() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name}: its health check {check:?} never passed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_agent_runs_from_its_image_contract_against_the_broker() {
    let agents = agents();
    for name in [
        "delegated-targets-signer",
        "snapshot-signer",
        "timestamp-signer",
        "packaging-pipeline",
    ] {
        let agent = agents
            .get(name)
            .unwrap_or_else(|| panic!("nix/agents.json lacks {name}"));
        assert!(
            agent.uid >= 1000,
            "{name} must not run as root or a system user"
        );
        assert!(
            !agent.env.contains_key("AMQP_URL"),
            "{name}: the AMQP URL holds a password; it is not baked in"
        );
        assert!(
            agent.env.values().all(|v| !v.contains("PRIVATE KEY")),
            "{name}: no key in an image"
        );
    }
    let uids: std::collections::BTreeSet<u32> = agents.values().map(|a| a.uid).collect();
    assert_eq!(uids.len(), agents.len(), "each agent has its own uid");

    let prefix = unique_prefix("image");
    let repo = TestRepo::init(64, &[]);
    let mut signers: Vec<Proc> = Vec::new();
    for name in [
        "delegated-targets-signer",
        "snapshot-signer",
        "timestamp-signer",
    ] {
        let agent = &agents[name];
        let key = map_path(&agent.env["TUF_KEY"], &repo);
        assert!(
            Path::new(&key).is_file(),
            "{name} reads its key from {}, which init wrote",
            agent.env["TUF_KEY"]
        );
        let log: PathBuf = repo.path(&format!("{name}.log"));
        let child = command(agent, &repo, &prefix)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut proc = Proc { child, log };
        wait_ready(&mut proc);
        // The compose file's health check, with only what the image sets (TUF_STATE, TUF_REPO).
        wait_healthy(name, agent, &repo);
        // TUF_LOG_FORMAT=json from the image: every log line is JSON.
        let text = proc.log_text();
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|_| panic!("{name}: not a JSON log line: {line}"));
        }
        signers.push(proc);
    }

    // The packaging pipeline's entrypoint with its image's environment: TUF_REPO gives --repo.
    let releases = make_releases(&repo.path("releases"), 25, "img");
    let out = command(&agents["packaging-pipeline"], &repo, &prefix)
        .args(["add-targets", "--wait", "--timeout", "60s", "--targets-dir"])
        .arg(map_path("/srv/tuf/repo/targets", &repo))
        .arg(repo.path("releases"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo.wait_covered(expected_for(&releases), Duration::from_secs(10));

    // The DDEV tuf-repo-http service: the packaging-pipeline image serving the repository.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = repo.path("serve.log");
    let child = command(&agents["packaging-pipeline"], &repo, &prefix)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _server = Proc { child, log };
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tuf-client serve did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ngclient_verify_at(
        &repo,
        &format!("http://127.0.0.1:{port}/"),
        &items_for(&releases[..5]),
    );
    delete_queues(&prefix).await;
}
