//! `tuf-client`: the packaging pipeline's side of the repository.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use package_signing::cli;
use package_signing::client::composer::{self, Remote};
use package_signing::client::send::{self, Sending};
use package_signing::client::{dead_letters, serve, status, validate};
use package_signing::progress::Show;
use package_signing::repository::Layout;
use package_signing::role::Role;
use package_signing::Result;

/// The packaging pipeline's side of a TUF-signed Composer repository.
///
/// Publisher side: `add-targets` hashes release files and submits them for signing,
/// `remove-targets` withdraws names, `status` shows the repository, `validate` checks it,
/// `pause`/`resume` hold signing, `refresh-expiry` re-signs now.
/// Composer side (what Composer's TUF plugin does): `init` trusts a root, `refresh` updates
/// the trusted metadata, `download` fetches and verifies packages.
// The commands come in groups, each flattened in. Clap applies a group's doc comment to the
// program's help too, then this one over it: this one is the help text.
#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Jobs(Jobs),
    #[command(flatten)]
    Operate(Operate),
    #[command(flatten)]
    Clients(Clients),
}

/// The commands that send the signers a job, over the broker or the inbox.
#[derive(Subcommand)]
enum Jobs {
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
        /// Copy each file into this targets folder (REPO/targets) under its consistent-snapshot
        /// name (dir/SHA256.file), where clients download it. Required unless --no-copy.
        #[arg(long, required_unless_present = "no_copy")]
        targets_dir: Option<PathBuf>,
        /// Sign only, copy nothing: the release files are published by something else (the
        /// Composer repository's web server, say). `validate --no-target-files` then skips
        /// looking for them.
        #[arg(long, conflicts_with = "targets_dir")]
        no_copy: bool,
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
        #[arg(long, value_parser = Role::ONLINE.map(Role::name))]
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
}

