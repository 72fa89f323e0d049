use clap::{error::ErrorKind, Parser};

fn main() -> std::process::ExitCode {
    let cli = match lien::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => bad_command_line(error),
    };
    lien::cli::init_tracing(&cli.config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("could not start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(lien::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--help` and `--version` print as usual. A configuration error is reported before logging is
/// set up, so with LIEN_LOG_FORMAT=json it is written as one JSON line like every other log line.
fn bad_command_line(error: clap::Error) -> ! {
    let asked_for_json = std::env::var("LIEN_LOG_FORMAT").is_ok_and(|f| f == "json");
    if asked_for_json
        && !matches!(
            error.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        )
    {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "target": "lien",
            "message": error.kind().to_string(),
            "error": error.render().to_string().trim(),
        });
        eprintln!("{line}");
        std::process::exit(2);
    }
    error.exit()
}
