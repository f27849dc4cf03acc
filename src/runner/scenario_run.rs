//! One scenario file, start to finish, in either runtime (see [`super::runtime`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::join::{ClusterInfo, Joiner};
use super::loads::load_spec;
use super::runtime::RunBackends;
use super::sampler::{Samples, sample_until};
use super::{OutputFormat, RunOptions, RuntimeKind};
use crate::chaos::timeline::run_timeline;
use crate::expect::evaluate::{EvalContext, RuleSeries, evaluate};
use crate::loadgen::recorder::WindowedRecorder;
use crate::loadgen::summary::LoadSummary;
use crate::policy::explain::Explanation;
use crate::policy::objects::ObjectSet;
use crate::report::results::{RunResults, RunVerdict, SCHEMA_VERSION, rfc3339, update_latest};
use crate::report::{junit, series, summary};
use crate::runtime::compile::{Compiled, compile};
use crate::scenario::crosscheck::load_target;
use crate::scenario::diag::Diagnostics;
use crate::scenario::inputs::{Analysis, Inputs};
use crate::scenario::spec::Scenario;

/// How one scenario file ended.
#[derive(Debug)]
pub enum ScenarioOutcome {
    /// The file holds no Scenario (shared manifests in a scenario folder).
    Skipped { file: PathBuf },
    /// The file is not a valid scenario.
    Invalid { file: PathBuf, errors: Diagnostics },
    /// The run could not start.
    Infrastructure { file: PathBuf, error: String },
    /// It ran (maybe not to the end); results are on disk.
    Ran {
        file: PathBuf,
        results: Box<RunResults>,
        dir: PathBuf,
    },
}

/// Runs one scenario file and reports its outcome on the terminal.
pub async fn run_scenario_file(
    file: &Path,
    options: &RunOptions,
    cancel: CancellationToken,
) -> ScenarioOutcome {
    let inputs = match Inputs::load(&[file.to_path_buf()]) {
        Ok(inputs) => inputs,
        Err((errors, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("{errors}");
            return ScenarioOutcome::Invalid {
                file: file.to_path_buf(),
                errors,
            };
        }
    };
    for w in &inputs.warnings {
        eprintln!("warning: {w}");
    }
    let scenario = match inputs.scenarios.as_slice() {
        [] => {
            if !options.quiet {
                eprintln!(
                    "skipping {}: no kind: Scenario object (manifests only)",
                    file.display()
                );
            }
            return ScenarioOutcome::Skipped {
                file: file.to_path_buf(),
            };
        }
        [one] => one.clone(),
        [_, second, ..] => {
            let mut errors = Diagnostics::default();
            errors.push(second.source.error(
                "kind",
                "one Scenario per file: split the scenarios into separate files",
            ));
            eprintln!("{errors}");
            return ScenarioOutcome::Invalid {
                file: file.to_path_buf(),
                errors,
            };
        }
    };
    let analysis = inputs.analyze();
    match execute(file, &inputs.objects, &scenario, &analysis, options, cancel).await {
        Ok((results, dir)) => {
            match options.format {
                OutputFormat::Text if !options.quiet => {
                    print!("{}", summary::render(&results, &dir))
                }
                OutputFormat::Text => {}
                OutputFormat::Json => match serde_json::to_string_pretty(&results) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("cannot render results as JSON: {e}"),
                },
            }
            ScenarioOutcome::Ran {
                file: file.to_path_buf(),
                results: Box::new(results),
                dir,
            }
        }
        Err(error) => {
            eprintln!("{}: {error}", file.display());
            ScenarioOutcome::Infrastructure {
                file: file.to_path_buf(),
                error,
            }
        }
    }
}

