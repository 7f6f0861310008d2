//! The one error type at the command boundary.
//!
//! Inside a command, code uses anyhow with `.context(...)` or the typed errors of its module
//! ([`crate::engine::EngineError`], [`crate::lab::Diagnostics`], ...). What a command returns is
//! an [`Error`]: each variant is one way a run can end, and knows its exit code and the help line
//! printed under the message, so `main.rs` only prints and exits. (cargo-nextest keeps its exit
//! codes the same way, one per outcome.)
//!
//! | code | variants |
//! |---|---|
//! | 0 | success |
//! | 1 | [`Error::Engine`], [`Error::Build`], [`Error::NotReady`], [`Error::Fetch`], [`Error::Failed`] |
//! | 2 | [`Error::Invalid`], [`Error::Usage`] |
//! | 130 | [`Error::Interrupted`] (Ctrl-C, as a shell reports SIGINT) |

use std::fmt;

use crate::engine::EngineError;
use crate::lab::Diagnostics;

/// A runtime failure: the engine, a build, a service or node that did not come up.
pub const EXIT_FAILURE: u8 = 1;
/// An invalid lab file or invalid usage.
pub const EXIT_INVALID: u8 = 2;
/// Interrupted by Ctrl-C (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How a command failed.
#[derive(Debug)]
pub enum Error {
    /// The lab file is invalid: every problem with file, line and key. `help` adds a way out
    /// that only the command knows (e.g. `lab down --name LAB` works without a file).
    Invalid {
        diagnostics: Diagnostics,
        help: Option<String>,
    },
    /// The command line asks for something that cannot be (an unknown node, a bad combination).
    Usage { message: String, help: String },
    /// The Docker engine failed or could not be reached.
    Engine(anyhow::Error),
    /// Building one of lab's images (or an asset built through the engine) failed.
    Build(anyhow::Error),
    /// Services, BMCs or nodes did not reach the wanted state in time.
    NotReady(String),
    /// Ctrl-C: what was done so far.
    Interrupted(String),
    /// Downloading or verifying an asset failed.
    Fetch(anyhow::Error),
    /// Any other runtime failure, with its context.
    Failed(anyhow::Error),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid { .. } | Error::Usage { .. } => EXIT_INVALID,
            Error::Interrupted(_) => EXIT_INTERRUPTED,
            Error::Engine(_)
            | Error::Build(_)
            | Error::NotReady(_)
            | Error::Fetch(_)
            | Error::Failed(_) => EXIT_FAILURE,
        }
    }

    /// The line printed under the message: what to do next.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Invalid { help, .. } => help.clone(),
            Error::Usage { help, .. } => Some(help.clone()),
            // Engine and fetch errors name their own way out (start the engine, free the port,
            // check base_url, ...), per object.
            Error::Engine(_) | Error::Fetch(_) | Error::Failed(_) => None,
            Error::Build(_) => Some(
                "fix the failing step shown above; `lab up` builds again from the first changed step"
                    .into(),
            ),
            Error::NotReady(_) => Some(
                "see `lab status` and `lab logs NAME`; raise --timeout if the machine is slow"
                    .into(),
            ),
            Error::Interrupted(_) => Some(
                "what was made carries the lab's labels: run `lab up` again to finish, or `lab down` to remove it"
                    .into(),
            ),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Error {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    /// An invalid file, with a way out the diagnostics do not know.
    pub fn invalid_with(diagnostics: Diagnostics, help: impl Into<String>) -> Error {
        Error::Invalid {
            diagnostics,
            help: Some(help.into()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Diagnostics print their own `error:` lines, one per problem.
            Error::Invalid { diagnostics, .. } => write!(f, "{diagnostics}")?,
            Error::Usage { message, .. } => write!(f, "error: {message}")?,
            Error::Engine(e) | Error::Build(e) | Error::Fetch(e) | Error::Failed(e) => {
                write!(f, "error: {e:#}")?
            }
            Error::NotReady(m) => write!(f, "error: {m}")?,
            Error::Interrupted(m) => write!(f, "error: interrupted: {m}")?,
        }
        if let Some(help) = self.help() {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Diagnostics> for Error {
    fn from(diagnostics: Diagnostics) -> Error {
        Error::Invalid {
            diagnostics,
            help: None,
        }
    }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Error {
        match e {
            EngineError::BuildFailed { .. } | EngineError::ImageMissing { .. } => {
                Error::Build(e.into())
            }
            other => Error::Engine(other.into()),
        }
    }
}

impl From<anyhow::Error> for Error {
    /// An engine error under context stays an engine error (so its help applies); anything else
    /// is a plain runtime failure. A [`Diagnostics`] never arrives here: commands convert it
    /// with `?` before adding context, so a file error keeps exit code 2 and its own help.
    fn from(e: anyhow::Error) -> Error {
        match e.downcast_ref::<EngineError>() {
            Some(EngineError::BuildFailed { .. } | EngineError::ImageMissing { .. }) => {
                Error::Build(e)
            }
            Some(_) => Error::Engine(e),
            None => Error::Failed(e),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Failed(e.into())
    }
}

/// What commands return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::Diag;

    fn diags() -> Diagnostics {
        Diagnostics(vec![Diag::file_level(
            std::path::Path::new("lab.toml"),
            "cannot read lab.toml: No such file or directory",
            None,
        )])
    }

    #[test]
    fn every_variant_has_its_exit_code() {
        assert_eq!(Error::from(diags()).exit_code(), 2);
        assert_eq!(Error::usage("x", "y").exit_code(), 2);
        assert_eq!(Error::NotReady("x".into()).exit_code(), 1);
        assert_eq!(Error::Interrupted("x".into()).exit_code(), 130);
        let unreachable = EngineError::Unreachable {
            endpoint: "unix:///nowhere".into(),
            reason: "no socket".into(),
        };
        let e = Error::from(anyhow::Error::new(unreachable).context("listing containers"));
        assert!(matches!(e, Error::Engine(_)), "{e:?}");
        assert_eq!(e.exit_code(), 1);
        let build = EngineError::BuildFailed {
            tag: "t".into(),
            message: "step 3".into(),
            output: vec![],
        };
        assert!(matches!(Error::from(build), Error::Build(_)));
    }

    #[test]
    fn a_file_error_keeps_the_commands_own_help() {
        let e = Error::invalid_with(diags(), "or name the lab: `lab down --name LAB`");
        let text = e.to_string();
        assert!(text.starts_with("error: lab.toml: cannot read"), "{text}");
        assert!(
            text.ends_with("\n  help: or name the lab: `lab down --name LAB`"),
            "{text}"
        );
        assert_eq!(e.exit_code(), 2);
    }
}
