//! The `plangraph` binary: parse the command line, set up logs, run. Everything else lives in
//! the library so tests can drive it.

use std::process::ExitCode;

use clap::Parser;
use plangraph_server::cli::Cli;
use plangraph_server::telemetry;

/// mimalloc rather than the system allocator: under concurrent large answers glibc's per-thread
/// arenas grew the process to ~580 MiB and kept it (bench/compare.py, dashboard at 64
/// connections); mimalloc returns freed pages and is faster at async-graphql's small values.
/// It is built with lazily committed arenas (`.cargo/config.toml`): eagerly committed ones were
/// backed by transparent huge pages, and one dashboard request raised the resident set by
/// 20-25 MiB where its heap peaked at 2.3 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log_format);
    let runtime = match actix_web::rt::System::new()
        .block_on(async { plangraph_server::cli::run(cli).await })
    {
        Ok(()) => return ExitCode::SUCCESS,
        Err(err) => err,
    };
    eprintln!("error[{}]: {}", runtime.code(), runtime);
    ExitCode::FAILURE
}
