//! `tuf-signer run --metrics-listen`: the three signers over the real broker, each scraped over
//! HTTP as Prometheus scrapes it, before and after real work (a release signed and
//! published, a malformed job dead-lettered): the figures move as the jobs do.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use package_signing::broker::Queue;

/// The address a signer logged it serves metrics on.
fn metrics_address(proc: &mut Proc) -> String {
    let start = Instant::now();
    loop {
        let log = proc.log_text();
        if let Some(addr) = log
            .lines()
            .find_map(|l| l.split("serving metrics on http://").nth(1))
            .and_then(|rest| rest.split('/').next())
        {
            return addr.to_string();
        }
        assert!(proc.is_running(), "signer exited:\n{log}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no metrics address logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET /metrics` at `addr`: the status line and the body.
fn scrape(addr: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample `name{labels}` (labels as written, e.g. `role="targets"`).
fn sample(body: &str, name: &str, labels: &str) -> Option<f64> {
    let key = format!("{name}{{{labels}}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().parse().unwrap())
}

fn value(body: &str, name: &str, labels: &str) -> f64 {
    sample(body, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}} in:\n{body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_signer_serves_metrics_that_move_as_jobs_are_signed() {
    let repo = TestRepo::init(16, &[]);
    let prefix = unique_prefix("metrics");
    let listen = ["--metrics-listen", "127.0.0.1:0"];
    let mut signers: Vec<(&str, Proc)> = ["targets", "snapshot", "timestamp"]
        .into_iter()
        .map(|role| (role, repo.spawn_signer(role, &prefix, &listen)))
        .collect();
    let mut addrs = Vec::new();
    for (role, proc) in &mut signers {
        wait_ready(proc);
        addrs.push((*role, metrics_address(proc)));
    }

    let before: Vec<String> = addrs.iter().map(|(_, a)| scrape(a).1).collect();
    for ((role, _), body) in addrs.iter().zip(&before) {
        let of = format!("role=\"{role}\"");
        assert_eq!(value(body, "tuf_broker_connected", &of), 1.0, "{role}");
        assert!(value(body, "tuf_metadata_version", &of) >= 1.0, "{role}");
        let left = value(body, "tuf_metadata_expires_in_seconds", &of);
        assert!(left > 0.0, "{role}: expires in {left} s");
    }
    let targets_applied = |body: &str| {
        sample(
            body,
            "tuf_jobs_total",
            "role=\"targets\",outcome=\"applied\"",
        )
        .unwrap_or(0.0)
    };
    let (ok_status, _) = scrape(&addrs[0].1);
    assert!(ok_status.contains("200"), "{ok_status}");

    // A release, signed and published; a malformed job, dead-lettered.
    make_releases(&repo.path("rel"), 3, "m");
    repo.add_over_broker(&prefix, &repo.path("rel"), &[]);
    publish_raw(&prefix, Queue::Targets, b"{not a job").await;
    let start = Instant::now();
    let after = loop {
        let body = scrape(&addrs[0].1).1;
        let dead = sample(
            &body,
            "tuf_jobs_total",
            "role=\"targets\",outcome=\"dead_lettered\"",
        );
        if dead == Some(1.0) {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the malformed job never counted:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        targets_applied(&after) > targets_applied(&before[0]),
        "{after}"
    );
    let bins = "role=\"bins\"";
    assert!(
        value(&after, "tuf_metadata_version", bins)
            > value(&before[0], "tuf_metadata_version", bins)
    );
    assert_eq!(value(&after, "tuf_signer_active", "role=\"targets\""), 1.0);
    assert!(
        value(
            &after,
            "tuf_last_publish_timestamp_seconds",
            "role=\"targets\""
        ) > 0.0
    );
    assert!(value(&after, "tuf_batch_seconds_count", "role=\"targets\"") >= 1.0);
    // The broker's count of the targets queue, asked at once and every 15 s: nothing waits.
    assert_eq!(value(&after, "tuf_queue_messages", "role=\"targets\""), 0.0);
    // The release's submission, from its issue to its bins written.
    let submissions = after
        .lines()
        .find_map(|l| l.strip_prefix("tuf_submission_seconds_count "))
        .map(|v| v.trim().parse::<f64>().unwrap());
    assert!(submissions >= Some(1.0), "{after}");
    // Downstream, each role published a newer version for the release.
    for (i, (role, addr)) in addrs.iter().enumerate().skip(1) {
        let of = format!("role=\"{role}\"");
        let now = scrape(addr).1;
        assert!(
            value(&now, "tuf_metadata_version", &of)
                > value(&before[i], "tuf_metadata_version", &of),
            "{role}:\n{now}"
        );
    }
    // Anything but /metrics is not found.
    let mut stream = std::net::TcpStream::connect(&addrs[0].1).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    drop(signers);
    delete_queues(&prefix).await;
}

/// The example alert rules (docs/monitoring/alerts.yml) are valid Prometheus rules, and their
/// unit tests (alerts.test.yml: each alert fires on the series that should fire it, none on a
/// healthy deployment's) pass, as Prometheus's own `promtool` runs them.
#[test]
#[cfg_attr(not(promtool), ignore = "skipped: no promtool")]
fn the_example_alert_rules_pass_promtool() {
    let promtool = std::env::var("PROMTOOL").expect("PROMTOOL names promtool");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = run(std::process::Command::new(&promtool)
            .args(args)
            .current_dir(&dir));
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `tuf-client serve --metrics-listen`: requests counted by status as they are answered, the
/// bytes sent, and the version and expiry of the `timestamp.json` it serves.
#[test]
fn serve_counts_what_it_answers_and_shows_the_timestamp_it_serves() {
    let repo = TestRepo::init(2, &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = repo.path("serve.log");
    let child = std::process::Command::new(CLIENT)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .arg(&repo.repo)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut serve = Proc { child, log };
    let addr = metrics_address(&mut serve);
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        response.len()
    };
    let timestamp = std::fs::read(repo.layout().timestamp()).unwrap();
    assert!(get("/metadata/timestamp.json") > timestamp.len());
    get("/metadata/timestamp.json");
    get("/metadata/no-such.json");

    let start = Instant::now();
    let body = loop {
        let (status, body) = scrape(&addr);
        assert!(status.contains("200"), "{status}");
        // The timestamp served is read every few seconds.
        if sample(&body, "tuf_metadata_version", r#"role="timestamp""#).is_some() {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        value(&body, "tuf_served_requests_total", r#"status="200""#),
        2.0
    );
    assert_eq!(
        value(&body, "tuf_served_requests_total", r#"status="404""#),
        1.0
    );
    let bytes = body
        .lines()
        .find_map(|l| l.strip_prefix("tuf_served_bytes_total "))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .unwrap_or_else(|| panic!("no tuf_served_bytes_total in:\n{body}"));
    assert_eq!(bytes, (2 * timestamp.len() + "not found\n".len()) as f64);
    assert_eq!(
        value(&body, "tuf_metadata_version", r#"role="timestamp""#),
        1.0
    );
    let left = value(
        &body,
        "tuf_metadata_expires_in_seconds",
        r#"role="timestamp""#,
    );
    assert!(left > 0.0 && left <= 86_400.0, "{left}");
}
