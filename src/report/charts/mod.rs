//! PNG charts of a run: latency and outcomes over time, traffic share per replica, the latency
//! distribution and the proxy's circuit-breaker and host state, each with the fault timeline.
//!
//! Text is drawn with an embedded DejaVu font through plotters' `ab_glyph` path, so charts render
//! the same on any machine, also from a static binary in an empty container root (no fontconfig).
//! Every chart is one function taking a [`ChartInput`] and a directory and returning the
//! [`ChartFile`] it wrote; [`render_all`] writes all of them.

use std::path::{Path, PathBuf};

use serde::Serialize;

mod axis;
mod canvas;
mod distribution;
mod faults;
mod latency;
mod model;
mod outcomes;
mod proxy_state;
mod series;
mod style;
mod traffic;

pub use distribution::latency_distribution;
pub use latency::latency_over_time;
pub use model::{ChartInput, ClusterSeries, FaultSpan, ReplicaSeries, RouteSeries, SecondPoint};
pub use outcomes::outcomes_over_time;
pub use proxy_state::proxy_state;
pub use traffic::traffic_share;

/// A chart written to disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartFile {
    /// Where the PNG was written.
    pub path: PathBuf,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
}

/// Why a chart could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The output directory could not be created.
    #[error("cannot create chart directory {}: {source}", path.display())]
    CreateDir {
        /// Directory that was asked for.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded font could not be registered with plotters.
    #[error("the embedded chart font could not be loaded")]
    Font,
    /// Drawing or encoding failed; no file is left at `path`.
    #[error("cannot draw chart {}: {message}", path.display())]
    Draw {
        /// File that was being written.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
}

/// Renders every chart into `dir` (created if missing), stopping at the first failure.
pub fn render_all(input: &ChartInput, dir: &Path) -> Result<Vec<ChartFile>, ChartError> {
    Ok(vec![
        latency_over_time(input, dir)?,
        outcomes_over_time(input, dir)?,
        traffic_share(input, dir)?,
        latency_distribution(input, dir)?,
        proxy_state(input, dir)?,
    ])
}

#[cfg(test)]
mod tests;
