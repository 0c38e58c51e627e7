//! The one error type of `omni-core`, its [`ErrorKind`], and [`clip`], the one
//! helper that shortens user input echoed in a message.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in `omni-core`. Every variant names what failed
/// (the file, the key, the value) so a user can act on the message alone.
/// Echoed paths and values are cut by [`clip`], so a message stays short
/// whatever the input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", clip_path(.path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A required file is not where it should be.
    #[error("missing file {} ({what})", clip_path(.path))]
    MissingFile { path: PathBuf, what: String },

    /// A checkpoint could not be parsed (truncated, wrong format).
    #[error("cannot read checkpoint {}: {reason}", clip_path(.path))]
    Checkpoint { path: PathBuf, reason: String },

    /// A tensor the model needs is absent from the checkpoint.
    #[error("checkpoint {} has no tensor `{key}`", clip_path(.path))]
    MissingKey { path: PathBuf, key: String },

    /// A tensor has the wrong shape.
    #[error("checkpoint {}: tensor `{key}` has shape {found:?}, expected {expected:?}", clip_path(.path))]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// A config file is missing a field or holds a bad value.
    #[error("config {}: {reason}", clip_path(.path))]
    Config { path: PathBuf, reason: String },

    /// Audio input that cannot be used (empty, NaN, bad sample rate, bad or
    /// unsupported audio file).
    #[error("invalid audio: {0}")]
    Audio(String),

    /// An audio file that cannot be decoded (see [`crate::audio::read_audio`]).
    #[error("cannot read audio file {}: {problem}", clip_path(.path))]
    AudioFile {
        path: PathBuf,
        problem: AudioFileProblem,
    },

    /// An argument out of its domain (bad shape, bad id, bad option).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The requested device/backend cannot be used.
    #[error("device `{}` is not available: {reason}", clip(.requested, ECHO_CHARS))]
    Device { requested: String, reason: String },

    /// The session cannot go on (its worker died or stopped); create a new one.
    #[error("session failed: {0}")]
    SessionFailed(String),
}

/// Why an audio file cannot be decoded ([`Error::AudioFile`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioFileProblem {
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// Not a container omni reads.
    #[error("unknown format (omni reads WAV, FLAC, MP3 and Ogg Vorbis)")]
    UnknownFormat,
    /// A container omni reads, holding a codec it does not decode (Opus, ...).
    #[error("unsupported codec {0} (omni decodes PCM WAV, FLAC, MP3 and Vorbis)")]
    UnsupportedCodec(String),
    /// The file ends early: fewer frames than its header declares, or (Ogg)
    /// a last page cut short or without the end-of-stream flag. Says which.
    #[error("truncated: {0}")]
    Truncated(String),
    /// Undecodable data.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A valid file holding no samples.
    #[error("no audio samples")]
    NoAudio,
}

/// What kind of failure an [`Error`] is. The C ABI maps each kind to one status
/// (`Io` → `OMNI_ERR_IO`, `Model` → `OMNI_ERR_MODEL`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file is missing or cannot be read or written.
    Io,
    /// A model file is present and readable but malformed (config, checkpoint,
    /// missing tensor, wrong shape).
    Model,
    /// Audio that cannot be used.
    Audio,
    /// An argument out of its domain.
    InvalidInput,
    /// The requested device/backend cannot be used.
    Device,
    /// The session cannot go on (its worker died or it is closed).
    SessionFailed,
}

/// Result alias of `omni-core`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An error opening or reading `path`: [`Error::MissingFile`] (saying it is
    /// `what`) when it does not exist, else [`Error::Io`]. Both are [`ErrorKind::Io`].
    pub fn file(path: &Path, what: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile {
                path: path.to_path_buf(),
                what: what.to_string(),
            }
        } else {
            Error::io(path, source)
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::MissingFile { .. } => ErrorKind::Io,
            Error::Checkpoint { .. }
            | Error::MissingKey { .. }
            | Error::ShapeMismatch { .. }
            | Error::Config { .. } => ErrorKind::Model,
            Error::Audio(_) | Error::AudioFile { .. } => ErrorKind::Audio,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Device { .. } => ErrorKind::Device,
            Error::SessionFailed(_) => ErrorKind::SessionFailed,
        }
    }
}

