//! Reports: the results document, JUnit, terminal summary, per-second series, PNG charts, the
//! HTML report and the comparison of two runs.

pub mod charts;
pub mod compare;
pub mod html;
pub mod junit;
pub mod render;
pub mod results;
pub mod series;
pub mod summary;
