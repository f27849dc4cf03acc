//! The embedded proxy (placeholder: declares only the lb/hc/rate-limit/fault building blocks).

pub mod fault;
pub mod health_check;
pub mod lb;
pub mod rate_limit;
