//! What both binaries do around their commands: logging, the runtime, the exit code, and
//! waiting for a stop signal.

use std::future::Future;
use std::process::ExitCode;

use crate::logging::{self, LogFormat};
use crate::Result;

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
