//! Shared drawing pieces: the PNG file lifecycle, the title/plot/legend layout, legends, fault
//! windows, "no data" panels, the time axis and the choice between linear and log latency axes.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{
    BACKGROUND, FAULT_INK, FAULT_SHADE, FONT, INK, LEGEND_WIDTH, TITLE_HEIGHT,
    blended_over_background, ensure_fonts, fmt_value,
};
use super::{ChartError, ChartFile, FaultSpan};

/// A pixel drawing area of the bitmap being rendered.
pub(super) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A chart with linear f64 axes (log y axes are drawn as log10 values, see [`YScale`]).
pub(super) type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A plotters failure, flattened to text; the public error adds the file it concerned.
#[derive(Debug)]
pub(super) struct DrawError(pub(super) String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mark {
    /// Solid line.
    Line,
    /// Dashed line.
    Dashed,
    /// Filled box (bars, areas, fault windows).
    Block,
}

/// One row of a legend.
#[derive(Debug, Clone)]
pub(super) struct LegendEntry {
    pub(super) label: String,
    pub(super) colour: RGBColor,
    pub(super) mark: Mark,
}

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

impl LegendEntry {
    pub(super) fn new(label: impl Into<String>, colour: RGBColor, mark: Mark) -> Self {
        Self {
            label: label.into(),
            colour,
            mark,
        }
    }

    /// The legend row describing fault windows.
    pub(super) fn fault() -> Self {
        let [r, g, b] = blended_over_background(FAULT_SHADE);
        Self::new("fault window", RGBColor(r, g, b), Mark::Block)
    }
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

/// Renders one PNG into `dir/file_name`, checking every plotters result on the way.
///
/// A failed draw would still leave a blank image behind, so the file is removed on error.
pub(super) fn render(
    dir: &Path,
    file_name: &str,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), DrawError>,
) -> Result<ChartFile, ChartError> {
    ensure_fonts()?;
    std::fs::create_dir_all(dir).map_err(|source| ChartError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(file_name);
    let outcome = {
        let root = BitMapBackend::new(&path, (width, height)).into_drawing_area();
        root.fill(&BACKGROUND)
            .map_err(DrawError::from)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(DrawError::from))
    };
    match outcome {
        Ok(()) => Ok(ChartFile {
            path,
            width,
            height,
        }),
        Err(DrawError(message)) => {
            // Best effort: a half-drawn file must not pass for a chart; the draw error is the news.
            let _ = std::fs::remove_file(&path);
            Err(ChartError::Draw { path, message })
        }
    }
}

/// Draws the title and splits the rest into the plot body (left) and the legend column (right).
pub(super) fn layout<'a>(root: &Area<'a>, title: &str) -> Result<(Area<'a>, Area<'a>), DrawError> {
    let (head, rest) = root.split_vertically(TITLE_HEIGHT);
    let style = TextStyle::from((FONT, 22).into_font().style(FontStyle::Bold))
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    head.draw(&Text::new(
        title.to_owned(),
        (16, TITLE_HEIGHT as i32 / 2),
        style,
    ))?;
    let (w, _) = rest.dim_in_pixel();
    let (body, legend) = rest.split_horizontally(w.saturating_sub(LEGEND_WIDTH));
    Ok((body, legend))
}

/// Title of a chart: scenario name, then what the chart shows.
pub(super) fn title(prefix: &str, what: &str) -> String {
    if prefix.trim().is_empty() {
        what.to_owned()
    } else {
        format!("{prefix} — {what}")
    }
}

/// Draws legend rows top-down; rows that do not fit are summarised as "+N more".
pub(super) fn draw_legend(
    area: &Area<'_>,
    heading: &str,
    entries: &[LegendEntry],
) -> Result<(), DrawError> {
    const ROW: i32 = 22;
    const MAX_CHARS: usize = 26;
    let (_, h) = area.dim_in_pixel();
    let text = TextStyle::from((FONT, 14))
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let head = TextStyle::from((FONT, 14).into_font().style(FontStyle::Bold))
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = 20;
    if !heading.is_empty() {
        area.draw(&Text::new(heading.to_owned(), (10, y), head))?;
        y += ROW + 2;
    }
    let capacity = ((h as i32 - y - ROW) / ROW).max(1) as usize;
    let shown = if entries.len() > capacity {
        capacity.saturating_sub(1)
    } else {
        entries.len()
    };
    for entry in &entries[..shown] {
        draw_swatch(area, (10, y), entry)?;
        let label = if entry.label.chars().count() > MAX_CHARS {
            let cut: String = entry.label.chars().take(MAX_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            entry.label.clone()
        };
        area.draw(&Text::new(label, (46, y), text.clone()))?;
        y += ROW;
    }
    if shown < entries.len() {
        area.draw(&Text::new(
            format!("+{} more", entries.len() - shown),
            (46, y),
            text,
        ))?;
    }
    Ok(())
}

fn draw_swatch(area: &Area<'_>, (x, y): (i32, i32), entry: &LegendEntry) -> Result<(), DrawError> {
    let c = entry.colour;
    match entry.mark {
        Mark::Line => area.draw(&PathElement::new(
            vec![(x, y), (x + 28, y)],
            c.stroke_width(3),
        ))?,
        Mark::Dashed => {
            for dx in [0, 11, 22] {
                area.draw(&PathElement::new(
                    vec![(x + dx, y), (x + dx + 6, y)],
                    c.stroke_width(3),
                ))?;
            }
        }
        Mark::Block => {
            area.draw(&Rectangle::new([(x, y - 7), (x + 28, y + 7)], c.filled()))?;
            area.draw(&Rectangle::new(
                [(x, y - 7), (x + 28, y + 7)],
                RGBColor(120, 120, 120).stroke_width(1),
            ))?;
        }
    }
    Ok(())
}

/// Writes a centred grey message (for example "no data") in `area`.
pub(super) fn draw_message(area: &Area<'_>, message: &str) -> Result<(), DrawError> {
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, 20))
        .color(&RGBColor(120, 120, 120))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        message.to_owned(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))?;
    Ok(())
}

/// Writes a panel heading (route or cluster name) at the top left of `area`.
pub(super) fn draw_panel_heading(area: &Area<'_>, heading: &str) -> Result<(), DrawError> {
    let style = TextStyle::from((FONT, 15).into_font().style(FontStyle::Bold))
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new(heading.to_owned(), (12, 12), style))?;
    Ok(())
}

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
