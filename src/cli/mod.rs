//! Command-line interface: clap commands and flags, no logic.

mod proxy;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::loadgen::engine::LoadMode;
use crate::loadgen::schedule::{Rate, Schedule};
use crate::loadgen::standalone::{resolve_url, run_standalone};
use crate::policy::explain::Explanation;
use crate::runner::{OutputFormat, RunOptions, RuntimeKind, exit, run_paths};
use crate::scenario::diag::Diagnostic;
use crate::scenario::duration::parse_duration;
use crate::scenario::inputs::Inputs;
use crate::scenario::load::LoadOptions;

/// Chaos and resilience testing for Envoy Gateway BackendTrafficPolicies.
#[derive(Debug, Parser)]
#[command(name = "chaosgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files: backends, proxy, load, faults, expectations, results.
    Run {
        /// Scenario files, or folders (every *.yaml directly in them, sorted).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where the backends and the proxy run.
        #[arg(long, value_enum, default_value_t = Runtime::Embedded)]
        runtime: Runtime,
        /// Results folder: <out>/<scenario>/<run id>/results.json.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Overrides the scenarios' seeds.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write a JUnit XML file for all scenarios here.
        #[arg(long)]
        junit: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        format: Output,
        /// No progress and no summary (the exit code and results files still tell).
        #[arg(long)]
        quiet: bool,
    },
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
    /// Run the embedded proxy alone for the Gateways in the files.
    Proxy {
        /// Manifest files or folders (Gateways, routes, policies, Backends or Services with EndpointSlices).
        #[arg(short = 'f', long = "file", required = true)]
        files: Vec<PathBuf>,
        /// `ADDR` when there is one listener, else `[GATEWAY/]LISTENER=ADDR` (repeatable).
        #[arg(long, required = true)]
        listen: Vec<String>,
        /// Admin listener (loopback only): /stats, /stats/prometheus, /clusters, /ready.
        #[arg(long, default_value = "127.0.0.1:19000")]
        admin: String,
        /// Write one JSON line per request here.
        #[arg(long)]
        access_log: Option<PathBuf>,
        /// Worker threads of the async runtime (default: one per core).
        #[arg(long)]
        threads: Option<NonZeroUsize>,
    },
    /// Re-render charts, report.html and junit.xml next to a results.json.
    Report {
        /// A results.json written by `chaosgate run`.
        results: PathBuf,
    },
    /// Compare two runs of one scenario; exit 1 when NEW regressed past the bound.
    ///
    /// A latency percentile (p50..p99.9) regresses when it grows by more than the bound
    /// (relative); a success rate when it drops by more than the bound in percentage points; an
    /// expectation when it held in BASE and fails in NEW. Exit codes: 0 no regression,
    /// 1 regression, 2 bad input (unreadable file, different scenarios, bad bound), 3 the HTML
    /// file could not be written.
    Compare {
        /// The reference run's results.json.
        base: PathBuf,
        /// The run to judge.
        new: PathBuf,
        /// Tolerated regression, e.g. `10%`.
        #[arg(long, default_value = "10%")]
        max_regression: String,
        /// Also write the comparison as HTML here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Send load to a URL and print latency percentiles (coordinated omission corrected).
    Load {
        /// `http://host:port/path`.
        url: String,
        /// Open loop: requests per second.
        #[arg(long, conflicts_with = "concurrency")]
        rate: Option<f64>,
        /// Closed loop: workers sending back to back.
        #[arg(long)]
        concurrency: Option<usize>,
        /// How long, as a Gateway API duration (`10s`, `1m`).
        #[arg(long)]
        duration: String,
        /// Connections (default: enough for the rate, or one per worker).
        #[arg(long)]
        connections: Option<NonZeroUsize>,
        /// Per-request timeout.
        #[arg(long, default_value = "30s")]
        timeout: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        format: Output,
        /// Worker threads of the async runtime (default: one per core).
        #[arg(long)]
        threads: Option<NonZeroUsize>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Runtime {
    Embedded,
    Docker,
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
        Command::Run {
            paths,
            runtime,
            out,
            seed,
            junit,
            format,
            quiet,
        } => {
            let options = RunOptions {
                runtime: match runtime {
                    Runtime::Embedded => RuntimeKind::Embedded,
                    Runtime::Docker => RuntimeKind::Docker,
                },
                out,
                seed,
                junit,
                format: match format {
                    Output::Text => OutputFormat::Text,
                    Output::Json => OutputFormat::Json,
                },
                quiet,
            };
            with_runtime(None, |cancel| async move {
                run_paths(&paths, &options, cancel).await.0
            })
        }
        Command::Report { results } => report(&results),
        Command::Compare {
            base,
            new,
            max_regression,
            html,
        } => compare(&base, &new, &max_regression, html.as_deref()),
        Command::Proxy {
            files,
            listen,
            admin,
            access_log,
            threads,
        } => with_runtime(threads, |cancel| async move {
            proxy::serve(&files, &listen, &admin, access_log.as_deref(), cancel).await
        }),
        Command::Load {
            url,
            rate,
            concurrency,
            duration,
            connections,
            timeout,
            format,
            threads,
        } => with_runtime(threads, |cancel| async move {
            load(
                &url,
                rate,
                concurrency,
                &duration,
                connections,
                &timeout,
                format,
                cancel,
            )
            .await
        }),
    };
    ExitCode::from(code)
}

/// Runs `f` on a runtime with `threads` workers (default: one per core); the first Ctrl-C
/// cancels it.
///
/// One worker means the current-thread scheduler, an event loop like nginx's single worker:
/// the multi-threaded one with a single worker still pays for cross-thread hand-offs (its
/// worker is not the thread that runs `f`) and atomic task-state changes on every wake-up.
fn with_runtime<F, Fut>(threads: Option<NonZeroUsize>, f: F) -> u8
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let mut builder = match threads.map(NonZeroUsize::get) {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return exit::INFRASTRUCTURE;
        }
    };
    let cancel = CancellationToken::new();
    runtime.block_on(async {
        let on_signal = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: stopping and writing what was measured…");
                on_signal.cancel();
            }
        });
        f(cancel).await
    })
}

