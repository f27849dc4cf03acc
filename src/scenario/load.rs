//! Reading input files: YAML documents → typed objects, following `manifests:` includes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::decode::decode;
use super::diag::{Diagnostic, Diagnostics, SourceDoc, file_error};
use super::yaml::{Pos, parse_documents};
use crate::policy::btp::{BackendTrafficPolicySpec, read_spec};
use crate::policy::objects::{Meta, Object, ObjectSet, PolicySpec, SliceEndpoint, strip_nulls};

/// What loading a set of files produced: the objects, or every error; warnings either way.
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: ObjectSet,
    pub errors: Diagnostics,
    pub warnings: Vec<Diagnostic>,
}

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
const GATEWAY_X_GROUP: &str = "gateway.networking.x-k8s.io";
const ENVOY_GATEWAY_GROUP: &str = "gateway.envoyproxy.io";
const CHAOSGATE_GROUP: &str = "chaosgate.dev";

/// The files a path names: the file itself, or every `*.yaml`/`*.yml` directly in a folder, sorted.
pub fn files_in(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(file_error(path, Pos::default(), "no such file or folder"));
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| file_error(path, Pos::default(), format!("cannot read folder: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Loads the given files (and the manifests their scenarios include) into one object set.
pub fn load_files(files: &[PathBuf]) -> Loaded {
    load_files_with(files, LoadOptions::default())
}

/// How strictly objects are admitted.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Apply the CRD's rules to BackendTrafficPolicies, as the Kubernetes API server does. Off,
    /// policies reach the translator as Envoy Gateway's file provider would pass them on (only
    /// their shape is checked): statuses then show what the translator itself rejects.
    pub crd_validation: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            crd_validation: true,
        }
    }
}

/// [`load_files`] with explicit options.
pub fn load_files_with(files: &[PathBuf], options: LoadOptions) -> Loaded {
    let mut loader = Loader {
        options,
        ..Loader::default()
    };
    for file in files {
        loader.load_file(file, None);
    }
    loader.out
}

#[derive(Default)]
struct Loader {
    options: LoadOptions,
    out: Loaded,
    seen: HashSet<PathBuf>,
    /// Where each object (`apiVersion group`, kind, namespace, name) was first defined.
    defined: HashMap<(String, String, String, String), String>,
}