/// Starts everything, runs the scenario and writes its results; the error case is a failure
/// to start (nothing was measured).
async fn execute(
    file: &Path,
    objects: &ObjectSet,
    scenario: &Scenario,
    analysis: &Analysis,
    options: &RunOptions,
    cancel: CancellationToken,
) -> Result<(RunResults, PathBuf), String> {
    let spec = &scenario.spec;
    let seed = options.seed.unwrap_or(spec.seed);
    let started_at = SystemTime::now();
    let run_id = format!("{}-{seed}", rfc3339(started_at).replace([':', '-'], ""));
    let explanation = Explanation::new(&analysis.topology, &analysis.resolution);
    let mut warnings = not_enforced_warnings(&explanation);

    let setup_start = Instant::now();
    let mut backends = RunBackends::start(options.runtime, spec, &cancel).await?;
    let compiled = match compile(analysis, objects, &backends, seed) {
        Ok(c) => c,
        Err(e) => {
            backends.shutdown().await;
            return Err(format!("cannot configure the proxy: {e}"));
        }
    };
    warnings.extend(compiled.warnings.iter().cloned());
    if !options.quiet {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }

    let recorder =
        Arc::new(WindowedRecorder::try_new(Duration::from_secs(1)).map_err(|e| e.to_string())?);
    let (rule_series, cluster_info) = rule_series(analysis, &compiled, &recorder);
    let joiner = Arc::new(Joiner::new(recorder.clone(), &run_id, cluster_info));
    let mut proxy = match backends
        .start_proxy(&compiled, file, objects, seed, joiner.clone())
        .await
    {
        Ok(proxy) => proxy,
        Err(e) => {
            backends.shutdown().await;
            return Err(e);
        }
    };
    if options.runtime == RuntimeKind::Docker && !options.quiet {
        eprintln!(
            "docker runtime: backends and proxy serving after {:.1}s",
            setup_start.elapsed().as_secs_f64()
        );
    }

    let run_length = spec.run_length();
    let run_start = Instant::now();
    let stop = cancel.child_token();
    let stats_source = proxy.stats_source(&compiled);
    let sampler = tokio::spawn(sample_until(stats_source.clone(), run_start, stop.clone()));
    let mut loads = JoinSet::new();
    let mut load_error = None;
    for (index, load) in spec.load.iter().enumerate() {
        let target = load_target(scenario, &analysis.topology, index)
            .map_err(|e| e.to_string())
            .and_then(|(gw, l)| {
                let name = crate::runtime::compile::listener_name(&analysis.topology, gw, l);
                proxy
                    .listener_addr(&name)
                    .ok_or_else(|| format!("load {}: listener {name} is not served", load.name))
            });
        match target.and_then(|addr| load_spec(load, index, addr, &run_id)) {
            Ok(load_spec) => {
                loads.spawn(crate::loadgen::engine::run_load(
                    load_spec,
                    run_start,
                    joiner.clone(),
                    stop.clone(),
                ));
            }
            Err(e) => load_error = Some(e),
        }
    }
    let timeline = {
        let stop = stop.clone();
        async { run_timeline(spec, run_start, backends.fault_target(), stop).await }
    };
    let progress = progress_loop(
        &scenario.name,
        run_start,
        run_length,
        &recorder,
        options.quiet,
    );
    let (events, (summaries, interrupted)) = tokio::join!(timeline, async {
        let mut summaries: Vec<LoadSummary> = Vec::new();
        let mut interrupted = load_error.clone();
        tokio::pin!(progress);
        loop {
            tokio::select! {
                next = loads.join_next() => match next {
                    Some(Ok(Ok(summary))) => summaries.push(summary),
                    Some(Ok(Err(e))) => { interrupted.get_or_insert(e.to_string()); stop.cancel(); }
                    Some(Err(e)) => { interrupted.get_or_insert(format!("a load task failed: {e}")); stop.cancel(); }
                    None => break,
                },
                _ = cancel.cancelled(), if interrupted.is_none() => {
                    interrupted = Some("interrupted (Ctrl-C)".to_string());
                    stop.cancel();
                }
                _ = &mut progress => {}
            }
        }
        // The loads stop on Ctrl-C by themselves (their token is a child of `cancel`), so
        // they may all end before the branch above is polled: ask the token, not the race.
        if cancel.is_cancelled() {
            interrupted.get_or_insert_with(|| "interrupted (Ctrl-C)".to_string());
        }
        // The loads are done: end the timeline and the sampler too.
        stop.cancel();
        (summaries, interrupted)
    });
    if !options.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprint!("\r\x1b[2K");
    }
    let samples = sampler.await.unwrap_or_else(|_| Samples::default());
    let elapsed = run_start.elapsed();
    // Before the joiner finishes: a proxy in a container delivers its last log entries here.
    let proxy_stats = proxy.final_stats(&stats_source).await;
    joiner.finish();
    recorder.flush();
    proxy.shutdown().await;
    let runtime = backends.name();
    let teardown_start = Instant::now();
    backends.shutdown().await;
    if options.runtime == RuntimeKind::Docker && !options.quiet {
        eprintln!(
            "docker runtime: containers and network removed in {:.1}s",
            teardown_start.elapsed().as_secs_f64()
        );
    }

    let complete = interrupted.is_none();
    let ctx = EvalContext {
        recorder: &recorder,
        stats: &samples.counters,
        loads: &spec.load.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
        rules: &rule_series,
        run_length,
    };
    let expectations: Vec<_> = spec.expect.iter().map(|e| evaluate(e, &ctx)).collect();
    let verdict = if !complete {
        RunVerdict::Incomplete
    } else if expectations.iter().all(|v| v.passed) {
        RunVerdict::Passed
    } else {
        RunVerdict::Failed
    };
    let chart_series = series::build(
        &scenario.name,
        spec,
        &recorder,
        &rule_series,
        &events,
        samples,
        run_length,
        &compiled,
    );
    let results = RunResults {
        schema_version: SCHEMA_VERSION,
        scenario: scenario.name.clone(),
        description: spec.description.clone(),
        file: file.display().to_string(),
        run_id: run_id.clone(),
        started_at: rfc3339(started_at),
        runtime: runtime.to_string(),
        seed,
        duration_s: run_length.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        complete,
        incomplete_reason: interrupted,
        verdict,
        expectations,
        routes: series::route_stats(&recorder, &rule_series),
        loads: summaries
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .collect(),
        faults: events,
        policies: serde_json::to_value(&explanation).unwrap_or_default(),
        proxy_stats,
        warnings,
        series: chart_series,
    };
    let scenario_dir = options.out.join(&scenario.name);
    let dir = scenario_dir.join(&run_id);
    results
        .write(&dir)
        .map_err(|e| format!("cannot write results to {}: {e}", dir.display()))?;
    // junit.xml, the charts and the HTML page are views of results.json, already on disk: a
    // failure here is a warning, never a lost run.
    if let Err(e) = crate::report::render::render_run(&results, &dir) {
        eprintln!("warning: {e}");
    }
    let _ = update_latest(&scenario_dir, &run_id);
    if let Some(path) = &options.junit {
        junit::write(path, std::slice::from_ref(&results))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok((results, dir))
}

