//! Where a scenario runs: in this process (`embedded`) or in containers (`docker`).

pub mod backends;
pub mod docker;
