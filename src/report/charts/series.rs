//! Series helpers: gap-aware segments, cleaned samples and paths that keep lone points visible.

use plotters::prelude::*;

use super::canvas::{Chart, DrawError, Mark};

/// Draws a polyline, solid or dashed; a lone point becomes a dot so it stays visible.
pub(super) fn draw_path(
    chart: &mut Chart<'_, '_>,
    points: &[(f64, f64)],
    colour: RGBColor,
    mark: Mark,
    width: u32,
) -> Result<(), DrawError> {
    let style = colour.stroke_width(width);
    match (points, mark) {
        ([], _) => {}
        ([p], _) => {
            chart.draw_series(std::iter::once(Circle::new(*p, width + 2, colour.filled())))?;
        }
        (_, Mark::Dashed) => {
            chart.draw_series(DashedLineSeries::new(points.iter().copied(), 7, 5, style))?;
        }
        (_, Mark::Line | Mark::Block) => {
            chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
        }
    }
    Ok(())
}

/// Splits an optional-valued series into runs of present, finite values (gaps break lines).
pub(super) fn segments(
    points: impl IntoIterator<Item = (f64, Option<f64>)>,
) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (t, v) in points {
        match v {
            Some(v) if v.is_finite() && t.is_finite() => current.push((t, v)),
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Finite `(x, y)` samples sorted by x.
pub(super) fn clean_xy(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}
