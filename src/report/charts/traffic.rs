//! Traffic share: per backend and time window, the percentage of its requests each replica served.

use std::ops::Range;
use std::path::Path;

use plotters::prelude::*;

use super::axis::{draw_mesh, time_range, window_width};
use super::canvas::{
    Area, DrawError, LegendEntry, Mark, draw_legend, draw_message, draw_panel_heading, layout,
    render, title,
};
use super::faults::draw_faults;
use super::style::{HEIGHT, TITLE_HEIGHT, WIDTH, fmt_value, series_colour};
use super::{ChartError, ChartFile, ChartInput, ReplicaSeries};

/// Panel height when the chart has more than one backend.
const PANEL_HEIGHT: u32 = 300;

/// Draws `traffic_share.png`: one panel per backend with stacked 0–100 % bars of the requests
/// each replica served, so failover from one replica to another shows as a change of colour.
pub fn traffic_share(input: &ChartInput, dir: &Path) -> Result<ChartFile, ChartError> {
    let n = backends(&input.replicas).len().max(1) as u32;
    let height = HEIGHT.max(TITLE_HEIGHT + n * PANEL_HEIGHT);
    render(dir, "traffic_share.png", (WIDTH, height), |root| {
        draw(root, input)
    })
}

/// Backend part of a `backend/replica` name.
fn backend_of(replica: &str) -> &str {
    replica.split_once('/').map_or(replica, |(b, _)| b)
}

/// Backends in order of first appearance, each with the indices of its replicas.
fn backends(replicas: &[ReplicaSeries]) -> Vec<(&str, Vec<usize>)> {
    let mut out: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, r) in replicas.iter().enumerate() {
        let b = backend_of(&r.name);
        match out.iter_mut().find(|(name, _)| *name == b) {
            Some((_, members)) => members.push(i),
            None => out.push((b, vec![i])),
        }
    }
    out
}

fn draw(root: &Area<'_>, input: &ChartInput) -> Result<(), DrawError> {
    let (body, legend) = layout(
        root,
        &title(&input.title_prefix, "share of requests served per replica"),
    )?;
    let mut entries: Vec<LegendEntry> = input
        .replicas
        .iter()
        .enumerate()
        .map(|(i, r)| LegendEntry::new(r.name.clone(), series_colour(i), Mark::Block))
        .collect();
    if !input.faults.is_empty() {
        entries.push(LegendEntry::fault());
    }
    draw_legend(&legend, "replica", &entries)?;
    let groups = backends(&input.replicas);
    if groups.is_empty() {
        return draw_message(&body, "no replicas");
    }
    let times: Vec<f64> = input
        .replicas
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.0))
        .filter(|t| t.is_finite())
        .collect();
    let dt = window_width(times.iter().copied());
    // One time axis for all panels so that the same second lines up vertically.
    let x = time_range(
        input.duration_s,
        times.iter().map(|t| t + dt),
        &input.faults,
    );
    let panels = body.split_evenly((groups.len(), 1));
    for ((backend, members), area) in groups.iter().zip(panels.iter()) {
        backend_panel(area, input, backend, members, x.clone(), dt)?;
    }
    Ok(())
}

fn backend_panel(
    area: &Area<'_>,
    input: &ChartInput,
    backend: &str,
    members: &[usize],
    x: Range<f64>,
    dt: f64,
) -> Result<(), DrawError> {
    draw_panel_heading(area, backend)?;
    let mut times: Vec<f64> = members
        .iter()
        .flat_map(|&j| input.replicas[j].points.iter().map(|p| p.0))
        .filter(|t| t.is_finite())
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    // served[i][k]: requests the k-th member served in window i (duplicate samples add up).
    let mut served = vec![vec![0u64; members.len()]; times.len()];
    for (k, &j) in members.iter().enumerate() {
        for &(t, n) in &input.replicas[j].points {
            if let Ok(i) = times.binary_search_by(|x| x.total_cmp(&t)) {
                served[i][k] += n;
            }
        }
    }
    if served.iter().all(|row| row.iter().all(|n| *n == 0)) {
        return draw_message(area, &format!("no requests served by {backend}"));
    }
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .margin_top(26)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x, 0.0..100.0)?;
    draw_mesh(
        &mut chart,
        "time (s)",
        "share served (%)",
        &|v| fmt_value(*v),
        &|v| format!("{}%", fmt_value(*v)),
        12,
        6,
    )?;
    for (k, &j) in members.iter().enumerate() {
        let colour = series_colour(j);
        let bars: Vec<Rectangle<(f64, f64)>> = times
            .iter()
            .zip(served.iter())
            .filter_map(|(&t, row)| {
                let total: u64 = row.iter().sum();
                if total == 0 || row[k] == 0 {
                    return None;
                }
                let below: u64 = row[..k].iter().sum();
                let pct = |n: u64| n as f64 * 100.0 / total as f64;
                Some(Rectangle::new(
                    [(t, pct(below)), (t + dt, pct(below + row[k]))],
                    colour.filled(),
                ))
            })
            .collect();
        chart.draw_series(bars)?;
    }
    // Faults go on top here: the bars fill the whole plot and would hide a wash drawn beneath.
    draw_faults(&chart, &input.faults, true)?;
    Ok(())
}