/// Checks that `path` is a file this process can open for reading, before a
/// parser that would report a missing or unreadable file as a malformed one
/// (burn-store's PyTorch reader) gets it. Errors are [`ErrorKind::Io`].
pub fn check_readable(path: &Path, what: &str) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| Error::file(path, what, e))?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                format!("is a folder, expected a {what} file"),
            ),
        ));
    }
    Ok(())
}

/// Characters of a user-given value (device string, option text) echoed in a message.
pub const ECHO_CHARS: usize = 64;

/// Characters of a user-given path echoed in a message (more than [`ECHO_CHARS`]:
/// a path is only useful whole, and the OS refuses those over 4096 bytes anyway).
pub const ECHO_PATH_CHARS: usize = 1024;

/// `s` as echoed in an error message: unchanged up to `max_chars` characters,
/// else its first `max_chars` characters and `…(N bytes)`, N being `s`'s length.
/// The one helper for every echo of user input, so a 1 MiB argument gives a
/// short message.
pub fn clip(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some((cut, _)) => Cow::Owned(format!("{}…({} bytes)", &s[..cut], s.len())),
    }
}

/// A path as echoed in an error message ([`clip`] at [`ECHO_PATH_CHARS`]).
pub fn clip_path(p: &Path) -> String {
    clip(&p.display().to_string(), ECHO_PATH_CHARS).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_input_and_cuts_long_input_to_a_prefix_and_its_size() {
        assert_eq!(clip("cuda:0", ECHO_CHARS), "cuda:0");
        let exact = "x".repeat(ECHO_CHARS);
        assert_eq!(clip(&exact, ECHO_CHARS), exact);
        let long = "é".repeat(1 << 19); // 1 MiB of two-byte characters
        let c = clip(&long, ECHO_CHARS);
        assert_eq!(c, format!("{}…({} bytes)", "é".repeat(ECHO_CHARS), 1 << 20));
    }

    #[test]
    fn a_huge_device_string_gives_a_short_message() {
        let e = Error::Device {
            requested: "z".repeat(1 << 20),
            reason: "unknown backend".into(),
        };
        let msg = e.to_string();
        assert!(msg.len() < 200, "{} bytes", msg.len());
        assert!(msg.contains("(1048576 bytes)"), "{msg}");
    }

    #[test]
    fn a_huge_path_is_cut_in_every_file_error() {
        let p = PathBuf::from("/".to_string() + &"d".repeat(1 << 20));
        let errs = [
            Error::io(&p, std::io::Error::other("x")),
            Error::MissingFile {
                path: p.clone(),
                what: "x".into(),
            },
            Error::Checkpoint {
                path: p.clone(),
                reason: "x".into(),
            },
            Error::MissingKey {
                path: p.clone(),
                key: "k".into(),
            },
            Error::Config {
                path: p.clone(),
                reason: "x".into(),
            },
        ];
        for e in errs {
            let msg = e.to_string();
            assert!(msg.len() < ECHO_PATH_CHARS + 100, "{} bytes", msg.len());
        }
    }

    #[test]
    fn missing_and_unreadable_files_are_io_errors() {
        let dir = std::env::temp_dir().join(format!("omni-err-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = check_readable(&dir.join("nope.pt"), "checkpoint").unwrap_err();
        assert!(matches!(missing, Error::MissingFile { .. }), "{missing:?}");
        assert_eq!(missing.kind(), ErrorKind::Io);
        let empty = check_readable(Path::new(""), "checkpoint").unwrap_err();
        assert_eq!(empty.kind(), ErrorKind::Io, "{empty:?}");
        let folder = check_readable(&dir, "checkpoint").unwrap_err();
        assert_eq!(folder.kind(), ErrorKind::Io, "{folder:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_variant_has_the_kind_its_status_needs() {
        let p = PathBuf::from("f");
        assert_eq!(
            Error::Checkpoint {
                path: p.clone(),
                reason: String::new()
            }
            .kind(),
            ErrorKind::Model
        );
        assert_eq!(
            Error::Config {
                path: p,
                reason: String::new()
            }
            .kind(),
            ErrorKind::Model
        );
        assert_eq!(Error::Audio(String::new()).kind(), ErrorKind::Audio);
        assert_eq!(
            Error::InvalidInput(String::new()).kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            Error::Device {
                requested: String::new(),
                reason: String::new()
            }
            .kind(),
            ErrorKind::Device
        );
    }
}
