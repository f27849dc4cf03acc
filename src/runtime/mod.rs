//! Where a scenario runs: in this process (`embedded`) or in containers (`docker`).

pub mod backends;
pub mod compile;
pub mod docker;
pub mod standalone;
