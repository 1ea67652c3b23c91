//! The `nudged` binary: parse the command line, set up logging, run the
//! command, and turn its error into one line on stderr and exit code 1.

use std::process::ExitCode;

use clap::Parser;
use nudged::cli::{Cli, Command};
use nudged::config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The config first: it says how to log. Loading it logs nothing, and a
    // broken one is reported on stderr like any other failure.
    let settings = match Settings::load(&cli.config) {
        Ok(settings) => settings,
        Err(e) => return fail(&e.into()),
    };
    // The daemon logs what it does; one-shot commands only warnings, so
    // their output stays clean for pipes. RUST_LOG overrides both.
    // The heartbeat's scheduler narrates its own start-up at info; only its
    // warnings are news.
    let default_level = match cli.command {
        Command::Run { .. } => "info,tokio_cron_scheduler=warn",
        _ => "warn",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Text => logger.init(),
        // One JSON object per line, with the span's fields, for collectors.
        LogFormat::Json => logger.json().with_current_span(true).init(),
    }
    // reqwest and sqlx are built with rustls on the `ring` provider only.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nudged: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(nudged::cli::run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Reports `e` on one line, the outermost context first, then its causes.
fn fail(e: &anyhow::Error) -> ExitCode {
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    eprintln!("nudged: {}", chain.join(": "));
    ExitCode::FAILURE
}
