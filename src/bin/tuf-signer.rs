//! `tuf-signer`: create a TUF repository, and run its online signers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use package_signing::broker::Via;
use package_signing::cli;
use package_signing::keys::KeyIdRule;
use package_signing::ops::init::{find_key, init, InitOptions};
use package_signing::ops::new_key::{self, Holder};
use package_signing::ops::root;
use package_signing::progress::{Progress, Show};
use package_signing::repository::deployment::Deployment;
use package_signing::repository::expiry::parse_duration;
use package_signing::repository::prune::Retention;
use package_signing::repository::Layout;
use package_signing::role::Role;
use package_signing::role::SUBMITTER;
use package_signing::signer::{Signers, Submissions};
use package_signing::submission::Mutable;
use package_signing::worker::{Transport, WorkerOptions};
use package_signing::{Error, Result};

/// Signs a Composer package repository with The Update Framework (TUF).
///
/// Start with `init`, which writes the keys and the first signed metadata. Then run the three
/// online signers (`run --role targets|snapshot|timestamp`, one process each, over RabbitMQ),
/// or all three in one process with `run --all`. Submit releases with `tuf-client add-targets`.
#[derive(Subcommand)]
enum Command {
    /// Create the keys and the first signed version of every role.
    ///
    /// Writes KEYS/root.pem, targets.pem, snapshot.pem and timestamp.pem (one file per role,
    /// so each signer mounts only its own; move root.pem offline afterwards), and
    /// REPO/metadata/: 1.root.json, root.json, 1.targets.json delegating to the hashed
    /// bins, every 1.bin-*.json, 1.snapshot.json and timestamp.json.
    ///
    /// Example: tuf-signer init --repo ./repo --keys ./keys --bins 2048
    #[command(verbatim_doc_comment)]
    Init {
        /// The repository folder to create (serve REPO/metadata and REPO/targets over HTTP).
        #[arg(long, env = "TUF_REPO")]
        repo: PathBuf,
        /// The folder for the new key files.
        #[arg(long)]
        keys: PathBuf,
        /// Number of hashed bins, a power of two from 1 to 16384. python-tuf's default
        /// snapshot size limit (2 MB) holds about 8192 bins.
        #[arg(long, default_value_t = 2048)]
        bins: u32,
        /// Write KEYS/ROLE/ROLE.pem (one folder, so one volume, per role) instead of
        /// KEYS/ROLE.pem.
        #[arg(long)]
        key_folders: bool,
        /// Give ROLE's key to user UID (repeatable; init must run as root), e.g.
        /// --key-owner targets=10001 (ROLE may also be submitter, the packaging pipeline's key).
        #[arg(long = "key-owner", value_name = "ROLE=UID", value_parser = parse_owner)]
        key_owners: Vec<(String, u32)>,
        /// Make the repository's folders writable by group GID (shared by the agents' users).
        #[arg(long, value_name = "GID")]
        repo_group: Option<u32>,
        /// How key ids are computed. php-tuf: what php-tuf (Composer's TUF plugin) accepts,
        /// and python-tuf and go-tuf too. spec: the key as published (TUF 1.0 §4.2), for
        /// tough-based clients, which php-tuf refuses. Later root versions keep the rule.
        #[arg(long, value_enum, default_value_t = KeyIdRule::PhpTuf)]
        key_id_rule: KeyIdRule,
        #[command(flatten)]
        expiry: cli::ExpiryArgs,
        /// Progress (bins signed) as a plain line every few seconds instead of a bar, as when
        /// stderr is not a terminal.
        #[arg(long)]
        quiet: bool,
        /// Make every key inside this PKCS#11 token (an HSM, SoftHSM2) instead of key files:
        /// each is generated in the token, not extractable, and KEYS/ROLE.pkcs11 names it
        /// (a pkcs11: URI, no secret). The PIN comes from the URI's pin-source file or
        /// TUF_PKCS11_PIN, never from here. See README, "Keys in an HSM".
        /// Example: 'pkcs11:token=tuf?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin'
        #[arg(long, value_name = "URI")]
        token: Option<String>,
        /// With --token: what every key's label starts with (tuf-timestamp, tuf-root, ...).
        #[arg(long, default_value = "tuf-", requires = "token")]
        token_label_prefix: String,
    },
    /// Make one new signing key, for a key rotation: a key file, or with --token a key
    /// generated inside a PKCS#11 token and a reference file naming it.
    ///
    /// Writes OUT (the key file or the token reference, private) and OUT's public half as
    /// NAME.pub.pem beside it, and prints the key id. Then add it to the root
    /// (`root new --add-key ROLE=OUT`) and follow README, "Rotating an online key".
    ///   tuf-signer new-key --out ./keys/timestamp.next.pkcs11 \
    ///       --token 'pkcs11:token=tuf;object=tuf-timestamp-2?module-path=/usr/lib/softhsm/libsofthsm2.so'
    #[command(verbatim_doc_comment)]
    NewKey {
        /// Where to write the key file (NAME.pem) or the token reference (NAME.pkcs11).
        #[arg(long)]
        out: PathBuf,
        /// Generate the key inside this token; object= in the URI is its label.
        #[arg(long, value_name = "URI")]
        token: Option<String>,
    },
    /// Run a signer (or all three) until stopped with Ctrl-C or SIGTERM.
    ///
    /// Over RabbitMQ (--amqp or AMQP_URL): one process per role, each with only its own key:
    ///   tuf-signer run --role targets --repo ./repo --key ./keys/targets.pem --amqp amqp://...
    /// A second process for the same role is a hot standby. The signer waits for the broker
    /// when it is down.
    ///
    /// Without a broker: all three roles in one process, taking jobs from an inbox folder
    /// that `tuf-client add-targets --inbox DIR` writes to:
    ///   tuf-signer run --all --repo ./repo --keys ./keys --inbox ./inbox
    #[command(verbatim_doc_comment)]
    Run(Box<RunArgs>),
    /// Say whether a running signer is healthy, for a container's health check: one line
    /// per check, exit 0 when all pass, 1 when one fails.
    ///
    /// Reads the record the signer rewrites every 5 s in its state folder
    /// (STATE/health.ROLE.json) and the role's newest metadata in the repository. Unhealthy:
    ///   alive     no record, the signer stopped, or no heartbeat for --stale-after (dead or hung)
    ///   key       the key's last probe (every run --key-probe) or signature failed
    ///   metadata  (not for a hot standby) a file it keeps expires within half its refresh
    ///             margin: a quarter of its lifetime by default (6h for a 1-day timestamp),
    ///             or within --expires-within
    /// Example (the images' health check, TUF_REPO and TUF_STATE from their environment):
    ///   tuf-signer health --role timestamp
    #[command(verbatim_doc_comment)]
    Health(HealthArgs),
    /// Make a new root version offline: new keys, thresholds, expiry.
    ///
    /// The ceremony, one step per keyholder, each on their own machine with their own key:
    ///   tuf-signer root new --repo ./repo --draft root-draft.json --add-key root=alice.pub.pem \
    ///       --add-key root=bob.pub.pem --threshold root=2 --expires 365d
    ///   tuf-signer root sign --repo ./repo --draft root-draft.json --key alice.pem
    ///   tuf-signer root status --repo ./repo --draft root-draft.json
    ///   tuf-signer root publish --repo ./repo --draft root-draft.json
    /// A root version must be signed by the threshold of the current root's keys and of its
    /// own. Keys are ed25519 PEM files, e.g. `openssl genpkey -algorithm ED25519 -out k.pem`;
    /// hand over only the public half: `openssl pkey -in k.pem -pubout -out k.pub.pem`.
    ///
    /// Rotating an online key without clients noticing: a root version that adds the new
    /// key beside the old one, then restart that role's signer with the new key (it re-signs
    /// its metadata with it at once), then a root version that removes the old key.
    #[command(verbatim_doc_comment, subcommand)]
    Root(RootCommand),
    /// Make a deployment's broker passwords: one random password per agent's broker user,
    /// each in OUT/AGENT.password (0600), and OUT/definitions.json for the broker with their
    /// salted hashes (the users, permissions and queues of nix/rabbitmq/definitions.json).
    ///
    /// The broker image refuses the development passwords baked into it (dev-AGENT, published
    /// in this repository) unless started with TUF_BROKER_DEV=1 (DDEV sets it): mount
    /// OUT/definitions.json over /etc/rabbitmq/definitions.json, and each password file into
    /// its agent only, named by AMQP_PASSWORD_FILE.
    ///
    /// Example: tuf-signer broker-secrets --out ./broker-secrets \
    ///              --owner delegated-targets-signer=10001 --owner packaging-pipeline=10004
    #[command(verbatim_doc_comment)]
    BrokerSecrets {
        /// The folder to write into (made private; nothing in it is replaced).
        #[arg(long)]
        out: PathBuf,
        /// Give AGENT's password file to user UID (repeatable; run as root).
        #[arg(long = "owner", value_name = "AGENT=UID", value_parser = parse_agent_owner)]
        owners: Vec<(String, u32)>,
        /// Broker definitions to start from (default: the image's, nix/rabbitmq/definitions.json).
        #[arg(long, value_name = "FILE")]
        definitions: Option<PathBuf>,
    },
}

