//! Log set-up shared by both binaries: human lines by default, JSON with `--log-format json`.

use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`): human-readable lines, or one JSON object a
/// line for a log collector.
// No doc comment on the variants: clap would print each in `--help` as the value's help.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The default filter: info, without lapin's own lines for each channel the broker closes and
/// from its socket loop. Every such close or I/O failure reaches our code as an error it
/// reports with what to do next (or, for a passive look at a queue that is not there,
/// expects), so lapin's lines only alarm the operator: its socket loop logs "Socket was
/// writable but we wrote 0" at ERROR on healthy runs (seen on every few signer health probes
/// in containers). `RUST_LOG=info,lapin=debug` shows them all.
const DEFAULT_FILTER: &str = "info,lapin::channel=off,lapin::io_loop=off";

/// Logs go to stderr; colour only when stderr is a terminal and `NO_COLOR` is not set, so a
/// log redirected to a file (`2> signer.log`) or collected from a container is plain text.
pub fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
