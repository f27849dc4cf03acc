//! The page's sections that come straight from the numbers: banner, the fault impact summary,
//! expectations, per-route tables and charts.

use std::fmt::Write as _;

use super::escape::Esc;
use super::format::{at, ms, pct, ratio};
use super::phases::{MomentKind, PhaseStats, moments, route_phases};
use super::{EmbeddedChart, chart_anchor, verdict_word};
use crate::report::results::RunResults;

/// Known charts: file stem, title, caption.
const CHARTS: &[(&str, &str, &str)] = &[
    (
        "latency_over_time",
        "Latency over time",
        "p50 and p99 latency per route, one point per second; shaded bands are fault windows. \
         A breaker that isolates a failing backend keeps the other routes' lines flat.",
    ),
    (
        "outcomes_over_time",
        "Outcomes over time",
        "Responses per second per route by outcome: success, circuit-breaker rejections (UO), \
         rate limits (RL), upstream timeouts (UT), no healthy upstream (UH) and other errors.",
    ),
    (
        "traffic_share",
        "Traffic per replica",
        "Requests each backend replica served per second: failover shows as one replica's line \
         dropping while its siblings rise.",
    ),
    (
        "latency_distribution",
        "Latency distribution",
        "Whole-run latency by percentile per route: the tail shows what the fault cost the \
         slowest requests.",
    ),
    (
        "proxy_state",
        "Proxy state",
        "Per cluster: active and pending requests against the circuit-breaker limits (dashed), \
         hosts ejected by outlier detection and hosts not healthy (failing active health checks \
         or ejected).",
    ),
];