fn parse_agent_owner(text: &str) -> std::result::Result<(String, u32), String> {
    let (agent, uid) = text
        .split_once('=')
        .ok_or("write AGENT=UID, e.g. delegated-targets-signer=10001")?;
    Ok((
        agent.to_string(),
        uid.parse().map_err(|_| format!("{uid}: not a uid"))?,
    ))
}

#[derive(Subcommand)]
enum RootCommand {
    /// Start a draft of the next root version from the repository's newest root.
    New {
        #[command(flatten)]
        draft: DraftArgs,
        /// Add a key to a role: ROLE=FILE, FILE a public (or private) ed25519 PEM key.
        #[arg(long = "add-key", value_name = "ROLE=FILE", value_parser = parse_role_value)]
        add: Vec<(String, String)>,
        /// Remove a key from a role: ROLE=KEYID (the key id or its first 8+ hex digits).
        #[arg(long = "remove-key", value_name = "ROLE=KEYID", value_parser = parse_role_value)]
        remove: Vec<(String, String)>,
        /// Signatures a role needs: ROLE=N.
        #[arg(long = "threshold", value_name = "ROLE=N", value_parser = parse_role_value)]
        thresholds: Vec<(String, String)>,
        /// The new root's lifetime from now (e.g. 365d); without it the expiry is kept.
        #[arg(long)]
        expires: Option<String>,
        /// Rename every key by this rule (php-tuf or spec; see `init --help`). Publishing
        /// needs --force, as the served files still carry the old ids: then restart every
        /// signer, and each re-signs under its key's new id.
        #[arg(long, value_enum, value_name = "RULE")]
        key_id_rule: Option<KeyIdRule>,
        /// Replace an existing draft file.
        #[arg(long)]
        force: bool,
    },
    /// Sign the draft with one root key (of the current root or of the new one).
    Sign {
        #[command(flatten)]
        draft: DraftArgs,
        /// The root private key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Show what the draft changes and which signatures it has and still needs.
    Status {
        #[command(flatten)]
        draft: DraftArgs,
    },
    /// Publish the draft as metadata/N.root.json and root.json once both thresholds are met.
    ///
    /// Refuses a root under which the timestamp, snapshot or targets being served would not
    /// verify (their signer has not re-signed with a key this root lists yet).
    Publish {
        #[command(flatten)]
        draft: DraftArgs,
        /// Publish even so (clients refuse the repository until those signers re-sign).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
struct DraftArgs {
    /// The repository folder. Offline, a copy holding its metadata/*.root.json is enough for
    /// new, sign and status; publish (which needs no key) writes into the live one.
    #[arg(long, env = "TUF_REPO")]
    repo: PathBuf,
    /// The draft file that travels between keyholders.
    #[arg(long, default_value = "root-draft.json")]
    draft: PathBuf,
    /// The root the keyholders trust (init wrote KEYS/root.json): the repository's roots must
    /// chain from it, and publish moves it to the new root.
    #[arg(long = "root", env = "TUF_ROOT", value_name = "FILE")]
    root: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// The role to sign for.
    #[arg(
        long,
        value_enum,
        env = "TUF_ROLE",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    role: Option<RoleArg>,
    /// Run all three roles in this process (keys from --keys).
    #[arg(long)]
    all: bool,
    /// The repository folder made by `init`.
    #[arg(long, env = "TUF_REPO")]
    repo: PathBuf,
    /// This role's private key file (with --role). During a key rotation, the key it
    /// replaced goes beside it as NAME.previous.pem (keys/timestamp.previous.pem): it
    /// co-signs the role's top-level file, so clients checking against an older root (php-tuf)
    /// still verify; remove it and restart once clients have moved on (README "Rotating an
    /// online key").
    #[arg(long, env = "TUF_KEY", required_unless_present = "all")]
    key: Option<PathBuf>,
    /// The folder holding targets.pem, snapshot.pem, timestamp.pem (with --all), and any
    /// NAME.previous.pem of a rotation (see --key).
    #[arg(long, required_if_eq("all", "true"))]
    keys: Option<PathBuf>,
    #[command(flatten)]
    root: cli::RootArgs,
    /// The broker. Without one (and with --all), jobs pass in-process and come from --inbox.
    #[command(flatten)]
    broker: cli::BrokerArgs,
    /// The inbox folder for the embedded mode (with --all; wins over --amqp and AMQP_URL).
    #[arg(long, env = "TUF_INBOX")]
    inbox: Option<PathBuf>,
    /// Most jobs folded into one batch (also the broker prefetch).
    #[arg(long, default_value_t = 1000)]
    batch_max: u16,
    /// How long a superseded metadata version stays for clients mid-update ("never": no age
    /// limit). Pruning runs every few seconds, and at once when the disk is full (unless
    /// both this and --keep-versions keep everything).
    #[arg(long, default_value = "1h")]
    prune_after: String,
    /// At most this many superseded versions of each metadata file stay once past
    /// --prune-grace, however recent ("all": no count limit): this bounds the disk under
    /// sustained load. See README, "Disk use".
    #[arg(long, default_value = "10")]
    keep_versions: String,
    /// A superseded version younger than this is never pruned, not even on a full disk: a
    /// client that read the snapshot naming it may be fetching it.
    #[arg(long, default_value = "30s")]
    prune_grace: String,
    /// Write no gzip copies. By default each metadata version written (N.targets.json,
    /// N.bin-*.json, N.snapshot.json) gets N.NAME.json.gz beside it, made off the signing
    /// path, for a web server that serves precompressed files (nginx gzip_static, tuf-client
    /// serve). See README, "Choosing a bin count".
    #[arg(long)]
    no_gzip_copies: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9464; off by
    /// default): jobs by outcome, batch latency, each role's version and seconds until its
    /// metadata expires, last publish, broker connection, active or standby. See README,
    /// "Monitoring".
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Re-sign a role when less than this percentage of its lifetime is left (50: a 1-day
    /// timestamp is re-signed once 12 hours are left). Checked at start, then regularly.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=99))]
    refresh_left_percent: u8,
    /// How often the key signs a probe message (checked against its public key), so that a
    /// key that cannot sign (a token gone) shows in `tuf-signer health` while no job comes.
    #[arg(long, default_value = "30s", value_parser = cli::duration)]
    key_probe: std::time::Duration,
    /// How many targets the targets signer keeps in memory, at most (about 250 bytes each).
    /// Bins beyond it stay on disk and are read back, checked against what this signer
    /// recorded writing, when a job touches them: memory does not grow with the repository.
    #[arg(long, default_value_t = package_signing::roles::HELD_TARGETS)]
    held_targets: usize,
    /// Targets: the submitter public keys whose jobs it applies (PEM, one or more PUBLIC KEY
    /// blocks). Default: submitters.pub beside the targets key, where init wrote it.
    #[arg(long, env = "TUF_SUBMITTERS", value_name = "FILE")]
    submitters: Option<PathBuf>,
    /// Targets: refuse jobs issued longer ago than this (a replay, or a job that waited too
    /// long: submit it again). Also how long the submission ledger remembers.
    #[arg(long, default_value = "24h")]
    max_job_age: String,
    /// Targets: the submission ledger, what the replay rule remembers (see README, "Threat
    /// model"). Put it on a volume only the targets signer writes. Default:
    /// REPO/control/targets/submissions.jsonl.
    #[arg(long, env = "TUF_SUBMISSION_LEDGER", value_name = "FILE")]
    submission_ledger: Option<PathBuf>,
    /// Targets: the names that may be signed again with other content, comma-separated
    /// patterns (`*` within one folder level; "none" for none). Every other name, once signed,
    /// is immutable: a submission giving it other bytes is refused (dead-lettered, and its
    /// `--wait` says why) unless submitted with `add-targets --replace`. The default is what
    /// Composer rewrites: packages.json, p2/ metadata, dev versions.
    #[arg(
        long,
        env = "TUF_MUTABLE_TARGETS",
        default_value = package_signing::submission::Mutable::DEFAULT,
        value_name = "PATTERNS"
    )]
    mutable_targets: String,
    #[command(flatten)]
    expiry: cli::ExpiryArgs,
}

#[derive(Args)]
struct HealthArgs {
    /// The role whose signer to check; without it, every signer with a record in the state
    /// folder (`run --all` keeps three).
    #[arg(long, value_enum)]
    role: Option<RoleArg>,
    /// The repository folder the signer signs.
    #[arg(long, env = "TUF_REPO")]
    repo: PathBuf,
    /// The signer's state folder (its --state). Default: state/ beside --key, as for `run`.
    #[arg(long, env = "TUF_STATE", value_name = "DIR")]
    state: Option<PathBuf>,
    /// The signer's key file, to find its default state folder (the key is not read).
    #[arg(long, env = "TUF_KEY", value_name = "FILE")]
    key: Option<PathBuf>,
    /// A heartbeat older than this means the signer is dead or hung (it beats every 5 s).
    #[arg(long, default_value = "60s", value_parser = cli::duration)]
    stale_after: std::time::Duration,
    /// Unhealthy when a file the signer keeps expires within this, whatever its lifetime.
    /// Default: half its refresh margin (the signer re-signs at --refresh-left-percent, 50:
    /// so a quarter of its lifetime).
    #[arg(long, value_parser = cli::duration)]
    expires_within: Option<std::time::Duration>,
}

/// The online roles, as `--role` takes them.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    Targets,
    Snapshot,
    Timestamp,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Targets => Role::Targets,
            RoleArg::Snapshot => Role::Snapshot,
            RoleArg::Timestamp => Role::Timestamp,
        }
    }
}

