//! Load balancing (placeholder: declares only the consistent-hash building blocks).

pub mod hash;
pub mod maglev;
