use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tributary::cli::{Cli, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match &cli.command {
        tributary::cli::Command::Operator(args) => args.log_level.as_str(),
        _ => "warn",
    };
    let filter = match EnvFilter::try_from_env("TRIBUTARY_LOG") {
        Ok(filter) => filter,
        Err(_) => match EnvFilter::try_new(default_level) {
            Ok(filter) => filter,
            Err(e) => {
                eprintln!("error: --log-level '{default_level}': {e}");
                return ExitCode::from(2);
            }
        },
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        // Each line carries the fields of its span (`span`: for a reconcile, the object's
        // kind, namespace and name) and of every enclosing span (`spans`).
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    match tributary::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
