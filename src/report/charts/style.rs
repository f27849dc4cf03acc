//! Look of every chart: embedded fonts, colour palette, sizes and number formatting.

use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBAColor, RGBColor, register_font};

use super::ChartError;

/// Font family every text element asks for; registered from the embedded DejaVu Sans.
pub(super) const FONT: &str = "sans-serif";

/// Chart width in pixels.
pub(super) const WIDTH: u32 = 1200;
/// Height of a single-panel chart in pixels.
pub(super) const HEIGHT: u32 = 500;
/// Height of the title strip at the top of every chart.
pub(super) const TITLE_HEIGHT: u32 = 44;
/// Width of the legend column on the right of every chart.
pub(super) const LEGEND_WIDTH: u32 = 230;

/// Background of the whole image.
pub(super) const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
/// Text and axis colour.
pub(super) const INK: RGBColor = RGBColor(34, 34, 34);
/// Fault windows: a pale red wash that stays readable over lines and bars.
pub const FAULT_SHADE: RGBAColor = RGBAColor(214, 39, 40, 0.14);
/// Edges and labels of fault windows.
pub(super) const FAULT_INK: RGBColor = RGBColor(160, 28, 28);

// Okabe–Ito (colour-blind safe) first, then Paul Tol's muted scheme for charts with many series.
// Yellow is left out of line colours: it vanishes on white.
const SERIES: [RGBColor; 13] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(136, 34, 85),   // wine
    RGBColor(68, 170, 153),  // teal
    RGBColor(153, 153, 51),  // olive
    RGBColor(51, 34, 136),   // indigo
    RGBColor(221, 204, 119), // sand
    RGBColor(170, 68, 153),  // purple
];

/// Colour of outcome classes; the same in every chart and legend.
pub(super) mod outcome {
    use plotters::style::RGBColor;

    /// Successful responses.
    pub(in super::super) const SUCCESS: RGBColor = RGBColor(0, 158, 115);
    /// `UO`: circuit breaker overflow.
    pub(in super::super) const OVERFLOW: RGBColor = RGBColor(230, 159, 0);
    /// `RL`: rate limited.
    pub(in super::super) const RATE_LIMITED: RGBColor = RGBColor(204, 121, 167);
    /// `UT`: upstream timeout.
    pub(in super::super) const TIMEOUT: RGBColor = RGBColor(213, 94, 0);
    /// `UH`: no healthy upstream.
    pub(in super::super) const NO_HEALTHY: RGBColor = RGBColor(0, 114, 178);
    /// Every other error.
    pub(in super::super) const OTHER: RGBColor = RGBColor(110, 110, 110);
}

/// Colour of the `index`-th series; cycles when there are more series than colours.
pub(super) fn series_colour(index: usize) -> RGBColor {
    SERIES[index % SERIES.len()]
}

/// Registers the embedded fonts once per process; later calls return the first outcome.
pub(super) fn ensure_fonts() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

/// Formats an axis value compactly: `0`, `0.25`, `1.5`, `12`, `1200`, `12k`, `1.5M`.
pub(super) fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    let s = if a == 0.0 {
        "0".to_owned()
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        trim(format!("{v:.1}"))
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        // Enough decimals for two significant digits of a small value.
        let decimals = (-a.log10()).floor() as usize + 2;
        trim(format!("{v:.decimals$}"))
    };
    if s == "-0" { "0".to_owned() } else { s }
}

/// Label of an x position on the "nines" axis, where `x = -log10(1 - p/100)`.
pub(super) fn fmt_nines(x: f64) -> String {
    if !x.is_finite() || x < 0.0 {
        return String::new();
    }
    let rounded = x.round();
    if (x - rounded).abs() < 1e-6 {
        // Exact nines: 0, 90, 99, 99.9, 99.99 ...
        return match rounded as u32 {
            0 => "0%".to_owned(),
            1 => "90%".to_owned(),
            n => format!("99.{}%", "9".repeat(n as usize - 2)).replace(".%", "%"),
        };
    }
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = x.ceil() as usize;
    format!("{}%", trim(format!("{p:.decimals$}")))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Colour of `c` blended at its alpha over the chart background, as it appears in the PNG.
pub fn blended_over_background(c: RGBAColor) -> [u8; 3] {
    let mix = |fg: u8, bg: u8| -> u8 {
        (f64::from(fg) * c.3 + f64::from(bg) * (1.0 - c.3)).round() as u8
    };
    [
        mix(c.0, BACKGROUND.0),
        mix(c.1, BACKGROUND.1),
        mix(c.2, BACKGROUND.2),
    ]
}