fn parse_owner(text: &str) -> std::result::Result<(String, u32), String> {
    let (role, uid) = text
        .split_once('=')
        .ok_or("write ROLE=UID, e.g. targets=10001")?;
    if Role::top_level(role).is_err() && role != SUBMITTER {
        return Err(format!(
            "{role}: not a key init makes (root, targets, snapshot, timestamp, submitter)"
        ));
    }
    Ok((
        role.to_string(),
        uid.parse().map_err(|_| format!("{uid}: not a uid"))?,
    ))
}

fn parse_role_value(text: &str) -> std::result::Result<(String, String), String> {
    let (role, value) = text
        .split_once('=')
        .ok_or("write ROLE=VALUE, e.g. root=alice.pub.pem")?;
    Role::top_level(role).map_err(|e| e.to_string())?;
    Ok((role.to_string(), value.to_string()))
}

fn main() -> ExitCode {
    cli::CommandLine::run("tuf-signer", dispatch)
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Init {
            repo,
            keys,
            bins,
            key_folders,
            key_owners,
            repo_group,
            key_id_rule,
            expiry,
            quiet,
            token,
            token_label_prefix,
        } => {
            let opts = InitOptions {
                repo,
                keys,
                bins,
                expiries: expiry.expiries(),
                deployment: Deployment {
                    key_owners,
                    key_folders,
                    repo_group,
                },
                key_id_rule,
                holder: Holder::new(token.as_deref(), token_label_prefix)?,
            };
            let show = Show::for_stderr(quiet);
            let mut signed = Progress::new("signed", " bins", u64::from(opts.bins), show);
            let report = init(&opts, |done, _| signed.set(done as u64))?;
            signed.finish();
            print!("{}", report.summary(&opts));
            Ok(())
        }
        Command::NewKey { out, token } => {
            print!("{}", new_key::new_key(&out, token.as_deref())?);
            Ok(())
        }
        Command::Run(args) => run(*args).await,
        Command::Health(args) => health(&args),
        Command::BrokerSecrets {
            out,
            owners,
            definitions,
        } => {
            use package_signing::broker::secrets;
            let template = match &definitions {
                Some(file) => std::fs::read_to_string(file)
                    .map_err(Error::io("cannot read the broker definitions", file))?,
                None => secrets::DEV_DEFINITIONS.to_string(),
            };
            print!("{}", secrets::write(&out, &template, &owners)?.summary());
            Ok(())
        }
        Command::Root(command) => root_command(command),
    }
}