impl Loader {
    fn load_file(&mut self, file: &Path, included_by: Option<(&SourceDoc, String)>) {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        if !self.seen.insert(canonical) {
            return;
        }
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                let diagnostic = match &included_by {
                    Some((doc, path)) => doc.error(
                        path,
                        format!("cannot read included file {}: {e}", file.display()),
                    ),
                    None => file_error(file, Pos::default(), format!("cannot read file: {e}")),
                };
                self.out.errors.push(diagnostic);
                return;
            }
        };
        let documents = match parse_documents(&text) {
            Ok(docs) => docs,
            Err(e) => {
                self.out.errors.push(file_error(
                    file,
                    e.pos,
                    format!("invalid YAML: {}", e.message),
                ));
                return;
            }
        };
        let file = Arc::new(file.to_path_buf());
        for doc in documents {
            let source = Arc::new(SourceDoc {
                file: file.clone(),
                doc,
            });
            self.load_document(source);
        }
    }

    fn load_document(&mut self, source: Arc<SourceDoc>) {
        let value = source.doc.value.clone();
        let Some(fields) = value.as_object() else {
            self.out.errors.push(source.error("", "a document must be a Kubernetes object (a mapping with apiVersion, kind, metadata)"));
            return;
        };
        let api_version = fields.get("apiVersion").and_then(Value::as_str);
        let kind = fields.get("kind").and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (api_version, kind) else {
            for (field, present) in [
                ("apiVersion", api_version.is_some()),
                ("kind", kind.is_some()),
            ] {
                if !present {
                    self.out.errors.push(source.error(
                        field,
                        format!("missing or not a string: every object needs `{field}`"),
                    ));
                }
            }
            return;
        };
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        match (group, kind) {
            (GATEWAY_GROUP, "Gateway") => self.typed(&source, |o, v| o.gateways.push(v)),
            (GATEWAY_GROUP, "ListenerSet") | (GATEWAY_X_GROUP, "XListenerSet") => {
                self.typed(&source, |o, v| o.listener_sets.push(v))
            }
            (GATEWAY_GROUP, "HTTPRoute") => self.typed(&source, |o, v| o.http_routes.push(v)),
            (GATEWAY_GROUP, "GRPCRoute") => self.typed(&source, |o, v| o.grpc_routes.push(v)),
            (GATEWAY_GROUP, "TCPRoute") => self.typed(&source, |o, v| o.tcp_routes.push(v)),
            (GATEWAY_GROUP, "UDPRoute") => self.typed(&source, |o, v| o.udp_routes.push(v)),
            (GATEWAY_GROUP, "TLSRoute") => self.typed(&source, |o, v| o.tls_routes.push(v)),
            (GATEWAY_GROUP, "ReferenceGrant") => {
                self.typed(&source, |o, v| o.reference_grants.push(v))
            }
            (ENVOY_GATEWAY_GROUP, "BackendTrafficPolicy") => self.policy(&source),
            (ENVOY_GATEWAY_GROUP, "Backend") => self.typed(&source, |o, v| o.backends.push(v)),
            ("", "Service") => self.typed(&source, |o, v| o.services.push(v)),
            ("", "ConfigMap") => self.config_map(&source),
            ("", "Namespace") => self.meta_only(&source, |o, meta| o.namespaces.push(meta)),
            ("discovery.k8s.io", "EndpointSlice") => self.endpoint_slice(&source),
            (CHAOSGATE_GROUP, "Scenario") => self.scenario(&source),
            _ => {
                let warning = source.error(
                    "kind",
                    format!("skipping {kind} ({api_version}): chaosgate does not use this kind"),
                );
                self.out.warnings.push(warning);
            }
        }
    }

    /// Checks the envelope (top-level fields and metadata) and returns the metadata.
    fn envelope(&mut self, source: &SourceDoc, extra_fields: &[&str]) -> Option<Meta> {
        let fields = source.doc.value.as_object()?;
        let mut ok = true;
        for key in fields.keys() {
            let allowed = ["apiVersion", "kind", "metadata", "spec", "status"];
            if !allowed.contains(&key.as_str()) && !extra_fields.contains(&key.as_str()) {
                let mut expected: Vec<&str> = allowed.to_vec();
                expected.extend_from_slice(extra_fields);
                self.out.errors.push(source.error(
                    key,
                    format!(
                        "unknown top-level field `{key}`, expected one of {}",
                        quote_list(&expected)
                    ),
                ));
                ok = false;
            }
        }
        let meta = match parse_meta(source) {
            Ok(meta) => Some(meta),
            Err(errors) => {
                self.out.errors.extend(errors);
                None
            }
        };
        if let Some(meta) = &meta {
            let value = &source.doc.value;
            let api_version = value["apiVersion"].as_str().unwrap_or_default();
            let group = api_version
                .rsplit_once('/')
                .map_or("", |(g, _)| g)
                .to_string();
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let key = (
                group,
                kind.clone(),
                meta.namespace.clone(),
                meta.name.clone(),
            );
            let here = format!(
                "{}:{}:{}",
                source.file.display(),
                source.doc.start.line,
                source.doc.start.col
            );
            if let Some(first) = self.defined.get(&key) {
                self.out.errors.push(source.error(
                    "metadata.name",
                    format!(
                        "duplicate {kind} {}/{}: already defined at {first}",
                        meta.namespace, meta.name
                    ),
                ));
                return None;
            }
            self.defined.insert(key, here);
        }
        meta.filter(|_| ok)
    }

    fn typed<T: DeserializeOwned>(
        &mut self,
        source: &Arc<SourceDoc>,
        push: impl FnOnce(&mut ObjectSet, Object<T>),
    ) {
        let meta = self.envelope(source, &[]);
        let spec_value = source
            .doc
            .value
            .get("spec")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        match decode::<T>(source, "spec", &spec_value) {
            Ok(spec) => {
                if let Some(meta) = meta {
                    push(
                        &mut self.out.objects,
                        Object {
                            meta,
                            spec,
                            source: source.clone(),
                        },
                    );
                }
            }
            Err(errors) => self.out.errors.extend(errors),
        }
    }

    fn meta_only(&mut self, source: &Arc<SourceDoc>, push: impl FnOnce(&mut ObjectSet, Meta)) {
        if let Some(mut meta) = self.envelope(source, &[]) {
            // Namespaces are cluster-scoped: their name is what routes and policies refer to.
            meta.namespace = String::new();
            push(&mut self.out.objects, meta);
        }
    }

    fn policy(&mut self, source: &Arc<SourceDoc>) {
        let meta = self.envelope(source, &[]);
        let Some(spec) = source.doc.value.get("spec").cloned() else {
            self.out.errors.push(source.error(
                "spec",
                "Required value: a BackendTrafficPolicy needs a spec",
            ));
            return;
        };
        let mut raw = spec;
        strip_nulls(&mut raw);
        let checked = if self.options.crd_validation {
            read_spec(source, "spec", &raw).map(drop)
        } else {
            decode::<BackendTrafficPolicySpec>(source, "spec", &raw).map(drop)
        };
        if let Err(errors) = checked {
            self.out.errors.extend(errors);
            return;
        }
        let targets = match serde_json::from_value(raw.clone()) {
            Ok(targets) => targets,
            Err(e) => {
                self.out
                    .errors
                    .push(source.error("spec", format!("invalid targets: {e}")));
                return;
            }
        };
        if let Some(meta) = meta {
            let spec = PolicySpec { raw, targets };
            self.out.objects.policies.push(Object {
                meta,
                spec,
                source: source.clone(),
            });
        }
    }

    fn config_map(&mut self, source: &Arc<SourceDoc>) {
        let Some(meta) = self.envelope(source, &["data", "binaryData", "immutable"]) else {
            return;
        };
        let value = &source.doc.value;
        let mut data = BTreeMap::new();
        for (key, v) in value["data"].as_object().into_iter().flatten() {
            match v.as_str() {
                Some(text) => {
                    data.insert(key.clone(), Some(text.to_string()));
                }
                None => self.out.errors.push(source.error(
                    &format!("data.{key}"),
                    "ConfigMap data values must be strings",
                )),
            }
        }
        for key in value["binaryData"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            data.insert(key.clone(), None);
        }
        self.out.objects.config_maps.push((meta, data));
    }

    fn endpoint_slice(&mut self, source: &Arc<SourceDoc>) {
        let Some(meta) = self.envelope(source, &["addressType", "endpoints", "ports"]) else {
            return;
        };
        let Some(service) = meta.labels.get("kubernetes.io/service-name").cloned() else {
            self.out.errors.push(source.error(
                "metadata.labels",
                "an EndpointSlice needs the label kubernetes.io/service-name naming its Service",
            ));
            return;
        };
        let value = &source.doc.value;
        let ports: Vec<(Option<String>, u16)> = value["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let port = u16::try_from(p["port"].as_u64()?).ok()?;
                Some((p["name"].as_str().map(String::from), port))
            })
            .collect();
        for endpoint in value["endpoints"].as_array().into_iter().flatten() {
            // Kubernetes treats a missing `ready` as ready.
            if endpoint["conditions"]["ready"].as_bool() == Some(false) {
                continue;
            }
            for address in endpoint["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                self.out.objects.endpoint_slices.push(SliceEndpoint {
                    service: service.clone(),
                    namespace: meta.namespace.clone(),
                    address: address.to_string(),
                    ports: ports.clone(),
                });
            }
        }
    }

    fn scenario(&mut self, source: &Arc<SourceDoc>) {
        if self.envelope(source, &[]).is_none() {
            return;
        }
        self.out.objects.scenarios.push(source.clone());
        let manifests = source.doc.value["spec"]["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let base = source
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (i, item) in manifests.iter().enumerate() {
            let path = format!("spec.manifests[{i}]");
            match item.as_str() {
                Some(relative) => self.load_file(&base.join(relative), Some((source, path))),
                None => self.out.errors.push(
                    source.error(&path, "must be a file path relative to this scenario file"),
                ),
            }
        }
    }
}

/// Reads `metadata`: name required, namespace defaulting to `default`, labels, creation time.
fn parse_meta(source: &SourceDoc) -> Result<Meta, Vec<Diagnostic>> {
    let metadata = &source.doc.value["metadata"];
    let mut errors = Vec::new();
    let name = match metadata["name"].as_str() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => {
            errors.push(source.error("metadata.name", "Required value: every object needs a name"));
            String::new()
        }
    };
    let namespace = metadata["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let mut labels = BTreeMap::new();
    if let Some(map) = metadata["labels"].as_object() {
        for (key, value) in map {
            match value.as_str() {
                Some(v) => {
                    labels.insert(key.clone(), v.to_string());
                }
                None => errors.push(source.error(
                    &format!("metadata.labels.{key}"),
                    "label values must be strings",
                )),
            }
        }
    }
    let creation_timestamp = metadata["creationTimestamp"].as_str().map(String::from);
    let generation = metadata["generation"].as_i64().unwrap_or(0);
    if errors.is_empty() {
        Ok(Meta {
            name,
            namespace,
            labels,
            creation_timestamp,
            generation,
        })
    } else {
        Err(errors)
    }
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
