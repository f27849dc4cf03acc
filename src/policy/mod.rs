//! Gateway API and BackendTrafficPolicy: types, attachment, precedence, merge and status.

pub mod btp;
pub mod enforcement;
pub mod explain;
pub mod gateway_api;
pub mod merge;
pub mod objects;
pub mod resolve;
pub mod scope;
pub mod selector;
pub mod status;
pub mod topology;
pub mod translate;
