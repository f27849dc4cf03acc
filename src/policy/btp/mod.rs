//! Envoy Gateway v1.9.0 `BackendTrafficPolicy`: the spec as the CRD defines it, the API
//! server's admission rules, and the translator's own rejections.
//!
//! Reading a policy is three steps, each with Envoy Gateway's exact wording:
//! 1. decode `spec` into [`BackendTrafficPolicySpec`] (unknown fields rejected, every error
//!    located) with [`crate::scenario::decode::decode`];
//! 2. [`validate`]: every OpenAPI and CEL rule of the CRD, as `kubectl apply` would report;
//! 3. [`translation_errors`]: what the translator rejects although the CRD accepted it; these
//!    become the policy's `Accepted=False, reason=Invalid` status ([`status_message`]).
//!
//! [`read_spec`] does steps 1 and 2 in the API server's order (an unknown field is reported
//! alone; a mistyped value blocks CEL rules). [`apply_defaults`] fills the CRD defaults as the
//! API server stores them. Message formats follow the API server of Kubernetes 1.36, the
//! version Envoy Gateway v1.9.0 tests its CRDs against (see `schema.rs`).

mod defaults;
mod goregexp;
mod read;
mod schema;
mod translate;
mod types;
mod validate;
mod values;

#[cfg(test)]
mod tests;

pub use defaults::{
    DEFAULT_CIRCUIT_BREAKER_THRESHOLD, DEFAULT_CONSISTENT_HASH_TABLE_SIZE,
    DEFAULT_FAULT_PERCENTAGE, DEFAULT_FRACTION_DENOMINATOR, DEFAULT_NUM_RETRIES,
    DEFAULT_REDIRECT_STATUS_CODE, apply_defaults,
};
pub use goregexp::validate_go_regex;
pub use read::read_spec;
pub use translate::{
    ConfigMapState, TranslateContext, status_message, translation_errors, translation_errors_with,
};
pub use types::*;
pub use validate::validate;
pub use values::{CrdEnum, Quantity};
