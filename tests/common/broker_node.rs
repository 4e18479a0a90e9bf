//! Private RabbitMQ nodes for the tests that stop, kill or cluster a broker (never the shared
//! one on 5672), through `scripts/broker-node`.

use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/broker-node");

/// Nodes under one folder, all stopped when this is dropped (and by the script's watchdog if
/// the test process dies first).
pub struct BrokerNodes {
    base: PathBuf,
    /// One AMQP URL per node.
    pub urls: Vec<String>,
}

/// Whether private nodes can run here: RabbitMQ's own scripts are installed.
pub fn available() -> bool {
    Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists()
}

fn script(args: &[&str]) -> String {
    let out = Command::new(SCRIPT)
        .args(args)
        .env("BROKER_NODE_OWNER_PID", std::process::id().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "broker-node {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

impl BrokerNodes {
    /// One node `name` on `port`, its state under `base`.
    pub fn single(base: &Path, name: &str, port: u16) -> BrokerNodes {
        let url = script(&[
            "start",
            "--dir",
            base.join(name).to_str().unwrap(),
            "--name",
            name,
            "--port",
            &port.to_string(),
        ]);
        BrokerNodes {
            base: base.to_path_buf(),
            urls: vec![url],
        }
    }

    /// A cluster of one node per port, named `prefix-1`, `prefix-2`, ...
    pub fn cluster(base: &Path, prefix: &str, ports: &[u16]) -> BrokerNodes {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let urls = script(&[
            "cluster",
            "--dir",
            base.to_str().unwrap(),
            "--name",
            prefix,
            "--ports",
            &ports.join(","),
        ]);
        BrokerNodes {
            base: base.to_path_buf(),
            urls: urls.split(',').map(str::to_string).collect(),
        }
    }

    /// Every node's URL, comma-separated, as `--amqp` takes them.
    pub fn url_list(&self) -> String {
        self.urls.join(",")
    }

    fn node_dir(&self, index: usize) -> PathBuf {
        let dirs: Vec<PathBuf> = {
            let mut d: Vec<PathBuf> = std::fs::read_dir(&self.base)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("broker-node.env").exists())
                .collect();
            d.sort();
            d
        };
        dirs[index].clone()
    }

    /// SIGKILL of node `index` (a crash).
    pub fn kill(&self, index: usize) {
        script(&["kill", "--dir", self.node_dir(index).to_str().unwrap()]);
    }

    /// Graceful stop of node `index`.
    pub fn stop(&self, index: usize) {
        script(&["stop", "--dir", self.node_dir(index).to_str().unwrap()]);
    }

    /// Starts node `index` again on its data; returns once it takes connections.
    pub fn start(&self, index: usize) {
        script(&["start", "--dir", self.node_dir(index).to_str().unwrap()]);
    }

    /// Runs a RabbitMQ CLI (`rabbitmqctl` unless `tool` says otherwise) against node `index`.
    pub fn ctl(&self, index: usize, tool: &str, args: &[&str]) -> String {
        let dir = self.node_dir(index);
        let mut all = vec!["ctl", "--dir", dir.to_str().unwrap(), "--tool", tool, "--"];
        all.extend(args);
        let out = Command::new(SCRIPT).args(&all).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for BrokerNodes {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT)
            .args(["down", "--dir", self.base.to_str().unwrap()])
            .output();
    }
}
