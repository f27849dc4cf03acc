//! The drawing surface: the PNG file lifecycle, the title/plot/legend layout, legends, panel
//! headings and "no data" messages.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{
    BACKGROUND, FAULT_SHADE, FONT, INK, LEGEND_WIDTH, TITLE_HEIGHT, blended_over_background,
    ensure_fonts,
};
use super::{ChartError, ChartFile};

/// A pixel drawing area of the bitmap being rendered.
pub(super) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A chart with linear f64 axes (log y axes are drawn as log10 values, see `axis::YScale`).
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
