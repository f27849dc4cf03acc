//! The fault timeline drawn over a chart: shaded windows with edge lines and labels in lanes.

use std::ops::Range;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::FaultSpan;
use super::canvas::{Chart, DrawError};
use super::style::{BACKGROUND, FAULT_INK, FAULT_SHADE, FONT};

/// Shades fault windows over a chart's plotting area; `with_labels` adds their names at the top.
///
/// Works in pixels so it serves linear and log y axes alike; the x axis is time in seconds.
pub(super) fn draw_faults(
    chart: &Chart<'_, '_>,
    faults: &[FaultSpan],
    with_labels: bool,
) -> Result<(), DrawError> {
    let plot = chart.plotting_area().strip_coord_spec();
    let Range { start: t0, end: t1 } = chart.x_range();
    let (w, h) = plot.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    if t1 <= t0 || w <= 0 || h <= 0 {
        return Ok(());
    }
    let px = |t: f64| -> i32 { ((t.clamp(t0, t1) - t0) / (t1 - t0) * f64::from(w)).round() as i32 };
    let spans: Vec<(i32, i32, &str)> = faults
        .iter()
        .filter(|f| f.start_s.is_finite() && f.end_s.is_finite() && f.end_s >= f.start_s)
        .filter(|f| f.end_s >= t0 && f.start_s <= t1)
        .map(|f| {
            let (a, b) = (px(f.start_s), px(f.end_s));
            // An instantaneous fault still gets a visible band.
            (a, b.max(a + 3), f.label.as_str())
        })
        .collect();
    for &(a, b, _) in &spans {
        plot.draw(&Rectangle::new([(a, 0), (b, h)], FAULT_SHADE.filled()))?;
        for x in [a, b] {
            plot.draw(&PathElement::new(
                vec![(x, 0), (x, h)],
                FAULT_INK.mix(0.45).stroke_width(1),
            ))?;
        }
    }
    if !with_labels {
        return Ok(());
    }
    // Labels go into lanes so that labels of overlapping or adjacent windows do not collide.
    let style = TextStyle::from((FONT, 13))
        .color(&FAULT_INK)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let mut lane_ends: Vec<i32> = Vec::new();
    for &(a, _, label) in &spans {
        if label.is_empty() {
            continue;
        }
        let (tw, _) = plot.estimate_text_size(label, &style)?;
        let tw = tw as i32;
        let x = (a + 4).min(w - tw - 4).max(2);
        let lane = match lane_ends.iter().position(|&end| end + 6 <= x) {
            Some(i) => i,
            None if lane_ends.len() < 4 => {
                lane_ends.push(i32::MIN);
                lane_ends.len() - 1
            }
            None => 0,
        };
        lane_ends[lane] = x + tw;
        let y = 4 + lane as i32 * 17;
        // A light backing keeps the label readable over bars and lines.
        plot.draw(&Rectangle::new(
            [(x - 2, y - 1), (x + tw + 2, y + 15)],
            BACKGROUND.mix(0.75).filled(),
        ))?;
        plot.draw(&Text::new(label.to_owned(), (x, y), style.clone()))?;
    }
    Ok(())
}
