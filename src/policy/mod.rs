//! Gateway API and BackendTrafficPolicy: types, attachment, precedence, merge and status.

pub mod btp;
