//! The READMEs' commands cannot drift from the code unnoticed:
//! - every `tuf-signer` and `tuf-client` command they show names a subcommand and flags the
//!   binaries have: each is run with `--help` appended, which clap answers only when every flag
//!   before it exists (an unknown one is an error first);
//! - README.md's "Using it" walk-through runs as written, step after step, both ways it offers:
//!   over the real broker (2a) and embedded (2b), down to the download in step 4.
//!
//! `tests/quickstart.rs` runs the README's first command itself.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A command line of a ```sh block: the step it is in (`2a` under a `# 2a. ...` comment; empty
/// before the first), the variables set for it alone (`AMQP_URL=... tuf-signer ...`), and its
/// words.
#[derive(Debug, Clone)]
struct Line {
    step: String,
    text: String,
    env: Vec<(String, String)>,
    words: Vec<String>,
}

/// The command lines in the ```sh blocks of `text`: continuation lines joined, comments cut.
fn commands(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    let mut step = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = trimmed == "```sh";
            step.clear();
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(label) = trimmed
            .strip_prefix("# ")
            .and_then(|rest| rest.split_once(". "))
            .map(|(label, _)| label)
            .filter(|label| label.chars().next().is_some_and(|c| c.is_ascii_digit()))
        {
            step = label.to_string();
        }
        let code = match trimmed.find(" #") {
            Some(i) => &trimmed[..i],
            None if trimmed.starts_with('#') => "",
            None => trimmed,
        };
        pending.push_str(code.trim_end_matches('\\').trim());
        pending.push(' ');
        if !code.ends_with('\\') {
            let text = pending.trim().to_string();
            if !text.is_empty() {
                out.push(Line::parse(&step, &text));
            }
            pending.clear();
        }
    }
    out
}

impl Line {
    fn parse(step: &str, text: &str) -> Line {
        let mut words = words(text);
        let mut env = Vec::new();
        while let Some((name, value)) = words.first().and_then(|w| w.split_once('=')) {
            if !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                break;
            }
            env.push((name.to_string(), value.to_string()));
            words.remove(0);
        }
        Line {
            step: step.into(),
            text: text.into(),
            env,
            words,
        }
    }

    /// `tuf-signer` or `tuf-client` (also through `ddev`, which runs the same binary in a
    /// container), with its arguments.
    fn ours(&self) -> Option<(&'static str, &[String])> {
        let words = match self.words.first().map(String::as_str) {
            Some("ddev") => &self.words[1..],
            _ => &self.words[..],
        };
        let binary = match words.first().map(String::as_str) {
            Some("tuf-signer") => SIGNER,
            Some("tuf-client") => CLIENT,
            _ => return None,
        };
        Some((binary, &words[1..]))
    }
}

/// Splits a command line into words as a shell would for these simple lines: quotes group,
/// and the brackets that mark an optional part (`[--role snapshot]`) are dropped, keeping
/// the part.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (None, '[' | ']') => {}
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// `line` without its optional parts (`[--role snapshot]`), as a first-time reader runs it.
fn without_optional_parts(line: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim_end().to_string()
}

fn readme(doc: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap()
}

