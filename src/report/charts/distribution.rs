//! Latency distribution: HDR-style percentile curve per route on a "nines" x axis.

use std::ops::Range;
use std::path::Path;

use plotters::prelude::*;

use super::axis::{YScale, draw_scaled_mesh};
use super::canvas::{
    Area, DrawError, LegendEntry, Mark, draw_legend, draw_message, layout, render, title,
};
use super::style::{HEIGHT, WIDTH, fmt_nines, fmt_value, series_colour};
use super::{ChartError, ChartFile, ChartInput};

/// Highest percentile drawn: 99.9999 (six nines); higher ones below 100 are drawn there. The
/// maximum (100 %) lies infinitely far right, so it is named in the legend instead.
const MAX_NINES: f64 = 6.0;

/// Draws `latency_distribution.png`: latency by percentile, x axis `-log10(1 - p/100)` labelled
/// 0 %, 90 %, 99 %, 99.9 % …, so the tail gets as much room as the body.
pub fn latency_distribution(input: &ChartInput, dir: &Path) -> Result<ChartFile, ChartError> {
    render(dir, "latency_distribution.png", (WIDTH, HEIGHT), |root| {
        draw(root, input)
    })
}

/// Axis position of a percentile (`99.9` → `3.0`), `None` outside `0..=100`.
pub(super) fn nines(percentile: f64) -> Option<f64> {
    if !percentile.is_finite() || !(0.0..100.0).contains(&percentile) {
        return None;
    }
    let rest = 1.0 - percentile / 100.0;
    if rest <= 10f64.powf(-MAX_NINES) {
        return Some(MAX_NINES);
    }
    Some((-rest.log10()).clamp(0.0, MAX_NINES))
}

fn curves(input: &ChartInput) -> Vec<Vec<(f64, f64)>> {
    input
        .routes
        .iter()
        .map(|r| {
            let mut pts: Vec<(f64, f64)> = r
                .percentiles
                .iter()
                .filter(|(_, ms)| ms.is_finite() && *ms >= 0.0)
                .filter_map(|&(p, ms)| nines(p).map(|x| (x, ms)))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            pts
        })
        .collect()
}

fn draw(root: &Area<'_>, input: &ChartInput) -> Result<(), DrawError> {
    let (body, legend) = layout(root, &title(&input.title_prefix, "latency by percentile"))?;
    let entries: Vec<LegendEntry> = input
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let max = r
                .percentiles
                .iter()
                .filter(|(p, ms)| *p >= 100.0 && ms.is_finite())
                .map(|(_, ms)| *ms)
                .reduce(f64::max);
            let label = match max {
                Some(ms) => format!("{} (max {} ms)", r.name, fmt_value(ms)),
                None => r.name.clone(),
            };
            LegendEntry::new(label, series_colour(i), Mark::Line)
        })
        .collect();
    draw_legend(&legend, "routes", &entries)?;
    let curves = curves(input);
    let all: Vec<(f64, f64)> = curves.iter().flatten().copied().collect();
    if all.is_empty() {
        return draw_message(&body, "no latency distribution");
    }
    let max_x = all.iter().map(|p| p.0).fold(0.0, f64::max);
    // At least 0..99.9 %, and a little room right of the last point so its marker is whole.
    let x_end = max_x.max(3.0).ceil() + 0.12;
    let scale = YScale::for_values(all.iter().map(|p| p.1));
    panel(&body, &curves, 0.0..x_end, scale)
}

fn panel(
    area: &Area<'_>,
    curves: &[Vec<(f64, f64)>],
    x: Range<f64>,
    scale: YScale,
) -> Result<(), DrawError> {
    let x_labels = x.end.floor() as usize + 1;
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x, scale.axis_range())?;
    draw_scaled_mesh(
        &mut chart,
        area,
        ("percentile", "latency (ms)"),
        &|v| fmt_nines(*v),
        x_labels,
        scale,
    )?;
    for (i, pts) in curves.iter().enumerate() {
        let c = series_colour(i);
        let pts: Vec<(f64, f64)> = pts.iter().map(|&(x, v)| (x, scale.to_axis(v))).collect();
        if pts.len() > 1 {
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
        }
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
    }
    Ok(())
}
