//! Scenario files: YAML with locations, the object model and located errors.

pub mod check;
pub mod crosscheck;
pub mod decode;
pub mod diag;
pub mod duration;
pub mod inputs;
pub mod load;
pub mod spec;
pub mod yaml;