#[test]
fn every_command_the_readmes_show_parses() {
    let mut checked = 0;
    for doc in ["README.md", ".ddev/README.md", "docs/verification.md"] {
        for line in commands(&readme(doc)) {
            let Some((binary, args)) = line.ours() else {
                continue;
            };
            let out = run(Command::new(binary).args(args).arg("--help"));
            assert!(
                out.status.success(),
                "{doc}: `{}` does not parse:\n{}",
                line.text,
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} commands found in the READMEs"
    );
    eprintln!("{checked} documented commands parse");
}

/// What the walk-through names that only exists where it is deployed, and what stands for it
/// here. Each must be found in the README (else the README changed and this table with it).
/// One broker user (the test broker's) stands for every agent's: that each agent's own user
/// may do its job and no more is `tests/broker_permissions.rs`'s to show.
struct Here {
    replacements: Vec<(&'static str, String)>,
    password: String,
}

impl Here {
    fn new(port: u16) -> Here {
        // amqp://USER:PASSWORD@HOST:PORT/VHOST, the broker the tests use.
        let url = amqp_url();
        let rest = url.strip_prefix("amqp://").expect("an amqp:// test broker");
        let (credentials, address) = rest.split_once('@').expect("a user in AMQP_URL");
        let (user, password) = credentials.split_once(':').expect("a password in AMQP_URL");
        let with_password = format!("{user}:{password}@{address}");
        let replacements = vec![
            (
                "delegated-targets-signer:PASSWORD@broker:5672/%2f",
                with_password.clone(),
            ),
            (
                "timestamp-signer:PASSWORD@broker:5672/%2f",
                with_password.clone(),
            ),
            (
                "packaging-pipeline:PASSWORD@broker:5672/%2f",
                with_password.clone(),
            ),
            (
                "snapshot-signer@broker:5672/%2f",
                format!("{user}@{address}"),
            ),
            ("/run/secrets/amqp", "./amqp-password".into()),
            ("0.0.0.0:8080", format!("127.0.0.1:{port}")),
            ("https://host/", format!("http://127.0.0.1:{port}/")),
        ];
        Here {
            replacements,
            password: password.into(),
        }
    }

    fn apply(&self, text: &str, used: &mut BTreeSet<&'static str>) -> String {
        let mut text = text.to_string();
        for (readme, here) in &self.replacements {
            if text.contains(readme) {
                text = text.replace(readme, here);
                used.insert(readme);
            }
        }
        text
    }
}

/// A shell in a fresh folder running the walk-through's lines: `export` sets a variable for
/// the lines after it, a signer or `serve` runs in the background (as in a terminal of its
/// own) until the walk-through ends, every other line must end by itself and succeed.
struct Shell {
    dir: tempfile::TempDir,
    exported: Vec<(String, String)>,
    prefix: String,
    background: Vec<Proc>,
}

impl Shell {
    fn new(tag: &str) -> Shell {
        Shell {
            dir: tempfile::tempdir().unwrap(),
            exported: Vec::new(),
            prefix: unique_prefix(tag),
            background: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn command(&self, line: &Line) -> Command {
        let (binary, args) = line
            .ours()
            .unwrap_or_else(|| panic!("not ours to run: `{}`", line.text));
        let mut cmd = Command::new(binary);
        cmd.args(args).current_dir(self.dir.path());
        // The test's own environment says nothing about this walk-through.
        for (name, _) in std::env::vars() {
            if name.starts_with("TUF_") || name.starts_with("AMQP_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("TUF_QUEUE_PREFIX", &self.prefix)
            .env("NO_COLOR", "1");
        cmd.envs(self.exported.iter().chain(&line.env).cloned());
        cmd
    }

    fn run(&mut self, line: &Line) {
        if line.words.first().is_some_and(|w| w == "export") {
            for word in &line.words[1..] {
                let (name, value) = word.split_once('=').expect("export NAME=VALUE");
                self.exported.retain(|(n, _)| n != name);
                self.exported.push((name.into(), value.into()));
            }
            return;
        }
        let (_, args) = line.ours().expect("ours");
        let background = match args.first().map(String::as_str) {
            Some("run") => Some("signer ready"),
            Some("serve") => Some("serving the repository"),
            _ => None,
        };
        let mut cmd = self.command(line);
        match background {
            Some(ready) => {
                let log = self.path(&format!("background-{}.log", self.background.len()));
                let child = cmd
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .unwrap();
                let mut proc = Proc { child, log };
                let start = Instant::now();
                while !proc.log_text().contains(ready) {
                    assert!(
                        proc.is_running() && start.elapsed() < Duration::from_secs(60),
                        "`{}` did not start:\n{}",
                        line.text,
                        proc.log_text()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                eprintln!("step {}: `{}`: running", line.step, line.text);
                self.background.push(proc);
            }
            None => {
                let out = run_to_end(&mut cmd, &format!("`{}` never ended", line.text));
                assert!(
                    out.status.success(),
                    "step {}: `{}` failed:\n{}{}",
                    line.step,
                    line.text,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                eprintln!("step {}: `{}`: ok", line.step, line.text);
            }
        }
    }
}

/// README.md's "Using it" walk-through, taking step 2a (over the broker) or 2b (embedded):
/// every line of the other is left out. A line with an optional part in brackets runs without
/// it, then (over the broker) with it.
fn walk_through(way: &str, used: &mut BTreeSet<&'static str>) -> Shell {
    let text = readme("README.md");
    let section = text
        .split("\n## Using it\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a \"Using it\" section");
    let mut shell = Shell::new(&format!("readme-{way}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let here = Here::new(port);
    std::fs::write(shell.path("amqp-password"), &here.password).unwrap();
    // The packaging pipeline's releases: what step 3 submits.
    let release = |rel: &str, bytes: &[u8]| {
        let path = shell.path(&format!("releases/{rel}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    release("drupal/token/1.8.0.0", b"token 1.8 zip");
    release("drupal/token/1.9.0.0", b"token 1.9 zip");
    release(
        "p2/drupal/token.json",
        br#"{"packages":{"drupal/token":[]}}"#,
    );

    let other = if way == "2a" { "2b" } else { "2a" };
    let mut ran = 0;
    for line in commands(section) {
        if line.step == other {
            continue;
        }
        let text = here.apply(&without_optional_parts(&line.text), used);
        shell.run(&Line::parse(&line.step, &text));
        ran += 1;
        // Over the broker, every optional part works too (embedded, the README says which
        // do not).
        if way == "2a" && line.text.contains('[') {
            let text = here.apply(&line.words.join(" "), used);
            shell.run(&Line::parse(&line.step, &text));
        }
    }
    assert!(ran >= 12, "only {ran} lines of the walk-through ran");

    // What it promised: the download in step 4 is the release submitted in step 3, and the
    // release removed in step 3 can no longer be downloaded.
    assert_eq!(
        std::fs::read(shell.path("vendor-cache/drupal/token/1.9.0.0")).unwrap(),
        b"token 1.9 zip"
    );
    let removed = Line::parse(
        "4",
        &here.apply(
            "tuf-client download --metadata-dir ./trusted --metadata-url https://host/metadata/ \
             --targets-url https://host/targets/ -o ./vendor-cache drupal/token/1.8.0.0",
            used,
        ),
    );
    let out = run_to_end(&mut shell.command(&removed), "a download never ended");
    assert!(
        !out.status.success() && !shell.path("vendor-cache/drupal/token/1.8.0.0").exists(),
        "a removed release was downloaded"
    );
    shell
}

#[test]
fn the_walk_through_runs_as_written_over_the_broker_and_embedded() {
    let mut used = BTreeSet::new();
    for way in ["2a", "2b"] {
        let shell = walk_through(way, &mut used);
        eprintln!("the README walk-through with step {way}: done");
        drop(shell);
    }
    let here = Here::new(0);
    let unused: Vec<_> = here
        .replacements
        .iter()
        .map(|(readme, _)| *readme)
        .filter(|readme| !used.contains(readme))
        .collect();
    assert!(
        unused.is_empty(),
        "the README no longer says {unused:?}: update this test's table"
    );
}
