//! Proxy state: per cluster, active and pending requests against the circuit-breaker limits, and
//! below them the number of ejected and unhealthy hosts.

use std::ops::Range;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{draw_mesh, time_range, window_width};
use super::canvas::{
    Area, DrawError, LegendEntry, Mark, draw_legend, draw_message, draw_panel_heading, layout,
    render, title,
};
use super::faults::draw_faults;
use super::series::{clean_xy, draw_path};
use super::style::{FONT, HEIGHT, TITLE_HEIGHT, WIDTH, fmt_value};
use super::{ChartError, ChartFile, ChartInput, ClusterSeries};

/// Height of one cluster's pair of panels.
const CLUSTER_HEIGHT: u32 = 440;
/// Share of a cluster's height given to the requests panel (the hosts panel gets the rest).
const REQUESTS_SHARE: f64 = 0.62;

const ACTIVE: RGBColor = RGBColor(0, 114, 178);
const PENDING: RGBColor = RGBColor(230, 159, 0);
const EJECTED: RGBColor = RGBColor(213, 94, 0);
const UNHEALTHY: RGBColor = RGBColor(136, 34, 85);

/// Draws `proxy_state.png`: one block per cluster with a requests panel and a hosts panel.
pub fn proxy_state(input: &ChartInput, dir: &Path) -> Result<ChartFile, ChartError> {
    let n = input.clusters.len().max(1) as u32;
    let height = HEIGHT.max(TITLE_HEIGHT + n * CLUSTER_HEIGHT);
    render(dir, "proxy_state.png", (WIDTH, height), |root| {
        draw(root, input)
    })
}

fn draw(root: &Area<'_>, input: &ChartInput) -> Result<(), DrawError> {
    let (body, legend) = layout(
        root,
        &title(&input.title_prefix, "proxy circuit breakers and hosts"),
    )?;
    let mut entries = vec![
        LegendEntry::new("active requests", ACTIVE, Mark::Line),
        LegendEntry::new("max_requests limit", ACTIVE, Mark::Dashed),
        LegendEntry::new("pending requests", PENDING, Mark::Line),
        LegendEntry::new("max_pending limit", PENDING, Mark::Dashed),
        LegendEntry::new("ejected hosts", EJECTED, Mark::Line),
        LegendEntry::new("unhealthy hosts", UNHEALTHY, Mark::Dashed),
    ];
    if !input.faults.is_empty() {
        entries.push(LegendEntry::fault());
    }
    draw_legend(&legend, "series", &entries)?;
    if input.clusters.is_empty() {
        return draw_message(&body, "no proxy data");
    }
    let times: Vec<f64> = input
        .clusters
        .iter()
        .flat_map(|c| {
            [
                &c.active_requests,
                &c.pending,
                &c.ejected_hosts,
                &c.unhealthy_hosts,
            ]
            .into_iter()
            .flat_map(|s| s.iter().map(|p| p.0))
        })
        .collect();
    // One sampling interval of room after the last sample keeps it off the plot's edge.
    let dt = window_width(times.iter().copied());
    let x = time_range(
        input.duration_s,
        times.iter().map(|t| t + dt),
        &input.faults,
    );
    let blocks = body.split_evenly((input.clusters.len(), 1));
    for (cluster, area) in input.clusters.iter().zip(blocks.iter()) {
        cluster_block(area, input, cluster, x.clone())?;
    }
    Ok(())
}

fn cluster_block(
    area: &Area<'_>,
    input: &ChartInput,
    cluster: &ClusterSeries,
    x: Range<f64>,
) -> Result<(), DrawError> {
    draw_panel_heading(area, &format!("cluster {}", cluster.name))?;
    let (_, h) = area.dim_in_pixel();
    let (upper, lower) = area.split_vertically((f64::from(h) * REQUESTS_SHARE) as u32);
    let active = clean_xy(&cluster.active_requests);
    let pending = clean_xy(&cluster.pending);
    let ejected = clean_xy(&cluster.ejected_hosts);
    let unhealthy = clean_xy(&cluster.unhealthy_hosts);
    let limits: Vec<(f64, RGBColor, &str)> = [
        (cluster.max_requests_limit, ACTIVE, "max_requests"),
        (cluster.max_pending_limit, PENDING, "max_pending"),
    ]
    .into_iter()
    .filter_map(|(l, c, name)| {
        l.filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| (v, c, name))
    })
    .collect();
    if active.is_empty() && pending.is_empty() && ejected.is_empty() && unhealthy.is_empty() {
        return draw_message(area, &format!("no samples for cluster {}", cluster.name));
    }

    // Requests panel.
    let req_max = active
        .iter()
        .chain(pending.iter())
        .map(|p| p.1)
        .chain(limits.iter().map(|l| l.0))
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&upper)
        .margin(14)
        .margin_top(26)
        .x_label_area_size(30)
        .y_label_area_size(72)
        .build_cartesian_2d(x.clone(), 0.0..(req_max * 1.15).max(1.0))?;
    draw_mesh(
        &mut chart,
        "",
        "requests",
        &|v| fmt_value(*v),
        &|v| fmt_value(*v),
        12,
        6,
    )?;
    draw_faults(&chart, &input.faults, true)?;
    let label = TextStyle::from((FONT, 12)).pos(Pos::new(HPos::Right, VPos::Bottom));
    for &(limit, colour, name) in &limits {
        chart.draw_series(DashedLineSeries::new(
            vec![(x.start, limit), (x.end, limit)],
            8,
            6,
            colour.stroke_width(2),
        ))?;
        let at = chart.backend_coord(&(x.end, limit));
        let text = format!("{name} = {}", fmt_value(limit));
        chart
            .plotting_area()
            .strip_coord_spec()
            .use_screen_coord()
            .draw(&Text::new(text, (at.0 - 4, at.1 - 3), label.color(&colour)))?;
    }
    for (series, colour) in [(&active, ACTIVE), (&pending, PENDING)] {
        draw_path(&mut chart, series, colour, Mark::Line, 2)?;
    }

    // Hosts panel: whole numbers of hosts, drawn as steps because they change at instants.
    let hosts_max = ejected
        .iter()
        .chain(unhealthy.iter())
        .map(|p| p.1)
        .fold(0.0, f64::max);
    let y_top = hosts_max.ceil().max(1.0) + 0.5;
    let mut chart = ChartBuilder::on(&lower)
        .margin(14)
        .margin_top(4)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x, 0.0..y_top)?;
    let int_only = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            fmt_value(*v)
        } else {
            String::new()
        }
    };
    draw_mesh(
        &mut chart,
        "time (s)",
        "hosts",
        &|v| fmt_value(*v),
        &int_only,
        12,
        (y_top as usize + 1).min(7),
    )?;
    draw_faults(&chart, &input.faults, false)?;
    if !ejected.is_empty() {
        chart.draw_series(LineSeries::new(steps(&ejected), EJECTED.stroke_width(3)))?;
    }
    if !unhealthy.is_empty() {
        chart.draw_series(DashedLineSeries::new(
            steps(&unhealthy),
            7,
            5,
            UNHEALTHY.stroke_width(2),
        ))?;
    }
    Ok(())
}

/// Turns samples into a staircase: each value holds until the next sample.
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(t, v)) in points.iter().enumerate() {
        if i > 0 {
            out.push((t, points[i - 1].1));
        }
        out.push((t, v));
    }
    out
}
