//! Collects validation errors for one document, each located by its field path.

use super::diag::{Diagnostic, SourceDoc};

/// Gathers every rule violation found in one document; nothing stops at the first.
#[derive(Debug)]
pub struct Checker<'a> {
    doc: &'a SourceDoc,
    errors: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub fn new(doc: &'a SourceDoc) -> Self {
        Checker {
            doc,
            errors: Vec::new(),
        }
    }

    /// Records that the value at `path` (for example `spec.retry.numRetries`) breaks a rule.
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(self.doc.error(path, message));
    }

    /// Records an error when `ok` is false.
    pub fn ensure(&mut self, ok: bool, path: &str, message: impl Into<String>) {
        if !ok {
            self.error(path, message);
        }
    }

    /// The raw JSON value at `path`, for checks that need what the user wrote.
    pub fn doc(&self) -> &'a SourceDoc {
        self.doc
    }

    pub fn into_errors(self) -> Vec<Diagnostic> {
        self.errors
    }
}
