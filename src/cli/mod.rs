//! Command-line interface: clap commands and flags, no logic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Chaos and resilience testing for Envoy Gateway BackendTrafficPolicies.
#[derive(Debug, Parser)]
#[command(name = "chaosgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
