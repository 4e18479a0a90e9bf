//! `tuf-client`: the packaging pipeline's side of the repository.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use package_signing::broker::Publisher;
use package_signing::broker::Queue;
use package_signing::cli;
use package_signing::client::coverage::Expected;
use package_signing::client::dead_letters;
use package_signing::client::status;
use package_signing::client::submit::{collect, describe, Route, Sink, TargetsFolder};
use package_signing::client::wait::Wait;
use package_signing::jobs::{check_target_name, SnapshotJob, TargetsJob, TimestampJob};
use package_signing::keys::SigningKey;
use package_signing::repository::control::Control;
use package_signing::repository::expiry::parse_duration;
use package_signing::repository::layout::{create_dir, write_durably};
use package_signing::repository::Layout;
use package_signing::updater::{self, base_url, HttpFetcher, Updater};
use package_signing::{Error, Result};

/// The packaging pipeline's side of a TUF-signed Composer repository.
///
/// Publisher side: `add-targets` hashes release files and submits them for signing,
/// `remove-targets` withdraws names, `status` shows the repository, `validate` checks it,
/// `pause`/`resume` hold signing, `refresh-expiry` re-signs now.
/// Composer side (what Composer's TUF plugin does): `init` trusts a root, `refresh` updates
/// the trusted metadata, `download` fetches and verifies packages.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    log: cli::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Submit releases for signing.
    ///
    /// A folder gives every file under it, named by its path relative to the folder
    /// (releases/drupal/token/1.9.0.0 → drupal/token/1.9.0.0; releases/p2/drupal/token.json →
    /// p2/drupal/token.json). A file gives itself, named as written. --target NAME=FILE names
    /// one explicitly.
    ///
    /// Example: tuf-client add-targets --amqp amqp://... --targets-dir ./repo/targets
    ///          --wait --repo ./repo ./releases
    #[command(verbatim_doc_comment)]
    AddTargets {
        #[command(flatten)]
        send: SendArgs,
        /// Also copy each file into this targets folder under its consistent-snapshot name
        /// (dir/SHA256.file), where clients download it.
        #[arg(long)]
        targets_dir: Option<PathBuf>,
        /// Name a file explicitly: NAME=FILE (repeatable).
        #[arg(long = "target", value_name = "NAME=FILE")]
        targets: Vec<String>,
        /// Replace names already signed with other content. Without it such a name is
        /// refused: a release, once signed, does not change (only the mutable names the
        /// targets signer is configured with do: packages.json, p2/ metadata, dev versions).
        #[arg(long)]
        replace: bool,
        /// Folders or files to sign.
        inputs: Vec<PathBuf>,
    },
    /// Withdraw targets by name.
    RemoveTargets {
        #[command(flatten)]
        send: SendArgs,
        /// Target names, e.g. drupal/token/1.9.0.0.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Make the signers re-sign their metadata with a fresh expiry now (they also do it by
    /// themselves when less than --refresh-left-percent of a lifetime is left).
    ///
    /// Without --role: targets (every bin and top-level targets), then snapshot and timestamp
    /// follow. Over the inbox (no broker) only the targets role can be asked; the others follow.
    RefreshExpiry {
        #[command(flatten)]
        send: SendArgs,
        /// Only this role: targets, snapshot or timestamp.
        #[arg(long, value_parser = ["targets", "snapshot", "timestamp"])]
        role: Option<String>,
    },
    /// Change the number of hashed bins, keeping every target.
    ///
    /// Every target is spread over COUNT new bins and one new top-level targets version
    /// switches to them. Safe to interrupt: the new bins are written under new names
    /// before anything points at them, so clients verify throughout, and a signer killed
    /// midway finishes the job when it restarts (the job stays in the queue until done).
    /// More bins make each bin (what a client downloads per package) smaller and the
    /// snapshot larger; python-tuf's default 2 MB snapshot limit holds about 13,000 bins,
    /// old and new counted together.
    ///
    /// Example: tuf-client bins --count 4096 --amqp amqp://... --wait --repo ./repo
    #[command(verbatim_doc_comment)]
    Bins {
        #[command(flatten)]
        send: SendArgs,
        /// The new number of bins: a power of two from 1 to 16384.
        #[arg(long)]
        count: u32,
    },
    /// Check a repository folder: signatures, thresholds, the root chain, snapshot and
    /// timestamp lengths and hashes, every target in its hash bin, and expiry.
    ///
    /// Exit 0 when valid, 1 with the list of problems otherwise.
    Validate {
        /// The repository folder.
        #[arg(long, env = "TUF_REPO")]
        repo: PathBuf,
        /// Also report metadata that expires within this window (e.g. 1h, 2d).
        #[arg(long, default_value = "0s", value_parser = parse_window)]
        expires_within: std::time::Duration,
    },
    /// Show each role's version, expiry (yellow when close, red when expired) and key ids,
    /// the number of targets, whether signing is paused and, with a broker, the jobs waiting
    /// in each queue (a non-empty dead-letter queue is shown in red).
    Status {
        /// The repository folder.
        #[arg(long, env = "TUF_REPO")]
        repo: PathBuf,
        /// The broker, to show queue depths.
        #[command(flatten)]
        broker: cli::BrokerArgs,
        /// Colour: auto (when printing to a terminal and NO_COLOR is unset), always, never.
        #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
        color: String,
    },
    /// List, replay or drop the jobs the signers refused (the dead-letter queue), with why.
    ///
    /// Each letter is named by its id (for a submission, the id add-targets --wait and the
    /// signer's receipts use); ids may be shortened to their first characters. Reading the
    /// queue takes a broker user that may consume it (an operator's, not the pipeline's).
    /// A replayed job is checked again like any other: a submission issued longer ago than
    /// the targets signer's --max-job-age (24 h) is refused as stale (submit it again).
    ///
    /// Examples: tuf-client dead-letters --amqp amqp://operator@broker:5672/%2f
    ///           tuf-client dead-letters replay 3f2a9c1e --amqp ...
    ///           tuf-client dead-letters drop --all --amqp ...
    ///           tuf-client dead-letters --inbox ./inbox          (the embedded mode)
    #[command(verbatim_doc_comment)]
    DeadLetters {
        /// list, replay or drop.
        #[arg(value_enum, default_value = "list")]
        action: dead_letters::Action,
        /// The letters to replay or drop: their ids, or the first characters of them.
        ids: Vec<String>,
        /// Replay or drop every letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[command(flatten)]
        broker: cli::BrokerArgs,
        /// The embedded mode's inbox folder (its dead-letter/ holds the refused jobs).
        #[arg(long, env = "TUF_INBOX")]
        inbox: Option<PathBuf>,
    },
    /// Stop the targets signers taking new jobs: submissions wait in the queue, nothing is
    /// lost, and every role's expiry refresh goes on. Undo with `resume`.
    ///
    /// The switch is REPO/control/paused.json, so it holds across signer restarts.
    Pause {
        /// The repository folder the signers sign.
        #[arg(long, env = "TUF_REPO")]
        repo: PathBuf,
        /// Why, shown by `status`.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Let the targets signers take jobs again (they pick the switch up within a second).
    Resume {
        /// The repository folder the signers sign.
        #[arg(long, env = "TUF_REPO")]
        repo: PathBuf,
    },
    /// Trust a root.json (the start of every client's trust; copy it from a safe source).
    Init {
        /// Folder where the trusted metadata is kept between runs.
        #[arg(long)]
        metadata_dir: PathBuf,
        /// The root.json to trust.
        root_json: PathBuf,
    },
    /// Update the trusted metadata from the repository (root chain, timestamp, snapshot,
    /// targets); refuses rollback, freeze (expired metadata) and mix-and-match.
    Refresh {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Serve a repository folder read-only over HTTP (for deployments without a web server).
    ///
    /// Example: tuf-client serve --listen 0.0.0.0:8080 ./repo
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The repository folder (its metadata/ and targets/ are served).
        #[arg(env = "TUF_REPO")]
        repo: PathBuf,
    },
    /// Wait until stopped (SIGTERM or Ctrl-C): keeps the packaging-pipeline container up so
    /// that commands can be run in it (`ddev tuf-client ...`); the image has no shell.
    #[command(hide = true)]
    Idle,
    /// Refresh, then fetch and verify targets into a folder.
    Download {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Base URL (or folder) of the target files.
        #[arg(long)]
        targets_url: String,
        /// Where to write the verified files (as OUT/NAME).
        #[arg(short = 'o', long, default_value = ".")]
        out: PathBuf,
        /// Target names, e.g. drupal/token/1.9.0.0 or p2/drupal/token.json.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Args)]
struct SendArgs {
    #[command(flatten)]
    broker: cli::BrokerArgs,
    /// Without a broker: the inbox folder of `tuf-signer run --all --inbox DIR` (wins over
    /// --amqp and AMQP_URL).
    #[arg(long, env = "TUF_INBOX")]
    inbox: Option<PathBuf>,
    /// Return only once each name has an outcome: signed (a timestamp.json covering it is on
    /// disk, checked as a client checks it), refused (already signed with other content; exit
    /// 1, each named with why) or replaced (a later submission changed it again).
    #[arg(long, requires = "repo")]
    wait: bool,
    /// The repository folder to watch with --wait.
    #[arg(long, env = "TUF_REPO")]
    repo: Option<PathBuf>,
    /// Give up waiting after this long (e.g. 90s, 10m).
    #[arg(long, default_value = "10m")]
    timeout: String,
    /// Targets per job message.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// The packaging pipeline's key, which signs every targets job (`tuf-signer init` wrote
    /// it as KEYS/submitter.pem): the targets signer applies no other.
    #[arg(long, env = "TUF_SUBMITTER_KEY", value_name = "FILE")]
    submitter_key: Option<PathBuf>,
}

impl SendArgs {
    fn submitter_key(&self) -> Result<SigningKey> {
        let file = self.submitter_key.as_ref().ok_or_else(|| {
            Error::Usage(
                "targets jobs are signed: give --submitter-key FILE (or TUF_SUBMITTER_KEY), the \
                 key `tuf-signer init` wrote as KEYS/submitter.pem"
                    .into(),
            )
        })?;
        SigningKey::load(file)
    }
}

#[derive(Args)]
struct RemoteArgs {
    /// Folder of the trusted metadata (made by `tuf-client init`).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL (or folder) of the repository's metadata.
    #[arg(long)]
    metadata_url: String,
}

fn parse_window(text: &str) -> std::result::Result<std::time::Duration, String> {
    if text.trim_end_matches('s') == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    parse_duration(text).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::main_with("tuf-client", args.log.log_format, dispatch(args.command))
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::AddTargets {
            send,
            targets_dir,
            targets,
            replace,
            inputs,
        } => {
            if inputs.is_empty() && targets.is_empty() {
                return Err(Error::Usage(
                    "nothing to sign: give folders or files, or --target NAME=FILE".into(),
                ));
            }
            let releases = collect(&inputs, &targets)?;
            let started = Instant::now();
            let mut described = Vec::with_capacity(releases.len());
            let targets_dir = targets_dir
                .as_deref()
                .map(TargetsFolder::open)
                .transpose()?;
            for (i, release) in releases.iter().enumerate() {
                let target = describe(release)?;
                if let Some(dir) = &targets_dir {
                    dir.publish(release, &target)?;
                }
                described.push(target);
                if releases.len() >= 1000 && (i + 1) % 1000 == 0 {
                    eprintln!("hashed {}/{}", i + 1, releases.len());
                }
            }
            let expected: Expected = described
                .iter()
                .map(|t| (t.name.clone(), Some((t.length, t.hashes.sha256.clone()))))
                .collect();
            let jobs: Vec<TargetsJob> = described
                .chunks(send.batch_size.max(1))
                .map(|c| TargetsJob {
                    add: c.to_vec(),
                    replace,
                    ..Default::default()
                })
                .collect();
            submit(&send, jobs, expected, started).await
        }
        Command::RemoveTargets { send, names } => {
            for n in &names {
                check_target_name(n)?;
            }
            let expected: Expected = names.iter().map(|n| (n.clone(), None)).collect();
            let jobs = names
                .chunks(send.batch_size.max(1))
                .map(|c| TargetsJob {
                    remove: c.to_vec(),
                    ..Default::default()
                })
                .collect();
            submit(&send, jobs, expected, Instant::now()).await
        }
        Command::Serve { listen, repo } => {
            // Stops at once on SIGTERM or Ctrl-C (as a container's PID 1 too): it holds nothing.
            // The signal handler is set up before the port opens (polled first).
            tokio::select! {
                biased;
                () = cli::stop_signal() => Ok(()),
                served = package_signing::client::serve::serve(repo, &listen) => served,
            }
        }
        Command::Idle => {
            cli::stop_signal().await;
            Ok(())
        }
        Command::RefreshExpiry { send, role } => refresh_expiry(&send, role.as_deref()).await,
        Command::Bins { send, count } => change_bins(&send, count).await,
        Command::Validate {
            repo,
            expires_within,
        } => {
            let report =
                package_signing::client::validate::validate(&Layout::new(repo), expires_within)?;
            print!("{}", report.render());
            if report.is_ok() {
                Ok(())
            } else {
                Err(Error::Verify(format!(
                    "{} problem(s) found",
                    report.problems.len()
                )))
            }
        }
        Command::Status {
            repo,
            broker,
            color,
        } => {
            let mut report = status::read(&Layout::new(repo))?;
            if let Some(config) = broker.config()? {
                report = report.with_queues(&config).await?;
            }
            let colour = match color.as_str() {
                "always" => true,
                "never" => false,
                _ => {
                    use std::io::IsTerminal;
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            print!("{}", report.render(colour));
            Ok(())
        }
        Command::DeadLetters {
            action,
            ids,
            all,
            broker,
            inbox,
        } => {
            if action != dead_letters::Action::List && ids.is_empty() && !all {
                return Err(Error::Usage(
                    "which letters? give their ids (as `dead-letters` lists them) or --all".into(),
                ));
            }
            let choice = dead_letters::Choice { ids, all };
            let done = match (inbox, broker.config()?) {
                (Some(dir), _) => dead_letters::in_inbox(&dir, action, &choice)?,
                (None, Some(config)) => dead_letters::over_broker(&config, action, &choice).await?,
                (None, None) => {
                    return Err(Error::Usage(
                        "give --amqp URL (or AMQP_URL), or --inbox DIR".into(),
                    ))
                }
            };
            if action == dead_letters::Action::List {
                eprintln!("{done} dead letter(s)");
            } else if done == 0 {
                return Err(Error::Usage("no dead letter has such an id".into()));
            }
            Ok(())
        }
        Command::Pause { repo, reason } => {
            let layout = Layout::new(repo);
            layout.require_initialised()?;
            match Control::new(&layout).pause(reason)? {
                Some(p) => println!("already paused since {}", p.since),
                None => println!(
                    "paused: the targets signers stop taking jobs within a second (the batch \
                     in hand finishes); submissions wait in the queue"
                ),
            }
            Ok(())
        }
        Command::Resume { repo } => {
            let layout = Layout::new(repo);
            layout.require_initialised()?;
            match Control::new(&layout).resume()? {
                Some(p) => println!("resumed (paused since {})", p.since),
                None => println!("was not paused"),
            }
            Ok(())
        }
        Command::Init {
            metadata_dir,
            root_json,
        } => {
            let bytes = std::fs::read(&root_json).map_err(Error::io("cannot read", &root_json))?;
            updater::init(&metadata_dir, &bytes)?;
            println!(
                "trusting {} in {}",
                root_json.display(),
                metadata_dir.display()
            );
            Ok(())
        }
        Command::Refresh { remote } => {
            let mut updater = remote.updater()?;
            updater.refresh().await?;
            println!(
                "metadata up to date (root v{})",
                updater.trusted().root().version
            );
            Ok(())
        }
        Command::Download {
            remote,
            targets_url,
            out,
            names,
        } => {
            let targets_url = base_url(&targets_url)?;
            let mut updater = remote.updater()?;
            updater.refresh().await?;
            for name in &names {
                let dest = updater::output_path(&out, name)?;
                let info = updater.target_info(name).await?.ok_or_else(|| {
                    Error::Verify(format!("{name}: no such target in the signed metadata"))
                })?;
                // A file already there with the signed length and hashes is not fetched again.
                if std::fs::read(&dest).is_ok_and(|b| info.check(name, &b).is_ok()) {
                    println!("verified {name} (already at {})", dest.display());
                    continue;
                }
                let bytes = updater.download_target(name, &info, &targets_url).await?;
                create_dir(dest.parent().unwrap_or(&out))?;
                write_durably(&dest, &bytes)?;
                println!("verified {name} -> {}", dest.display());
            }
            Ok(())
        }
    }
}

impl RemoteArgs {
    fn updater(&self) -> Result<Updater<HttpFetcher>> {
        let config = updater::Config::default();
        let fetcher = HttpFetcher::new(&config);
        Ok(Updater::new(
            &self.metadata_dir,
            base_url(&self.metadata_url)?,
            fetcher,
            config,
        )?)
    }
}

async fn change_bins(send: &SendArgs, count: u32) -> Result<()> {
    package_signing::repository::HashBins::new(count)?;
    let job = TargetsJob {
        bins: Some(count),
        ..Default::default()
    };
    let started = Instant::now();
    sink_for(send).await?.send(&job, 0).await?;
    eprintln!("asked the targets signer for {count} bins");
    if !send.wait {
        return Ok(());
    }
    let layout = Layout::new(send.repo.clone().expect("clap requires --repo"));
    let timeout = parse_duration(&send.timeout)?;
    loop {
        // A read can race with a signer's rename; the next poll sees the finished files.
        if status::published_bins(&layout).is_ok_and(|n| n == count as usize) {
            println!(
                "{count} bins published ({} targets) in {:.1} s",
                status::read(&layout)?.targets,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(Error::Usage(format!(
                "timed out after {timeout:?} waiting for {count} bins; the job stays queued: \
                 are the signers running, or paused? (tuf-client status --repo ...)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn refresh_expiry(send: &SendArgs, role: Option<&str>) -> Result<()> {
    let bodies: Vec<(Queue, Vec<u8>)> = match role {
        None | Some("targets") => vec![(
            Queue::Targets,
            package_signing::submission::sign(
                &TargetsJob {
                    refresh_expiry: true,
                    ..Default::default()
                },
                &send.submitter_key()?,
            )?,
        )],
        Some("snapshot") => vec![(
            Queue::Snapshot,
            serde_json::to_vec(&SnapshotJob {
                refresh_expiry: true,
                ..Default::default()
            })
            .expect("serialises"),
        )],
        _ => vec![(
            Queue::Timestamp,
            serde_json::to_vec(&TimestampJob {
                refresh_expiry: true,
                ..Default::default()
            })
            .expect("serialises"),
        )],
    };
    for (seq, (queue, body)) in bodies.into_iter().enumerate() {
        match (&send.inbox, send.broker.config()?) {
            (Some(dir), _) if queue == Queue::Targets => {
                package_signing::broker::inbox::submit_to_inbox(dir, &body, seq)?;
            }
            (Some(_), _) => {
                return Err(Error::Usage(
                    "over the inbox only the targets role can be asked; snapshot and timestamp follow it".into(),
                ))
            }
            (None, Some(config)) => {
                let publisher = Publisher::connect(&config).await?;
                publisher.publish(queue, &body).await?;
                publisher.close().await;
            }
            (None, None) => return Err(Error::Usage("give --amqp URL (or AMQP_URL), or --inbox DIR".into())),
        }
    }
    println!(
        "asked the {} signer to re-sign with a fresh expiry",
        role.unwrap_or("targets")
    );
    Ok(())
}

async fn sink_for(send: &SendArgs) -> Result<Sink> {
    let key = send.submitter_key()?;
    let route = match (&send.inbox, send.broker.config()?) {
        (Some(dir), _) => Route::Inbox(dir.clone()),
        (None, Some(config)) => Route::Broker(Publisher::connect(&config).await?),
        (None, None) => {
            return Err(Error::Usage(
                "where should the job go? --amqp URL (or AMQP_URL) for signers over RabbitMQ, or --inbox DIR for `tuf-signer run --all --inbox DIR`".into(),
            ))
        }
    };
    Ok(Sink { route, key })
}

async fn submit(
    send: &SendArgs,
    jobs: Vec<TargetsJob>,
    expected: Expected,
    started: Instant,
) -> Result<()> {
    // Following the receipts starts before the first job goes, so none is missed.
    let mut wait = send
        .repo
        .clone()
        .filter(|_| send.wait)
        .map(|repo| Wait::new(Layout::new(repo)));
    let sink = sink_for(send).await?;
    let total = expected.len();
    for (seq, job) in jobs.iter().enumerate() {
        let id = sink.send(job, seq).await?;
        if let Some(wait) = &mut wait {
            let names = job
                .add
                .iter()
                .map(|t| t.name.clone())
                .chain(job.remove.iter().cloned());
            wait.sent(id, names.collect());
        }
    }
    eprintln!("submitted {total} target(s) in {} job(s)", jobs.len());
    match &mut wait {
        Some(wait) => {
            wait.run(expected, started, parse_duration(&send.timeout)?)
                .await
        }
        None => Ok(()),
    }
}
