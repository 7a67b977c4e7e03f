//! `switchboard` — see `switchboard --help`.

use std::process::ExitCode;

use clap::Parser;
use switchboard_core::cli::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    run(Cli::parse()).await
}
