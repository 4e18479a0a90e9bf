//! Log set-up shared by both binaries: human lines by default, JSON with `--log-format json`.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The default filter: info, without lapin's own line for each channel the broker closes.
/// Every such close reaches our code as an error it reports (or, for a passive look at a
/// queue that is not there, expects), so lapin's line only alarms the operator.
const DEFAULT_FILTER: &str = "info,lapin::channel=off";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
