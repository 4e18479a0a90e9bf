//! What both binaries do around their commands: logging, the broker flags, the runtime, the
//! exit code, and waiting for a stop signal.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::broker::amqp::AmqpConfig;
use crate::logging::{self, LogFormat};
use crate::repository::Expiries;
use crate::{Error, Result};

// The command line of both binaries: their commands `C`, and the build version and logging
// flag they both take. Its help text is `C`'s doc comment: clap applies a struct's doc comment
// after its subcommands' (as `about` and `long_about`), so this one has none, which would take
// the place of each binary's own (and so do its fields': missing_docs is allowed here).
#[allow(missing_docs)]
#[derive(clap::Parser)]
#[command(version = crate::provenance::BUILD, propagate_version = true)]
pub struct CommandLine<C: clap::Subcommand> {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: C,
}

impl<C: clap::Subcommand> CommandLine<C> {
    /// Parses the process's arguments (exiting with clap's message when they do not parse),
    /// then runs `program`'s command as [`main_with`] does.
    pub fn run<F>(program: &str, dispatch: impl FnOnce(C) -> F) -> ExitCode
    where
        F: Future<Output = Result<()>>,
    {
        let args = <Self as clap::Parser>::parse();
        main_with(program, args.log.log_format, dispatch(args.command))
    }
}

/// The logging flag both binaries take.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Log lines as text (default) or JSON.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TUF_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// The root a command trusts: where its check of the repository starts ([`crate::pin`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RootArgs {
    /// The root you trust: a copy of the repository's root.json handed over out of band
    /// (`tuf-signer init` writes one into every key folder). Every root in the repository must
    /// chain from it; the repository's own 1.root.json is never trusted by itself. Default:
    /// root.json beside this agent's key (--key, --keys, --submitter-key).
    #[arg(long = "root", env = "TUF_ROOT", value_name = "FILE")]
    pub root: Option<PathBuf>,
    /// This agent's own state folder, private and writable, never inside the repository:
    /// the root it trusts once it has moved past --root (kept durably, so that trust only
    /// moves forward), and for a signer the highest version it signed of each file (it never
    /// signs at or below one). A signer's default: state/ beside its key; a command without
    /// it walks the roots from --root each time and keeps nothing.
    #[arg(long = "state", env = "TUF_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,
}

impl RootArgs {
    /// The pin: `--root`, else `root.json` beside `key`, else a usage error naming `command`;
    /// moving forward into `--state` when given.
    pub fn pin(&self, key: Option<&std::path::Path>, command: &str) -> Result<crate::pin::Pin> {
        let pin = crate::pin::Pin::resolve(self.root.as_deref(), key, command)?;
        match &self.state {
            Some(state) => pin.moving_in(state),
            None => Ok(pin),
        }
    }
}

/// How long each role's metadata stays valid: what the signers are given (`init`, `run`), and
/// what `validate` and `status` judge "close to expiring" by ([`Expiries::warning`]).
#[derive(Debug, Clone, clap::Args)]
pub struct ExpiryArgs {
    /// Root metadata lifetime (e.g. 365d).
    #[arg(long, default_value = "365d", value_parser = duration)]
    pub expire_root: Duration,
    /// Top-level targets lifetime.
    #[arg(long, default_value = "365d", value_parser = duration)]
    pub expire_targets: Duration,
    /// Hashed-bin lifetime.
    #[arg(long, default_value = "365d", value_parser = duration)]
    pub expire_bins: Duration,
    /// Snapshot lifetime.
    #[arg(long, default_value = "7d", value_parser = duration)]
    pub expire_snapshot: Duration,
    /// Timestamp lifetime.
    #[arg(long, default_value = "1d", value_parser = duration)]
    pub expire_timestamp: Duration,
}

impl ExpiryArgs {
    /// The lifetimes the flags give, one per role.
    pub fn expiries(&self) -> Expiries {
        Expiries {
            root: self.expire_root,
            targets: self.expire_targets,
            bins: self.expire_bins,
            snapshot: self.expire_snapshot,
            timestamp: self.expire_timestamp,
        }
    }
}

/// A clap value parser for a duration: `365d`, `12h`, `30m`, `90s` or seconds, never zero.
pub fn duration(text: &str) -> std::result::Result<Duration, String> {
    crate::repository::expiry::parse_duration(text).map_err(|e| e.to_string())
}

/// [`duration`], or `0` (a wait or window that may be empty).
pub fn duration_or_zero(text: &str) -> std::result::Result<Duration, String> {
    crate::repository::expiry::parse_duration_or_zero(text).map_err(|e| e.to_string())
}

