//! Outcomes over time: one panel per route, stacked bars of response classes per time window.

use std::path::Path;

use plotters::prelude::*;

use super::axis::{draw_mesh, route_time_axis};
use super::canvas::{
    Area, DrawError, LegendEntry, Mark, draw_legend, draw_message, draw_panel_heading, layout,
    render, title,
};
use super::faults::draw_faults;
use super::style::{HEIGHT, TITLE_HEIGHT, WIDTH, fmt_value, outcome};
use super::{ChartError, ChartFile, ChartInput, RouteSeries, SecondPoint};

/// Panel height when a chart has more than one route.
const PANEL_HEIGHT: u32 = 300;

/// One stacked outcome class: legend label, colour, and how to count it in a window.
struct OutcomeClass {
    label: &'static str,
    colour: RGBColor,
    count: fn(&SecondPoint) -> u64,
}

/// Outcome classes in stacking order, bottom first.
const CLASSES: [OutcomeClass; 6] = [
    OutcomeClass {
        label: "success",
        colour: outcome::SUCCESS,
        count: |p| p.success,
    },
    OutcomeClass {
        label: "overflow (UO)",
        colour: outcome::OVERFLOW,
        count: |p| p.overflow_uo,
    },
    OutcomeClass {
        label: "rate limited (RL)",
        colour: outcome::RATE_LIMITED,
        count: |p| p.ratelimited_rl,
    },
    OutcomeClass {
        label: "timeout (UT)",
        colour: outcome::TIMEOUT,
        count: |p| p.timeout_ut,
    },
    OutcomeClass {
        label: "no healthy (UH)",
        colour: outcome::NO_HEALTHY,
        count: |p| p.no_healthy_uh,
    },
    OutcomeClass {
        label: "other errors",
        colour: outcome::OTHER,
        count: |p| p.other_errors,
    },
];

/// Draws `outcomes_over_time.png`: per route, responses per window stacked by outcome class.
pub fn outcomes_over_time(input: &ChartInput, dir: &Path) -> Result<ChartFile, ChartError> {
    let n = input.routes.len().max(1) as u32;
    let height = HEIGHT.max(TITLE_HEIGHT + n * PANEL_HEIGHT);
    render(dir, "outcomes_over_time.png", (WIDTH, height), |root| {
        draw(root, input)
    })
}

fn draw(root: &Area<'_>, input: &ChartInput) -> Result<(), DrawError> {
    let (body, legend) = layout(root, &title(&input.title_prefix, "responses by outcome"))?;
    let mut entries: Vec<LegendEntry> = CLASSES
        .iter()
        .map(|c| LegendEntry::new(c.label, c.colour, Mark::Block))
        .collect();
    if !input.faults.is_empty() {
        entries.push(LegendEntry::fault());
    }
    draw_legend(&legend, "outcome", &entries)?;
    if input.routes.is_empty() {
        return draw_message(&body, "no routes");
    }
    // One time axis for all panels so that the same second lines up vertically.
    let (dt, x) = route_time_axis(input);
    let panels = body.split_evenly((input.routes.len(), 1));
    for (route, area) in input.routes.iter().zip(panels.iter()) {
        route_panel(area, input, route, x.clone(), dt)?;
    }
    Ok(())
}

fn route_panel(
    area: &Area<'_>,
    input: &ChartInput,
    route: &RouteSeries,
    x: std::ops::Range<f64>,
    dt: f64,
) -> Result<(), DrawError> {
    draw_panel_heading(area, &route.name)?;
    let points: Vec<&SecondPoint> = route.points.iter().filter(|p| p.t_s.is_finite()).collect();
    let total = |p: &SecondPoint| CLASSES.iter().map(|c| (c.count)(p)).sum::<u64>();
    let max = points.iter().map(|p| total(p)).max().unwrap_or(0);
    if max == 0 {
        return draw_message(area, &format!("no responses on {}", route.name));
    }
    let y_max = (max as f64 * 1.12).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .margin_top(26)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d(x, 0.0..y_max)?;
    draw_mesh(
        &mut chart,
        "time (s)",
        &format!("responses per {} s", fmt_value(dt)),
        &|v| fmt_value(*v),
        &|v| fmt_value(*v),
        12,
        6,
    )?;
    let mut base: Vec<u64> = vec![0; points.len()];
    for OutcomeClass { colour, count, .. } in CLASSES {
        let bars: Vec<Rectangle<(f64, f64)>> = points
            .iter()
            .zip(base.iter_mut())
            .filter_map(|(p, b)| {
                let n = count(p);
                let bottom = *b;
                *b += n;
                (n > 0).then(|| {
                    Rectangle::new(
                        [(p.t_s, bottom as f64), (p.t_s + dt, (bottom + n) as f64)],
                        colour.filled(),
                    )
                })
            })
            .collect();
        chart.draw_series(bars)?;
    }
    // Faults go on top: bars would hide a wash drawn beneath them.
    draw_faults(&chart, &input.faults, true)?;
    Ok(())
}
