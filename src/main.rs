use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tributary::cli::{exit, Cli, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(tributary::cli::args(std::env::args_os().collect())) {
        Ok(cli) => cli,
        // `--help` and `--version` print and succeed; every other parse failure is a usage
        // error, with a code of its own (EX_USAGE) that no `--detailed-exitcode` pipeline can
        // take for "changes pending".
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
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
                return ExitCode::from(exit::USAGE);
            }
        },
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_on_stderr())
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

/// Colour only for a person at a terminal: never into a pipe, a file or a CI log, and never
/// when `NO_COLOR` is set to anything (<https://no-color.org>).
fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
