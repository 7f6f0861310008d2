//! Diagnostics: what is wrong, where (file:line:col and the key or node), and what to do.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The text of a lab file, to turn byte spans into line and column.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

/// One problem in a lab file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub pos: Option<(usize, usize)>,
    /// The key, table or node at fault, e.g. `nodes.worker-2.bmc_ip`.
    pub key: String,
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diag {
    pub fn at(source: &Source, span: Option<Range<usize>>, key: impl Into<String>) -> DiagBuilder {
        let pos = span
            .filter(|s| !(s.start == 0 && s.end == 0))
            .map(|s| source.line_col(s.start));
        DiagBuilder {
            file: source.path.clone(),
            pos,
            key: key.into(),
        }
    }

    pub fn file_level(file: &Path, message: impl Into<String>, help: Option<String>) -> Diag {
        Diag {
            file: file.to_path_buf(),
            pos: None,
            key: String::new(),
            message: message.into(),
            help,
        }
    }
}

pub struct DiagBuilder {
    file: PathBuf,
    pos: Option<(usize, usize)>,
    key: String,
}

impl DiagBuilder {
    pub fn msg(self, message: impl Into<String>, help: impl Into<String>) -> Diag {
        let help = help.into();
        Diag {
            file: self.file,
            pos: self.pos,
            key: self.key,
            message: message.into(),
            help: (!help.is_empty()).then_some(help),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.pos {
            write!(f, ":{line}:{col}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": {}: {}", self.key, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a lab file; validation reports them all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diag>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
