//! Reports: the results document, JUnit, terminal summary, per-second series and PNG charts.

pub mod charts;
pub mod junit;
pub mod results;
pub mod series;
pub mod summary;
