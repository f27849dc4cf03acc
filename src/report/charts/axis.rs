//! Axes: the time range, window width, the shared mesh style, and latency y axes that switch
//! between linear and log10 with 1-2-5 ticks.

use std::ops::Range;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{Area, Chart, DrawError};
use super::style::{FONT, INK, fmt_value};
use super::{ChartInput, FaultSpan};

/// Whether latency axes are linear or logarithmic, with their range. Log axes are drawn as
/// linear axes over log10 of the values, with 1-2-5 ticks of our own: plotters' log axis can
/// only label powers of ten or crowd every integer mantissa.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum YScale {
    /// `0..max`.
    Linear { max: f64 },
    /// `min..max`, both positive; values below `min` are drawn at `min`.
    Log { min: f64, max: f64 },
}

impl YScale {
    /// Log when the positive values span more than a factor of 50, linear otherwise.
    pub(super) fn for_values(values: impl IntoIterator<Item = f64>) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for v in values.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi <= 0.0 || !lo.is_finite() {
            return YScale::Linear { max: 1.0 };
        }
        if hi / lo > 50.0 {
            YScale::Log {
                min: lo / 1.4,
                max: hi * 1.4,
            }
        } else {
            YScale::Linear { max: hi * 1.12 }
        }
    }

    /// Range of the chart's y coordinate: values themselves, or their log10 on log axes.
    pub(super) fn axis_range(self) -> Range<f64> {
        match self {
            YScale::Linear { max } => 0.0..max,
            YScale::Log { min, max } => min.log10()..max.log10(),
        }
    }

    /// Chart y coordinate of a value, clamped into the drawable range (log axes cannot show 0).
    pub(super) fn to_axis(self, v: f64) -> f64 {
        match self {
            YScale::Linear { .. } => self.clamp(v),
            YScale::Log { .. } => self.clamp(v).log10(),
        }
    }

    /// Label count to ask plotters for: log axes draw their own ticks.
    fn plotters_labels(self) -> usize {
        match self {
            YScale::Linear { .. } => 8,
            YScale::Log { .. } => 0,
        }
    }

    /// Tick values of a log axis: 1-2-5 per decade, or only powers of ten when that would crowd.
    pub(super) fn log_ticks(self) -> Vec<f64> {
        let YScale::Log { min, max } = self else {
            return Vec::new();
        };
        let mut ticks = Vec::new();
        let first = min.log10().floor() as i32;
        let last = max.log10().ceil() as i32;
        let decades = (last - first).max(1);
        let mantissas: &[f64] = if decades > 4 {
            &[1.0]
        } else {
            &[1.0, 2.0, 5.0]
        };
        for e in first..=last {
            for m in mantissas {
                let v = m * 10f64.powi(e);
                if v >= min && v <= max {
                    ticks.push(v);
                }
            }
        }
        ticks
    }

    /// Moves a value into the drawable range (log axes cannot show zero).
    fn clamp(self, v: f64) -> f64 {
        match self {
            YScale::Linear { max } => v.clamp(0.0, max),
            YScale::Log { min, max } => v.clamp(min, max),
        }
    }
}

/// Time axis range: the run duration, stretched to cover every point and fault, never empty.
pub(super) fn time_range(
    duration_s: f64,
    extra_ends: impl IntoIterator<Item = f64>,
    faults: &[FaultSpan],
) -> Range<f64> {
    let mut end = if duration_s.is_finite() {
        duration_s.max(0.0)
    } else {
        0.0
    };
    for t in extra_ends.into_iter().chain(faults.iter().map(|f| f.end_s)) {
        if t.is_finite() {
            end = end.max(t);
        }
    }
    if end <= 0.0 { 0.0..1.0 } else { 0.0..end }
}

/// The time axis shared by the per-route charts: the window width of the route points and a
/// range covering the run, every window and every fault.
pub(super) fn route_time_axis(input: &ChartInput) -> (f64, Range<f64>) {
    let times = || {
        input
            .routes
            .iter()
            .flat_map(|r| r.points.iter().map(|p| p.t_s))
    };
    let dt = window_width(times());
    (
        dt,
        time_range(input.duration_s, times().map(|t| t + dt), &input.faults),
    )
}

/// Width of one time window: the smallest gap between distinct sample times, 1 s by default.
pub(super) fn window_width(times: impl IntoIterator<Item = f64>) -> f64 {
    let mut ts: Vec<f64> = times.into_iter().filter(|t| t.is_finite()).collect();
    ts.sort_by(f64::total_cmp);
    ts.dedup();
    ts.windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 1e-9)
        .fold(None, |acc: Option<f64>, d| {
            Some(acc.map_or(d, |a| a.min(d)))
        })
        .unwrap_or(1.0)
}

/// Applies the common axis style and draws the mesh of a chart.
pub(super) fn draw_mesh(
    chart: &mut Chart<'_, '_>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
    x_labels: usize,
    y_labels: usize,
) -> Result<(), DrawError> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(x_labels)
        .y_labels(y_labels)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .label_style((FONT, 13).into_font().color(&INK))
        .axis_desc_style((FONT, 14).into_font().color(&INK))
        .bold_line_style(RGBColor(0, 0, 0).mix(0.12))
        .light_line_style(RGBColor(0, 0, 0).mix(0.04))
        .axis_style(INK.mix(0.8))
        .draw()?;
    Ok(())
}

/// Draws the mesh of a chart whose y axis is a [`YScale`]; `area` is the panel the chart was
/// built on (its y label column is where log tick labels go).
pub(super) fn draw_scaled_mesh(
    chart: &mut Chart<'_, '_>,
    area: &Area<'_>,
    (x_desc, y_desc): (&str, &str),
    x_fmt: &dyn Fn(&f64) -> String,
    x_labels: usize,
    scale: YScale,
) -> Result<(), DrawError> {
    draw_mesh(
        chart,
        x_desc,
        y_desc,
        x_fmt,
        &|v| fmt_value(*v),
        x_labels,
        scale.plotters_labels(),
    )?;
    let ticks = scale.log_ticks();
    if ticks.is_empty() {
        return Ok(());
    }
    let Range { start: x0, end: x1 } = chart.x_range();
    let base = area.get_base_pixel();
    let style = TextStyle::from((FONT, 13))
        .color(&INK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for v in ticks {
        let y = v.log10();
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x0, y), (x1, y)],
            RGBColor(0, 0, 0).mix(0.12).stroke_width(1),
        )))?;
        let (px, py) = chart.backend_coord(&(x0, y));
        let (px, py) = (px - base.0, py - base.1);
        area.draw(&PathElement::new(
            vec![(px - 5, py), (px, py)],
            INK.mix(0.8).stroke_width(1),
        ))?;
        area.draw(&Text::new(fmt_value(v), (px - 8, py), style.clone()))?;
    }
    Ok(())
}
