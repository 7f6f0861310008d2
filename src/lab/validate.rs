//! RawConfig -> Lab: expansion, allocation and every check, collecting all problems.

use std::path::Path;

use super::{Diagnostics, Lab};

/// Reads and validates a lab file.
pub fn load(path: &Path) -> Result<Lab, Diagnostics> {
    let _ = path;
    todo!("being written")
}

/// Validates lab file text; `path` is only used in messages and to resolve relative paths.
pub fn from_str(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Lab, Diagnostics> {
    let _ = (path, text, env);
    todo!("being written")
}