fn root_command(command: RootCommand) -> Result<()> {
    let text = match command {
        RootCommand::New {
            draft,
            add,
            remove,
            thresholds,
            expires,
            key_id_rule,
            force,
        } => {
            let ceremony = draft.ceremony();
            ceremony.may_start(force)?;
            let changes = root::Changes::parse(&add, &remove, &thresholds, expires.as_deref())?;
            let changes = root::Changes {
                key_id_rule,
                ..changes
            };
            ceremony.start(&changes)?
        }
        RootCommand::Sign { draft, key } => draft.ceremony().sign(&key)?,
        RootCommand::Status { draft } => draft.ceremony().status()?,
        RootCommand::Publish { draft, force } => draft.ceremony().publish(force)?,
    };
    print!("{text}");
    Ok(())
}

/// `tuf-signer health`: prints each check, fails when one did.
fn health(args: &HealthArgs) -> Result<()> {
    use package_signing::health::{check, Rules};
    let state = match (&args.state, &args.key) {
        (Some(state), _) => state.clone(),
        (None, Some(key)) => key.parent().unwrap_or(Path::new(".")).join("state"),
        (None, None) => {
            return Err(Error::Usage(
                "where is the signer's state folder? pass --state DIR (or TUF_STATE), or its \
                 --key (TUF_KEY) when it keeps the default, state/ beside its key"
                    .into(),
            ))
        }
    };
    let rules = Rules {
        stale_after: args.stale_after,
        expires_within: args.expires_within,
    };
    let role = args.role.map(Role::from);
    let mut failed = 0;
    for (role, findings) in check(&state, &Layout::new(&args.repo), role, &rules)? {
        for finding in findings {
            let verdict = if finding.healthy { "ok  " } else { "FAIL" };
            failed += usize::from(!finding.healthy);
            println!("{role}: {verdict} {}", finding.says);
        }
    }
    if failed > 0 {
        return Err(Error::Refused(format!(
            "unhealthy: {failed} check(s) failed (see above)"
        )));
    }
    println!("healthy");
    Ok(())
}

