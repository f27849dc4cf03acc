//! `chaosgate proxy`: flags to listener binds; the serving itself is the proxy's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::proxy::Proxy;
use crate::proxy::access_log::JsonLinesSink;
use crate::runner::exit;
use crate::runtime::compile::{Compiled, compile};
use crate::runtime::standalone::ManifestEndpoints;
use crate::scenario::inputs::Inputs;

/// Serves the Gateways of `files` until Ctrl-C.
pub async fn serve(
    files: &[PathBuf],
    listen: &[String],
    admin: &str,
    access_log: Option<&Path>,
    cancel: CancellationToken,
) -> u8 {
    let inputs = match Inputs::load(files) {
        Ok(inputs) => inputs,
        Err((errors, _)) => {
            eprintln!("{errors}");
            return exit::INVALID;
        }
    };
    let analysis = inputs.analyze();
    let compiled = match compile(
        &analysis,
        &inputs.objects,
        &ManifestEndpoints(&inputs.objects),
        1,
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    for w in &compiled.warnings {
        eprintln!("warning: {w}");
    }
    let binds = match binds(&compiled, listen) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let admin: SocketAddr = match admin.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --admin {admin}: {e}");
            return exit::INVALID;
        }
    };
    let mut builder = Proxy::builder(compiled.config);
    if let Some(path) = access_log {
        match JsonLinesSink::create(path) {
            Ok(sink) => builder = builder.access_log_sink(std::sync::Arc::new(sink)),
            Err(e) => {
                eprintln!("error: --access-log {}: {e}", path.display());
                return exit::INVALID;
            }
        }
    }
    let proxy = match builder.start(binds, Some(admin)).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INFRASTRUCTURE;
        }
    };
    for (name, addr) in proxy.listener_addrs() {
        eprintln!("listening: {name} on {addr}");
    }
    if let Some(addr) = proxy.admin_addr() {
        eprintln!("admin: http://{addr}/stats");
    }
    cancel.cancelled().await;
    proxy.shutdown().await;
    exit::PASSED
}

/// `ADDR` for a single listener, else `[GATEWAY/]LISTENER=ADDR` per listener.
fn binds(compiled: &Compiled, listen: &[String]) -> Result<Vec<(String, SocketAddr)>, String> {
    let names: Vec<&str> = compiled.listeners.iter().map(|l| l.name.as_str()).collect();
    if names.is_empty() {
        return Err("the files declare no HTTP listener with routes to serve".into());
    }
    let mut out = Vec::new();
    for entry in listen {
        let (selector, addr) = match entry.rsplit_once('=') {
            Some((s, a)) => (Some(s), a),
            None => (None, entry.as_str()),
        };
        let addr: SocketAddr = addr.parse().map_err(|e| format!("--listen {entry}: {e}"))?;
        let name = match selector {
            None if names.len() == 1 => names[0].to_string(),
            None => {
                return Err(format!(
                    "several listeners ({}): use --listen [GATEWAY/]LISTENER=ADDR",
                    names.join(", ")
                ));
            }
            Some(sel) => {
                let matching: Vec<&&str> = names
                    .iter()
                    .filter(|n| n.ends_with(&format!("/{sel}")) || **n == sel)
                    .collect();
                match matching.as_slice() {
                    [one] => one.to_string(),
                    [] => {
                        return Err(format!(
                            "--listen {entry}: no listener {sel} (listeners: {})",
                            names.join(", ")
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "--listen {entry}: {sel} is ambiguous: name the Gateway too"
                        ));
                    }
                }
            }
        };
        out.push((name, addr));
    }
    Ok(out)
}
