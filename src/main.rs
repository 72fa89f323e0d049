use clap::{error::ErrorKind, Parser};

fn main() -> std::process::ExitCode {
    tune_allocator();
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

/// glibc's malloc gives threads that contend their own arena, up to eight per core, and lets its
/// mmap threshold grow with every large block freed, so that rendered pages and request buffers
/// end up scattered over many heaps it rarely gives back: under a soak with writes lien's
/// resident memory kept rising by about a megabyte a minute (bench/README.md, "Memory"). Two
/// arenas and a fixed threshold (large blocks mapped, and unmapped when freed) hold it flat.
/// Operators' own MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ settings win. Called first, before
/// any thread exists.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(
                param: std::os::raw::c_int,
                value: std::os::raw::c_int,
            ) -> std::os::raw::c_int;
        }
        // From glibc's malloc.h.
        const M_MMAP_THRESHOLD: std::os::raw::c_int = -3;
        const M_ARENA_MAX: std::os::raw::c_int = -8;
        // SAFETY: mallopt only sets allocator parameters; no other thread runs yet.
        unsafe {
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                mallopt(M_ARENA_MAX, 2);
            }
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                mallopt(M_MMAP_THRESHOLD, 128 * 1024);
            }
        }
    }
}
