//! A validated set of inputs: the files of one scenario (or manifest folder) loaded, checked and
//! resolved into the policy outcome that every command works from.

use std::path::PathBuf;

use super::crosscheck::crosscheck;
use super::diag::{Diagnostic, Diagnostics};
use super::load::{LoadOptions, files_in, load_files_with};
use super::spec::{Scenario, parse_scenario};
use crate::policy::objects::ObjectSet;
use crate::policy::resolve::{Resolution, resolve};
use crate::policy::topology::Topology;
use crate::policy::translate::translation_errors;

/// Loaded and checked inputs, with warnings for things that were skipped.
#[derive(Debug)]
pub struct Inputs {
    pub objects: ObjectSet,
    /// The `kind: Scenario` objects found, validated against the objects.
    pub scenarios: Vec<Scenario>,
    pub warnings: Vec<Diagnostic>,
}

/// The policy picture of a set of inputs.
#[derive(Debug)]
pub struct Analysis {
    pub topology: Topology,
    pub resolution: Resolution,
}

impl Inputs {
    /// Loads the files behind `paths` (folders contribute their YAML files) as one set.
    pub fn load(paths: &[PathBuf]) -> Result<Inputs, (Diagnostics, Vec<Diagnostic>)> {
        Inputs::load_with(paths, LoadOptions::default())
    }

    /// [`Inputs::load`] with explicit options.
    pub fn load_with(
        paths: &[PathBuf],
        options: LoadOptions,
    ) -> Result<Inputs, (Diagnostics, Vec<Diagnostic>)> {
        let mut files = Vec::new();
        let mut errors = Diagnostics::default();
        for path in paths {
            match files_in(path) {
                Ok(found) => files.extend(found),
                Err(e) => errors.push(e),
            }
        }
        let loaded = load_files_with(&files, options);
        errors.extend(loaded.errors);
        let mut scenarios = Vec::new();
        for doc in &loaded.objects.scenarios {
            match parse_scenario(doc, &doc.doc.value) {
                Ok(scenario) => scenarios.push(scenario),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() && !scenarios.is_empty() {
            let topology = Topology::build(&loaded.objects);
            for scenario in &scenarios {
                errors.extend(crosscheck(scenario, &topology));
            }
        }
        if errors.is_empty() {
            Ok(Inputs {
                objects: loaded.objects,
                scenarios,
                warnings: loaded.warnings,
            })
        } else {
            Err((errors, loaded.warnings))
        }
    }

    /// Resolves attachment, precedence and status of every policy.
    pub fn analyze(&self) -> Analysis {
        let topology = Topology::build(&self.objects);
        let resolution = resolve(
            &topology,
            &self.objects.policies,
            &self.objects.reference_grants,
            &|spec: &serde_json::Value, namespace: &str| {
                translation_errors(&self.objects, spec, namespace)
            },
        );
        Analysis {
            topology,
            resolution,
        }
    }
}
