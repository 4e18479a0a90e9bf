//! A broker on another host is reached over `amqps://`, so the link is not trusted either: a RabbitMQ node of the
//! test's own (`scripts/broker-node`) with a TLS listener whose certificate is signed by a
//! certificate authority made here with openssl. With that CA's file (`--amqp-ca-file`,
//! `AMQP_CA_FILE`) the signers and the client sign and follow releases over TLS, and
//! python-tuf verifies them; without it, the broker's certificate is refused, saying so.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::broker_node::{self, BrokerNodes};
use common::*;

const AMQP_PORT: u16 = 5692;
const TLS_PORT: u16 = 5693;

/// A CA, and a certificate for localhost and 127.0.0.1 signed by it, in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = run(Command::new("openssl").current_dir(dir).args(args));
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let args = |line: String| -> Vec<String> { line.split(' ').map(str::to_string).collect() };
    let ca = args(format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2"));
    let mut ca: Vec<&str> = ca.iter().map(String::as_str).collect();
    ca.extend(["-subj", "/CN=package-signing test CA"]);
    openssl(&ca);
    let server = args(format!(
        "req {ec} -keyout server.key -out server.csr -subj /CN=localhost"
    ));
    openssl(&server.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_over_amqps_with_the_brokers_ca_file() {
    if !broker_node::available() {
        println!("skipped: no RabbitMQ installation to run a private node");
        return;
    }
    let repo = TestRepo::init(16, &[]);
    let certs = repo.path("certs");
    std::fs::create_dir(&certs).unwrap();
    make_certificates(&certs);
    let node_dir = repo.path("broker").join("tuf-tls");
    std::fs::create_dir_all(node_dir.join("conf.d")).unwrap();
    std::fs::write(
        node_dir.join("conf.d/10-tls.conf"),
        format!(
            "listeners.ssl.default = 127.0.0.1:{TLS_PORT}\n\
             ssl_options.cacertfile = {ca}\n\
             ssl_options.certfile = {cert}\n\
             ssl_options.keyfile = {key}\n\
             ssl_options.verify = verify_none\n\
             ssl_options.fail_if_no_peer_cert = false\n",
            ca = certs.join("ca.pem").display(),
            cert = certs.join("server.pem").display(),
            key = certs.join("server.key").display(),
        ),
    )
    .unwrap();
    let _node = BrokerNodes::single(&repo.path("broker"), "tuf-tls", AMQP_PORT);
    let url = format!("amqps://guest:guest@localhost:{TLS_PORT}/%2f");
    let ca = certs.join("ca.pem");
    let ca_env = [("AMQP_CA_FILE", ca.to_str().unwrap())];

    // Without the CA: the certificate is refused, and the error says where it failed.
    let out = run(Command::new(CLIENT)
        .args(["status", "--broker-wait", "0s", "--amqp", &url, "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())
        .env_remove("AMQP_CA_FILE"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to amqps://"), "{err}");

    let mut signers: Vec<Proc> = ["targets", "snapshot", "timestamp"]
        .iter()
        .map(|r| repo.spawn_signer_at(&url, r, &repo.key(r), "", &[], &ca_env))
        .collect();
    for s in &mut signers {
        wait_ready(s);
    }
    let releases = make_releases(&repo.path("rel"), 5, "tls");
    let out = ok(run(Command::new(CLIENT)
        .env("TUF_SUBMITTER_KEY", repo.submitter_key())
        .envs(ca_env)
        .args(["add-targets", "--amqp", &url, "--targets-dir"])
        .arg(repo.repo.join("targets"))
        .args(["--wait", "--timeout", "90s", "--repo"])
        .arg(&repo.repo)
        .arg(repo.path("rel"))));
    assert!(out.contains("5 target(s) covered"), "{out}");
    repo.wait_covered(expected_for(&releases), Duration::from_secs(30));
    let report = ngclient_verify(&repo, &items_for(&releases));
    assert_eq!(report["verified"], releases.len());
    let status = ok(run(Command::new(CLIENT)
        .envs(ca_env)
        .args(["status", "--color", "never", "--amqp", &url, "--repo"])
        .arg(&repo.repo)
        .arg("--root")
        .arg(repo.pin_file())));
    assert!(
        status.contains("tuf.targets"),
        "queues seen over TLS: {status}"
    );
}
