//! Latency over time: p50 (solid) and p99 (dashed) per route and time window.

use std::ops::Range;
use std::path::Path;

use plotters::prelude::*;

use super::axis::{YScale, draw_scaled_mesh, route_time_axis};
use super::canvas::{
    Area, DrawError, LegendEntry, Mark, draw_legend, draw_message, layout, render, title,
};
use super::faults::draw_faults;
use super::series::{draw_path, segments};
use super::style::{HEIGHT, WIDTH, fmt_value, series_colour};
use super::{ChartError, ChartFile, ChartInput};

/// Draws `latency_over_time.png`: per-route p50 and p99 latency per window, log y axis when the
/// values span more than a factor of 50.
pub fn latency_over_time(input: &ChartInput, dir: &Path) -> Result<ChartFile, ChartError> {
    render(dir, "latency_over_time.png", (WIDTH, HEIGHT), |root| {
        draw(root, input)
    })
}

fn draw(root: &Area<'_>, input: &ChartInput) -> Result<(), DrawError> {
    let (body, legend) = layout(
        root,
        &title(
            &input.title_prefix,
            "latency over time (p50 solid, p99 dashed)",
        ),
    )?;
    let values: Vec<f64> = input
        .routes
        .iter()
        .flat_map(|r| r.points.iter())
        .flat_map(|p| [p.p50_ms, p.p99_ms])
        .flatten()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .collect();
    let mut entries = Vec::new();
    for (i, route) in input.routes.iter().enumerate() {
        let c = series_colour(i);
        entries.push(LegendEntry::new(
            format!("{} p50", route.name),
            c,
            Mark::Line,
        ));
        entries.push(LegendEntry::new(
            format!("{} p99", route.name),
            c,
            Mark::Dashed,
        ));
    }
    if !input.faults.is_empty() {
        entries.push(LegendEntry::fault());
    }
    draw_legend(&legend, "routes", &entries)?;
    if values.is_empty() {
        return draw_message(&body, "no latency data");
    }
    let (dt, x) = route_time_axis(input);
    panel(&body, input, x, YScale::for_values(values), dt)
}

fn panel(
    area: &Area<'_>,
    input: &ChartInput,
    x: Range<f64>,
    scale: YScale,
    dt: f64,
) -> Result<(), DrawError> {
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x, scale.axis_range())?;
    draw_scaled_mesh(
        &mut chart,
        area,
        ("time (s)", "latency (ms)"),
        &|v| fmt_value(*v),
        12,
        scale,
    )?;
    draw_faults(&chart, &input.faults, true)?;
    for (i, route) in input.routes.iter().enumerate() {
        let c = series_colour(i);
        // Each window's value is drawn at the window's middle.
        let mid = |t: f64| t + dt / 2.0;
        let p50 = segments(
            route
                .points
                .iter()
                .map(|p| (mid(p.t_s), p.p50_ms.filter(|v| *v >= 0.0))),
        );
        let p99 = segments(
            route
                .points
                .iter()
                .map(|p| (mid(p.t_s), p.p99_ms.filter(|v| *v >= 0.0))),
        );
        for (segs, mark) in [(p50, Mark::Line), (p99, Mark::Dashed)] {
            for seg in segs {
                let pts: Vec<(f64, f64)> = seg
                    .into_iter()
                    .map(|(t, v)| (t, scale.to_axis(v)))
                    .collect();
                draw_path(&mut chart, &pts, c, mark, 2)?;
            }
        }
    }
    Ok(())
}