fn validate(paths: &[PathBuf]) -> u8 {
    let mut files = Vec::new();
    for path in paths {
        match crate::scenario::load::files_in(path) {
            Ok(found) => files.extend(found),
            Err(e) => {
                eprintln!("{e}");
                return exit::INVALID;
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
                let count = errors.len();
                println!(
                    "error {} ({count} problem{})",
                    file.display(),
                    if count == 1 { "" } else { "s" }
                );
                failed += 1;
            }
        }
    }
    println!("{} files checked, {failed} with errors", files.len());
    if failed > 0 {
        exit::INVALID
    } else {
        exit::PASSED
    }
}

fn explain(path: PathBuf, output: Output, options: LoadOptions) -> u8 {
    let inputs = match Inputs::load_with(&[path], options) {
        Ok(inputs) => inputs,
        Err((errors, warnings)) => {
            print_warnings(&warnings);
            eprintln!("{errors}");
            return exit::INVALID;
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
                return exit::INFRASTRUCTURE;
            }
        },
    }
    exit::PASSED
}

fn report(results: &std::path::Path) -> u8 {
    use crate::report::render::{RenderError, render_results_file};
    match render_results_file(results) {
        Ok(paths) => {
            for path in paths {
                println!("{}", path.display());
            }
            exit::PASSED
        }
        Err(RenderError::Input(e)) => {
            eprintln!("error: {e}");
            exit::INVALID
        }
        Err(RenderError::Output(e)) => {
            eprintln!("error: {e}");
            exit::INFRASTRUCTURE
        }
    }
}

fn compare(
    base: &std::path::Path,
    new: &std::path::Path,
    max_regression: &str,
    html: Option<&std::path::Path>,
) -> u8 {
    use crate::report::compare::{Bound, Comparison, to_html, to_text};
    let comparison =
        match Bound::parse(max_regression).and_then(|b| Comparison::from_files(base, new, b)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID;
            }
        };
    print!("{}", to_text(&comparison));
    if let Some(path) = html {
        if let Err(e) = std::fs::write(path, to_html(&comparison)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::INFRASTRUCTURE;
        }
        println!("html: {}", path.display());
    }
    if comparison.regressions().is_empty() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

#[allow(clippy::too_many_arguments)]
async fn load(
    url: &str,
    rate: Option<f64>,
    concurrency: Option<usize>,
    duration: &str,
    connections: Option<NonZeroUsize>,
    timeout: &str,
    format: Output,
    cancel: CancellationToken,
) -> u8 {
    let parsed = (|| -> Result<(LoadMode, Duration, Duration), String> {
        let duration = parse_duration(duration)?;
        let timeout = parse_duration(timeout)?;
        let mode = match (rate, concurrency) {
            (Some(r), None) => LoadMode::Open(
                Schedule::constant(Rate::try_new(r).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?,
            ),
            (None, Some(c)) => LoadMode::Closed {
                concurrency: NonZeroUsize::new(c).ok_or("--concurrency must be above 0")?,
            },
            _ => {
                return Err(
                    "give exactly one of --rate (open loop) or --concurrency (closed loop)".into(),
                );
            }
        };
        Ok((mode, duration, timeout))
    })();
    let (mode, duration, timeout) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let target = match resolve_url(url).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    match run_standalone(target, mode, duration, connections, timeout, cancel).await {
        Ok(summary) => {
            match format {
                Output::Text => println!("{summary}"),
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).unwrap_or_default()
                ),
            }
            exit::PASSED
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INFRASTRUCTURE
        }
    }
}

fn print_warnings(warnings: &[Diagnostic]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
