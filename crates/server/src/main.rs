//! The `plangraph` binary: parse the command line, set up logs, run. Everything else lives in
//! the library so tests can drive it.

use std::process::ExitCode;

use clap::Parser;
use plangraph_server::cli::Cli;
use plangraph_server::telemetry;

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
