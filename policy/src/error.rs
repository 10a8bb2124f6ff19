//! Errors: every problem of a document with its path, and file loading.

use core::fmt;
use serde::Serialize;
use std::path::PathBuf;

/// One problem in a policy document.
///
/// `path` names the offending value: dotted field names from the root, with `[i]` for list
/// elements, e.g. `attack_blocker.detectors.syn_flood.count` or `exclusions[2].address`. An
/// unknown field's path is the path it would have had. Problems with the document as a whole
/// (syntax errors, a root that is not a mapping) have the empty path.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct PolicyError {
    /// Where the problem is; empty for the whole document.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(document): {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}

/// Every problem found in a document, in document order. Never empty when returned as an error.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(transparent)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems.
    pub fn iter(&self) -> core::slice::Iter<'_, PolicyError> {
        self.0.iter()
    }

    /// The problem at `path`, if any (handy in tests and API handlers).
    pub fn at(&self, path: &str) -> Option<&PolicyError> {
        self.0.iter().find(|e| e.path == path)
    }
}

impl<'a> IntoIterator for &'a PolicyErrors {
    type Item = &'a PolicyError;
    type IntoIter = core::slice::Iter<'a, PolicyError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for PolicyErrors {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Error from [`crate::Policy::load`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading policy {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid policy.
    #[error("invalid policy {}:\n{source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem.
        #[source]
        source: PolicyErrors,
    },
}
