//! Located diagnostics: every problem in an input file names the file, line, column and field path.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::yaml::{Document, Pos};

/// One problem in an input file, printed `file:line:col: field.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: Arc<PathBuf>,
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

/// Every problem found in a set of inputs, reported together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// A parsed document together with the file it came from, so errors can be located.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    pub file: Arc<PathBuf>,
    pub doc: Document,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.file.display(),
            self.pos.line,
            self.pos.col
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(other);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Ok when nothing was found, otherwise self as the error.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl SourceDoc {
    /// A diagnostic at the value found at `path` (or its closest located parent).
    pub fn error(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            pos: self.doc.pos(path),
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// A diagnostic about a whole file (unreadable, not YAML).
pub fn file_error(file: &Path, pos: Pos, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: Arc::new(file.to_path_buf()),
        pos,
        path: String::new(),
        message: message.into(),
    }
}