/// Verdict, scenario, description, seed and timing.
pub fn banner(out: &mut String, r: &RunResults) {
    let class = verdict_word(r).to_ascii_lowercase();
    let held = r.expectations.iter().filter(|e| e.passed).count();
    let _ = write!(
        out,
        "<header class=\"banner {class}\">\n<div class=\"verdict\">{}</div>\n<div>\n<h1>{}</h1>\n",
        verdict_word(r),
        Esc(&r.scenario)
    );
    if let Some(d) = &r.description {
        let _ = writeln!(out, "<p>{}</p>", Esc(d));
    }
    let _ = writeln!(
        out,
        "<p><strong>{held} of {} expectations held</strong></p>",
        r.expectations.len()
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\"><span>seed <code>{}</code></span><span>duration {:.1}s planned, \
         {:.1}s run</span><span>started {}</span><span>runtime {}</span><span>run <code>{}</code>\
         </span></p>",
        r.seed,
        r.duration_s,
        r.elapsed_s,
        Esc(&r.started_at),
        Esc(&r.runtime),
        Esc(&r.run_id)
    );
    out.push_str("</div>\n</header>\n");
    out.push_str(
        "<nav class=\"toc\"><a href=\"#glance\">At a glance</a><a href=\"#expectations\">\
         Expectations</a><a href=\"#story\">Scenario and policies</a><a href=\"#routes\">Routes\
         </a><a href=\"#charts\">Charts</a></nav>\n",
    );
    if let Some(reason) = r.incomplete_reason.as_deref().filter(|_| !r.complete) {
        let _ = writeln!(
            out,
            "<div class=\"callout alert\"><strong>Incomplete run:</strong> {}. Expectations were \
             evaluated on what was measured.</div>",
            Esc(reason)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(
            out,
            "<div class=\"callout\"><strong>Warning:</strong> {}</div>",
            Esc(w)
        );
    }
}

/// The ten-second view: what each route saw before, during and after the faults, and the
/// moments the faults hit and the proxy's protections acted.
pub fn at_a_glance(out: &mut String, r: &RunResults) {
    out.push_str("<section id=\"glance\">\n<h2>At a glance</h2>\n");
    let phases = route_phases(&r.series);
    if phases.is_empty() {
        out.push_str("<p>This run injected no faults.</p>\n");
    } else {
        out.push_str(
            "<h3>What the faults did to each route</h3>\n<table>\n<tr><th rowspan=\"2\">Route</th>\
             <th colspan=\"2\" class=\"grp\">Before the faults</th><th colspan=\"4\" class=\"grp\">\
             During the faults</th><th colspan=\"2\" class=\"grp\">After the faults</th></tr>\n\
             <tr><th class=\"num grp\">success</th><th class=\"num\">worst p99</th>\
             <th class=\"num grp\">success</th><th class=\"num\">shed by breaker (UO)</th>\
             <th class=\"num\">other failures</th><th class=\"num\">worst p99 (Δ)</th>\
             <th class=\"num grp\">success</th>\
             <th class=\"num\">worst p99</th></tr>\n",
        );
        for p in &phases {
            let hurt = p.during.requests > p.during.success;
            let _ = writeln!(
                out,
                "<tr{}><td><code>{}</code></td><td class=\"num grp\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num grp\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}{}</td><td class=\"num grp\">{}</td><td class=\"num\">{}</td></tr>",
                if hurt { " class=\"fail\"" } else { "" },
                Esc(&p.route),
                success(&p.before),
                ms(p.before.worst_p99_ms),
                success(&p.during),
                p.during.overflow,
                p.during.other_failures,
                ms(p.during.worst_p99_ms),
                delta(p.before.worst_p99_ms, p.during.worst_p99_ms),
                success(&p.after),
                ms(p.after.worst_p99_ms),
            );
        }
        out.push_str(
            "</table>\n<p class=\"meta\">Windows of one second; a window belongs to the faults \
             when it overlaps the span from the first fault's start to the last fault's end. \
             “Worst p99” is the highest per-second p99 of the phase.</p>\n",
        );
    }
    let moments = moments(r);
    if !moments.is_empty() {
        out.push_str("<h3>What happened when</h3>\n<ul class=\"moments\">\n");
        for m in &moments {
            let class = match m.kind {
                MomentKind::Fault => "fault",
                MomentKind::Protection => "protection",
                MomentKind::Recovery => "recovery",
            };
            let _ = writeln!(
                out,
                "<li class=\"{class}\"><span class=\"t\">{}</span>{}</li>",
                at(m.t_s),
                Esc(&m.text)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn success(s: &PhaseStats) -> String {
    pct(ratio(s.success, s.requests))
}

fn delta(before: Option<f64>, during: Option<f64>) -> String {
    match (before, during) {
        (Some(b), Some(d)) if d > b => {
            format!(" <span class=\"delta-up\">(+{})</span>", ms(Some(d - b)))
        }
        (Some(b), Some(d)) => format!(" <span class=\"delta-down\">(−{})</span>", ms(Some(b - d))),
        _ => String::new(),
    }
}

/// The expectations with their observed values, each linked to the chart that shows its metric.
pub fn expectations(out: &mut String, r: &RunResults, charts: &[EmbeddedChart]) {
    out.push_str(
        "<section id=\"expectations\">\n<h2>Expectations</h2>\n<table>\n<tr><th class=\"mark\">\
         </th><th>Expectation</th><th>Assertion</th><th class=\"num\">Observed</th>\
         <th class=\"num\">Requests in scope</th><th>Chart</th></tr>\n",
    );
    if r.expectations.is_empty() {
        out.push_str("<tr><td colspan=\"6\">This scenario states no expectations.</td></tr>\n");
    }
    for e in &r.expectations {
        let (mark, class) = if e.passed {
            ("<span class=\"ok\" title=\"held\">✓</span>", "")
        } else {
            (
                "<span class=\"bad\" title=\"failed\">✗</span>",
                " class=\"fail\"",
            )
        };
        let chart = chart_for(&e.assertion)
            .filter(|stem| charts.iter().any(|c| c.file_name == format!("{stem}.png")))
            .map_or_else(String::new, |stem| {
                let title = CHARTS
                    .iter()
                    .find(|(s, _, _)| *s == stem)
                    .map_or(stem, |(_, t, _)| t);
                format!("<a href=\"#{}\">{}</a>", chart_anchor(stem), Esc(title))
            });
        let _ = writeln!(
            out,
            "<tr{class}><td class=\"mark\">{mark}</td><td>{}</td><td><code>{}</code></td>\
             <td class=\"num{}\">{}</td><td class=\"num\">{}</td><td>{chart}</td></tr>",
            Esc(&e.name),
            Esc(&e.assertion),
            if e.passed { "" } else { " bad" },
            Esc(&e.observed_text),
            e.requests
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// The chart that shows an assertion's metric (the first word of the assertion).
fn chart_for(assertion: &str) -> Option<&'static str> {
    let metric = assertion
        .split(|c: char| c.is_whitespace() || "<>=!".contains(c))
        .next()
        .unwrap_or("");
    Some(if metric.starts_with("latency") {
        "latency_over_time"
    } else if metric == "share" {
        "traffic_share"
    } else if metric.ends_with("_rate") || metric.ends_with("requests") {
        "outcomes_over_time"
    } else {
        "proxy_state"
    })
}

/// Requests, success and latency per route rule and backend.
pub fn route_tables(out: &mut String, r: &RunResults) {
    out.push_str(
        "<section id=\"routes\">\n<h2>Routes and backends</h2>\n<table>\n<tr><th>Route rule</th>\
         <th>Backend</th><th class=\"num\">Requests</th><th class=\"num\">Success</th>\
         <th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th>\
         <th class=\"num\">p99.9</th><th class=\"num\">max</th><th>Flags</th><th>Statuses</th></tr>\n",
    );
    for s in &r.routes {
        let flags: String = s
            .flags
            .iter()
            .map(|(flag, n)| {
                let class = if flag == "UO" { "pill uo" } else { "pill" };
                format!("<span class=\"{class}\">{}: {n}</span>", Esc(flag))
            })
            .collect();
        let mut statuses: String = s
            .statuses
            .iter()
            .map(|(code, n)| format!("<span class=\"pill\">{}: {n}</span>", Esc(code)))
            .collect();
        if s.transport_errors > 0 {
            let _ = write!(
                statuses,
                "<span class=\"pill\">transport errors: {}</span>",
                s.transport_errors
            );
        }
        let lat = &s.latency_ms;
        let _ = writeln!(
            out,
            "<tr{}><td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{flags}</td><td>{statuses}</td></tr>",
            if s.success < s.requests {
                " class=\"fail\""
            } else {
                ""
            },
            Esc(&s.route),
            Esc(s.backend.as_deref().unwrap_or("—")),
            s.requests,
            pct(s.success_rate),
            ms(lat.p50),
            ms(lat.p90),
            ms(lat.p99),
            ms(lat.p999),
            ms(lat.max),
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// Every chart, embedded, with its caption.
pub fn charts(out: &mut String, charts: &[EmbeddedChart]) {
    out.push_str("<section id=\"charts\" class=\"charts\">\n<h2>Charts</h2>\n");
    if charts.is_empty() {
        out.push_str("<p>No charts were rendered for this run.</p>\n");
    }
    for chart in charts {
        let stem = chart.file_name.trim_end_matches(".png");
        let (title, caption) = CHARTS
            .iter()
            .find(|(s, _, _)| *s == stem)
            .map_or((stem, ""), |(_, t, c)| (t, c));
        let _ = writeln!(
            out,
            "<figure id=\"{}\">\n<h3>{}</h3>\n<img src=\"{}\" alt=\"{}\">\n\
             <figcaption>{}</figcaption>\n</figure>",
            chart.anchor(),
            Esc(title),
            chart.data_uri(),
            Esc(title),
            Esc(caption)
        );
    }
    out.push_str("</section>\n");
}