/// The commands an operator runs on a repository folder and on the signers' queues.
#[derive(Subcommand)]
enum Operate {
    /// Check a repository folder: signatures, thresholds, the root chain, snapshot and
    /// timestamp lengths and hashes, every target in its hash bin, and expiry.
    ///
    /// Exit 0 when valid, 1 with the list of problems otherwise.
    Validate {
        /// The repository folder.
        #[arg(long, env = "TUF_REPO")]
        repo: PathBuf,
        #[command(flatten)]
        root: cli::RootArgs,
        /// Report metadata that expires within this window, the same for every role (e.g. 12h;
        /// 0: only what has expired). Default: each role's own warning window, a quarter of
        /// its lifetime (the --expire-* flags, as given to the signers): the timestamp 6h,
        /// the snapshot 42h, root, targets and the bins 91d.
        #[arg(long, value_parser = cli::duration_or_zero, value_name = "DURATION")]
        expires_within: Option<std::time::Duration>,
        #[command(flatten)]
        expiry: cli::ExpiryArgs,
        /// Do not look for the target files in REPO/targets/ (for a repository whose release
        /// files are published elsewhere, e.g. by the Composer repository's web server).
        #[arg(long)]
        no_target_files: bool,
        /// Progress (bins checked) as a plain line every few seconds instead of a bar, as
        /// when stderr is not a terminal.
        #[arg(long)]
        quiet: bool,
    },
    /// Show each role's version, expiry (yellow when close, red when expired) and key ids,
    /// the number of targets, whether signing is paused and, with a broker, the jobs waiting
    /// in each queue (a non-empty dead-letter queue is shown in red).
    Status {
        /// The repository folder.
        #[arg(long, env = "TUF_REPO")]
        repo: PathBuf,
        #[command(flatten)]
        root: cli::RootArgs,
        /// The broker, to show queue depths.
        #[command(flatten)]
        broker: cli::BrokerArgs,
        /// Colour: auto (when printing to a terminal and NO_COLOR is unset), always, never.
        #[arg(long, value_enum, default_value = "auto")]
        color: cli::Colour,
        /// Each role's lifetime, as given to the signers: an expiry is shown in yellow when
        /// less than a quarter of it is left.
        #[command(flatten)]
        expiry: cli::ExpiryArgs,
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
    /// The switch is REPO/control/pause/paused.json, so it holds across signer restarts.
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
}

/// The commands of a repository's clients (what Composer's TUF plugin does), serving them the
/// repository, and keeping the pipeline's container up.
#[derive(Subcommand)]
enum Clients {
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
    /// Only its metadata/ and targets/ are served. With --composer, the Composer repository it
    /// signs is served at the top level beside them, so Composer's TUF plugin finds
    /// packages.json, p2/ and the archives at the repository URL and the metadata at URL/metadata/.
    ///
    /// Examples:
    ///   tuf-client serve --listen 0.0.0.0:8080 ./repo
    ///   tuf-client serve --listen 0.0.0.0:8080 --composer ./composer-repo ./repo
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Also serve this Composer repository folder (packages.json, p2/, archives) at the top
        /// level; it must not hold the TUF repository nor lie inside it.
        #[arg(long, value_name = "DIR")]
        composer: Option<PathBuf>,
        /// The repository folder (its metadata/ and targets/ are served).
        #[arg(env = "TUF_REPO")]
        repo: PathBuf,
        /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9465; off by
        /// default): requests by status, bytes and response time, and the version and expiry
        /// of the timestamp.json served. See README, "Monitoring".
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
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
    /// Return only once the job is published. add-targets and remove-targets: each name has
    /// an outcome: signed (a timestamp.json covering it is on disk, checked as a client checks
    /// it), refused (already signed with other content, or the whole submission by the
    /// targets signer; exit 1, each named with why) or replaced (a later submission changed
    /// it again). bins: the new bins are published. refresh-expiry: the re-signed file is.
    #[arg(long, requires = "repo")]
    wait: bool,
    /// The repository folder to watch with --wait.
    #[arg(long, env = "TUF_REPO")]
    repo: Option<PathBuf>,
    /// Give up waiting after this long (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = cli::duration, value_name = "DURATION")]
    timeout: std::time::Duration,
    /// Targets per job message.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// The packaging pipeline's key, which signs every targets job (`tuf-signer init` wrote
    /// it as KEYS/submitter.pem): the targets signer applies no other.
    #[arg(long, env = "TUF_SUBMITTER_KEY", value_name = "FILE")]
    submitter_key: Option<PathBuf>,
    /// With --wait: the root the published metadata is checked from.
    #[command(flatten)]
    root: cli::RootArgs,
    /// Progress (files hashed, then names decided with --wait) as a plain line every few
    /// seconds instead of a bar, as when stderr is not a terminal.
    #[arg(long)]
    quiet: bool,
}

impl From<SendArgs> for Sending {
    fn from(args: SendArgs) -> Sending {
        Sending {
            wait: args.repo.filter(|_| args.wait).map(Layout::new),
            inbox: args.inbox,
            broker: args.broker,
            submitter_key: args.submitter_key,
            timeout: args.timeout,
            batch_size: args.batch_size,
            root: args.root,
            show: Show::for_stderr(args.quiet),
        }
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

fn main() -> ExitCode {
    cli::CommandLine::run("tuf-client", dispatch)
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Jobs(jobs) => jobs.send().await,
        Command::Operate(operation) => operation.run().await,
        Command::Clients(command) => command.run().await,
    }
}

impl Jobs {
    async fn send(self) -> Result<()> {
        match self {
            Jobs::AddTargets {
                send,
                targets_dir,
                no_copy: _,
                targets,
                replace,
                inputs,
            } => {
                let (sending, dir) = (send.into(), targets_dir.as_deref());
                send::add_targets(&sending, &inputs, &targets, dir, replace).await
            }
            Jobs::RemoveTargets { send, names } => send::remove_targets(&send.into(), &names).await,
            Jobs::RefreshExpiry { send, role } => {
                let role = role.as_deref().map_or(Ok(Role::Targets), Role::online)?;
                send::refresh_expiry(&send.into(), role).await
            }
            Jobs::Bins { send, count } => send::change_bins(&send.into(), count).await,
        }
    }
}

impl Operate {
    async fn run(self) -> Result<()> {
        match self {
            Operate::Validate {
                repo,
                root,
                expires_within,
                expiry,
                no_target_files,
                quiet,
            } => validate::run(
                &Layout::new(repo),
                &root.pin(None, "validate")?,
                &validate::Window::new(expires_within, expiry.expiries()),
                !no_target_files,
                Show::for_stderr(quiet),
            ),
            Operate::Status {
                repo,
                root,
                broker,
                color,
                expiry,
            } => {
                status::show(
                    &Layout::new(repo),
                    &root.pin(None, "status")?,
                    broker.config()?.as_ref(),
                    color.on_stdout(),
                    &expiry.expiries(),
                )
                .await
            }
            Operate::DeadLetters {
                action,
                ids,
                all,
                broker,
                inbox,
            } => {
                let choice = dead_letters::Choice { ids, all };
                dead_letters::run(inbox, broker.config()?, action, &choice).await
            }
            Operate::Pause { repo, reason } => status::pause(&Layout::new(repo), reason),
            Operate::Resume { repo } => status::resume(&Layout::new(repo)),
        }
    }
}

impl Clients {
    async fn run(self) -> Result<()> {
        match self {
            Clients::Init {
                metadata_dir,
                root_json,
            } => composer::trust(&metadata_dir, &root_json),
            Clients::Refresh { remote } => composer::refresh(&remote.into()).await,
            // Stops at once on SIGTERM or Ctrl-C (as a container's PID 1 too): it holds nothing.
            // The signal handler is set up before the port opens (polled first).
            Clients::Serve {
                listen,
                composer,
                repo,
                metrics_listen,
            } => {
                if let Some(addr) = &metrics_listen {
                    package_signing::metrics::listen(addr).await?;
                    let layout = package_signing::repository::Layout::new(repo.clone());
                    tokio::spawn(serve::watch_timestamp(layout));
                }
                tokio::select! {
                    biased;
                    () = cli::stop_signal() => Ok(()),
                    served = serve::serve(repo, composer, &listen) => served,
                }
            }
            Clients::Idle => {
                cli::stop_signal().await;
                Ok(())
            }
            Clients::Download {
                remote,
                targets_url,
                out,
                names,
            } => composer::download(&remote.into(), &targets_url, &out, &names).await,
        }
    }
}

impl From<RemoteArgs> for Remote {
    fn from(args: RemoteArgs) -> Remote {
        Remote {
            metadata_dir: args.metadata_dir,
            metadata_url: args.metadata_url,
        }
    }
}
