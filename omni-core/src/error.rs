//! The one error type of `omni-core`.

use std::path::PathBuf;

/// Everything that can go wrong in `omni-core`. Every variant names what failed
/// (the file, the key, the value) so a user can act on the message alone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A required file is not where it should be.
    #[error("missing file {path} ({what})")]
    MissingFile { path: PathBuf, what: String },

    /// A checkpoint could not be parsed (truncated, wrong format).
    #[error("cannot read checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },

    /// A tensor the model needs is absent from the checkpoint.
    #[error("checkpoint {path} has no tensor `{key}`")]
    MissingKey { path: PathBuf, key: String },

    /// A tensor has the wrong shape.
    #[error("checkpoint {path}: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// A config file is missing a field or holds a bad value.
    #[error("config {path}: {reason}")]
    Config { path: PathBuf, reason: String },

    /// Audio input that cannot be used (empty, NaN, bad sample rate, bad WAV).
    #[error("invalid audio: {0}")]
    Audio(String),

    /// An argument out of its domain (bad shape, bad id, bad option).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The requested device/backend cannot be used.
    #[error("device `{requested}` is not available: {reason}")]
    Device { requested: String, reason: String },

    /// The session cannot go on (its worker died or stopped); create a new one.
    #[error("session failed: {0}")]
    SessionFailed(String),
}

/// Result alias of `omni-core`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