/// Every rule the proxy serves, as expectations and the joiner see it.
fn rule_series(
    analysis: &Analysis,
    compiled: &Compiled,
    recorder: &WindowedRecorder,
) -> (Vec<RuleSeries>, HashMap<String, ClusterInfo>) {
    let topology = &analysis.topology;
    let served: Vec<String> = compiled
        .config
        .clusters
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let mut rules = Vec::new();
    let mut clusters = HashMap::new();
    for outcome in &analysis.resolution.rules {
        let a = outcome.attachment;
        let route = &topology.routes[a.route];
        let cluster = route.cluster_name(a.rule);
        if !served.contains(&cluster) || rules.iter().any(|r: &RuleSeries| r.cluster == cluster) {
            continue;
        }
        let rule = &route.rules[a.rule];
        let key = format!("{}/{}/{}", route.meta.namespace, route.meta.name, a.rule);
        let backends: Vec<String> = rule
            .backend_refs
            .iter()
            .map(|b| {
                format!(
                    "{}/{}",
                    b.namespace.as_deref().unwrap_or(&route.meta.namespace),
                    b.name
                )
            })
            .collect();
        let single_backend = (backends.len() == 1).then(|| backends[0].clone());
        clusters.insert(
            cluster.clone(),
            ClusterInfo {
                route: key.clone(),
                backend: single_backend,
            },
        );
        rules.push(RuleSeries {
            namespace: route.meta.namespace.clone(),
            name: route.meta.name.clone(),
            rule: a.rule,
            rule_name: rule.name.clone(),
            route_id: recorder.routes().intern(&key),
            cluster,
            backends,
        });
    }
    (rules, clusters)
}

fn not_enforced_warnings(explanation: &Explanation) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &explanation.routes {
        if r.not_enforced.is_empty() {
            continue;
        }
        let message = format!(
            "{} {}/{} rule {}: not enforced by the embedded proxy: {}",
            r.kind,
            r.namespace,
            r.name,
            r.rule,
            r.not_enforced.join(", ")
        );
        if !out.contains(&message) {
            out.push(message);
        }
    }
    out
}

/// Prints a one-line progress display on a terminal every quarter second; never returns.
async fn progress_loop(
    name: &str,
    run_start: Instant,
    run_length: Duration,
    recorder: &WindowedRecorder,
    quiet: bool,
) {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        std::future::pending::<()>().await;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let a = recorder.aggregate(|_| true, Duration::ZERO, Duration::MAX);
        let errors =
            a.requests - (a.status_class_count(2) + a.status_class_count(3)).min(a.requests);
        eprint!(
            "\r\x1b[2K{name}  {:>5.1}s / {:.1}s  requests {}  errors {}",
            run_start
                .elapsed()
                .as_secs_f64()
                .min(run_length.as_secs_f64()),
            run_length.as_secs_f64(),
            a.requests,
            errors
        );
    }
}
