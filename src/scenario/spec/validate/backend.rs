//! `spec.backends[]`: mock Services and their replicas.

use super::super::raw::RawBackend;
use super::super::values::{self, is_dns_label};
use super::super::{BackendProtocol, BackendSpec};
use super::{check_fraction, check_path, check_status};
use crate::scenario::check::Checker;
use crate::scenario::yaml::child_key;

/// Most replicas one backend may have.
const MAX_REPLICAS: u32 = 1000;

pub(super) fn backend(c: &mut Checker<'_>, path: String, raw: RawBackend) -> BackendSpec {
    let at = |field: &str| child_key(&path, field);
    let label_rule = "lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    c.ensure(
        is_dns_label(&raw.name),
        &at("name"),
        format!("`{}` is not a valid Service name: {label_rule}", raw.name),
    );
    let namespace = raw.namespace.unwrap_or_else(|| "default".to_string());
    c.ensure(
        is_dns_label(&namespace),
        &at("namespace"),
        format!("`{namespace}` is not a valid namespace: {label_rule}"),
    );
    c.ensure(
        raw.port != Some(0),
        &at("port"),
        "port must be from 1 to 65535",
    );
    let replicas = raw.replicas.unwrap_or(1);
    c.ensure(
        (1..=MAX_REPLICAS).contains(&replicas),
        &at("replicas"),
        format!("replicas must be from 1 to {MAX_REPLICAS}, got {replicas}"),
    );
    let latency = raw
        .latency
        .as_ref()
        .and_then(|v| values::latency(c, &at("latency"), v))
        .unwrap_or_default();
    let error_rate = raw.error_rate.unwrap_or(0.0);
    check_fraction(c, &at("errorRate"), error_rate);
    let error_status = raw.error_status.unwrap_or(500);
    check_status(c, &at("errorStatus"), error_status);
    let health_path = raw.health_path.unwrap_or_else(|| "/healthz".to_string());
    check_path(c, &at("healthPath"), &health_path);
    let protocol = match raw.protocol.as_deref() {
        None | Some("http1") => BackendProtocol::Http1,
        Some("h2c") => BackendProtocol::H2c,
        Some(other) => {
            c.error(
                &at("protocol"),
                format!("unknown protocol `{other}` (allowed: http1, h2c)"),
            );
            BackendProtocol::Http1
        }
    };
    BackendSpec {
        yaml_path: path,
        name: raw.name,
        namespace,
        port: raw.port,
        replicas: replicas.max(1) as usize,
        latency,
        error_rate,
        error_status,
        health_path,
        protocol,
    }
}
