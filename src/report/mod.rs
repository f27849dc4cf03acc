//! Reports: results model, JSON, JUnit, HTML, PNG charts and terminal summary.

pub mod charts;