impl DraftArgs {
    fn ceremony(&self) -> root::Ceremony {
        root::Ceremony::new(Layout::new(&self.repo), &self.root, &self.draft)
    }
}

async fn run(args: RunArgs) -> Result<()> {
    Layout::new(args.repo.clone()).require_folder()?;
    let stop = cli::stop_on_signal("stopping after the current batch");
    let keys = match (args.role, args.key.clone(), &args.keys) {
        (Some(role), Some(key), _) => vec![(role.into(), key)],
        (_, _, Some(keys)) => Role::ONLINE
            .into_iter()
            .map(|role| (role, find_key(keys, role.name())))
            .collect(),
        _ => unreachable!("clap requires --role and --key, or --all and --keys"),
    };
    let broker = args.broker.config()?;
    let via = if args.all && (args.inbox.is_some() || broker.is_none()) {
        Via::Inbox(args.inbox.clone().ok_or_else(|| {
            Error::Usage(
                "run --all without --amqp takes jobs from a folder: add --inbox DIR (and submit \
                 with `tuf-client add-targets --inbox DIR`)"
                    .into(),
            )
        })?)
    } else {
        Via::Broker(broker.ok_or_else(|| {
            Error::Usage(
                "a single-role signer needs a broker: pass --amqp URL or set AMQP_URL (or use \
                 --all for the embedded mode)"
                    .into(),
            )
        })?)
    };
    let signers = Signers {
        repo: args.repo.clone(),
        keys,
        expiries: args.expiry.expiries(),
        retention: Retention::parse(&args.prune_after, &args.keep_versions, &args.prune_grace)?,
        refresh_window: f64::from(args.refresh_left_percent) / 100.0,
        held_targets: args.held_targets,
        submissions: Submissions {
            submitters: args.submitters.clone(),
            max_job_age: parse_duration(&args.max_job_age)?,
            ledger: args.submission_ledger.clone(),
            mutable: Mutable::parse(&args.mutable_targets),
        },
        options: WorkerOptions {
            batch_max: args.batch_max.max(1),
            key_probe: args.key_probe,
        },
        root: args.root.root.clone(),
        state: args.root.state.clone(),
        gzip_copies: !args.no_gzip_copies,
    };
    if let Some(addr) = &args.metrics_listen {
        package_signing::metrics::listen(addr).await?;
    }
    signers.run(Transport::start(via), stop).await
}