/// Whether to print in colour: `auto` on a terminal with NO_COLOR unset.
// No doc comment on the variants: clap would print each in `--help` as the value's help.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Colour {
    Auto,
    Always,
    Never,
}

impl Colour {
    /// Whether what goes to stdout is coloured.
    pub fn on_stdout(self) -> bool {
        match self {
            Colour::Always => true,
            Colour::Never => false,
            Colour::Auto => {
                use std::io::IsTerminal;
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

/// How to reach RabbitMQ, the same for every command that talks to it. The password belongs
/// in `AMQP_URL` or in a password file, never on the command line, where `ps` shows it.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// RabbitMQ URL, e.g. amqp://tuf-signer@broker:5672/%2f; set it in AMQP_URL rather than
    /// here when it holds the password. Unset or empty: no broker. Several, separated by
    /// commas (the nodes of a cluster): tried in turn, at start and whenever the connection
    /// is lost.
    #[arg(
        long,
        env = "AMQP_URL",
        hide_env_values = true,
        value_name = "URL[,URL...]"
    )]
    pub amqp: Option<String>,
    /// A file holding the broker password (its first line), which replaces any in the URL.
    #[arg(long, env = "AMQP_PASSWORD_FILE", value_name = "FILE")]
    pub amqp_password_file: Option<PathBuf>,
    /// For a broker on another host (amqps://HOST:5671/...): the PEM file of the certificate
    /// authority that signed its certificate. Without it, amqps:// trusts the system's
    /// authorities; amqp:// is plain text, for a broker on this host or a private network.
    #[arg(long, env = "AMQP_CA_FILE", value_name = "FILE")]
    pub amqp_ca_file: Option<PathBuf>,
    /// Prefix of the queue names, to run several repositories on one broker (give the
    /// signers and the clients of one repository the same).
    #[arg(long, env = "TUF_QUEUE_PREFIX", default_value = "")]
    pub queue_prefix: String,
    /// How long a tuf-client command waits for a broker that is down or restarting before it
    /// fails (e.g. 30s, 10m; 0s: not at all), saying on stderr that it waits. Signers always
    /// wait.
    #[arg(
        long,
        env = "TUF_BROKER_WAIT",
        default_value = "5m",
        value_name = "DURATION",
        value_parser = duration_or_zero
    )]
    pub broker_wait: Duration,
    /// The kind of queue to declare where none exists yet: classic (one broker), or quorum
    /// (a RabbitMQ cluster: every job replicated on a majority of nodes). Give every agent of
    /// a repository the same; an existing queue keeps its kind (delete it to change).
    #[arg(long, env = "TUF_QUEUE_TYPE", value_enum, default_value = "classic")]
    pub queue_type: crate::broker::amqp::QueueType,
}

impl BrokerArgs {
    /// The broker to use, if one is configured.
    pub fn config(&self) -> Result<Option<AmqpConfig>> {
        let Some(url) = self.amqp.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut config = AmqpConfig::new(url);
        if let Some(file) = &self.amqp_password_file {
            let text = std::fs::read_to_string(file)
                .map_err(Error::io("cannot read the broker password file", file))?;
            let password = text.lines().next().unwrap_or("").trim_end();
            let with_password = |url: &str| -> Result<String> {
                let mut parsed = url::Url::parse(url).map_err(|_| {
                    Error::Usage(format!(
                        "{}: not a URL; write amqp://USER@HOST:PORT/VHOST",
                        AmqpConfig::redact(url)
                    ))
                })?;
                parsed.set_password(Some(password)).map_err(|()| {
                    Error::Usage("the AMQP URL has no user to give the password to".into())
                })?;
                Ok(parsed.to_string())
            };
            config.url = config
                .urls()
                .map(with_password)
                .collect::<Result<Vec<_>>>()?
                .join(",");
        }
        config.ca_file = self.amqp_ca_file.clone();
        config.prefix = self.queue_prefix.clone();
        config.queue_type = self.queue_type;
        config.patience = self.broker_wait;
        Ok(Some(config))
    }
}

/// Sets up logging and the runtime, runs `command`, and turns its result into the exit code:
/// 0, or 1 with `PROGRAM: error: REASON` on stderr.
pub fn main_with(
    program: &str,
    log_format: LogFormat,
    command: impl Future<Output = Result<()>>,
) -> ExitCode {
    logging::init(log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A switch that turns true on Ctrl-C or SIGTERM, logging `saying` then.
pub fn stop_on_signal(saying: &'static str) -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("{saying}");
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// Returns on Ctrl-C or SIGTERM (what a container runtime sends to stop).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
