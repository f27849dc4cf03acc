//! Command-line interface: clap commands and flags, no logic.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::explain::Explanation;
use crate::scenario::diag::Diagnostic;
use crate::scenario::inputs::Inputs;
use crate::scenario::load::LoadOptions;

/// Exit code: every expectation held / the command succeeded.
const EXIT_OK: u8 = 0;
/// Exit code: invalid input or usage.
const EXIT_INVALID: u8 = 2;

/// Chaos and resilience testing for Envoy Gateway BackendTrafficPolicies.
#[derive(Debug, Parser)]
#[command(name = "chaosgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check scenario and manifest files without running anything (each file with its includes).
    Validate {
        /// Files or folders (a folder checks every *.yaml in it).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print each policy's status and the effective policy of every route rule.
    Explain {
        /// A file, or a folder whose YAML files form one set of manifests.
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Skip the CRD's admission rules, as Envoy Gateway's file provider (no API server) does:
        /// statuses then show what the translator itself rejects.
        #[arg(long)]
        skip_crd_validation: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { paths } => validate(&paths),
        Command::Explain {
            path,
            output,
            skip_crd_validation,
        } => explain(
            path,
            output,
            LoadOptions {
                crd_validation: !skip_crd_validation,
            },
        ),
    };
    ExitCode::from(code)
}

fn validate(paths: &[PathBuf]) -> u8 {
    let mut files = Vec::new();
    for path in paths {
        match crate::scenario::load::files_in(path) {
            Ok(found) => files.extend(found),
            Err(e) => {
                eprintln!("{e}");
                return EXIT_INVALID;
            }
        }
    }
    let mut failed = 0;
    for file in &files {
        match Inputs::load(std::slice::from_ref(file)) {
            Ok(inputs) => {
                print_warnings(&inputs.warnings);
                let objects = &inputs.objects;
                println!(
                    "ok    {} ({} gateways, {} routes, {} policies{})",
                    file.display(),
                    objects.gateways.len(),
                    objects.http_routes.len()
                        + objects.grpc_routes.len()
                        + objects.tcp_routes.len()
                        + objects.udp_routes.len()
                        + objects.tls_routes.len(),
                    objects.policies.len(),
                    if objects.scenarios.is_empty() {
                        ""
                    } else {
                        ", scenario"
                    },
                );
            }
            Err((errors, warnings)) => {
                print_warnings(&warnings);
                eprintln!("{errors}");
                println!("error {} ({} problems)", file.display(), errors.len());
                failed += 1;
            }
        }
    }
    println!("{} files checked, {failed} with errors", files.len());
    if failed > 0 { EXIT_INVALID } else { EXIT_OK }
}

fn explain(path: PathBuf, output: Output, options: LoadOptions) -> u8 {
    let inputs = match Inputs::load_with(&[path], options) {
        Ok(inputs) => inputs,
        Err((errors, warnings)) => {
            print_warnings(&warnings);
            eprintln!("{errors}");
            return EXIT_INVALID;
        }
    };
    print_warnings(&inputs.warnings);
    let analysis = inputs.analyze();
    let explanation = Explanation::new(&analysis.topology, &analysis.resolution);
    match output {
        Output::Text => print!("{}", explanation.to_text()),
        Output::Json => match serde_json::to_string_pretty(&explanation) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("cannot render JSON: {e}");
                return EXIT_INVALID;
            }
        },
    }
    EXIT_OK
}

fn print_warnings(warnings: &[Diagnostic]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
