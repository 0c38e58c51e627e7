//! Status codes, the thread-local error message, the panic boundary, and the
//! version getters.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Version of the C ABI described by this header. `omni_abi_version()` returns
/// the library's; an application should refuse to run when they differ.
/// Later versions only append fields to structs and add functions.
pub const OMNI_ABI_VERSION: u32 = 2;

/// The result of every fallible omni function. `OMNI_OK` is 0; on any other
/// value, `omni_last_error()` tells what went wrong in words.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum OmniStatus {
    /// Success.
    OMNI_OK = 0,
    /// A required pointer argument was NULL.
    OMNI_ERR_NULL_ARGUMENT = 1,
    /// An argument or option is out of its domain (bad value, bad UTF-8,
    /// misaligned buffer, too many samples in one push, ...).
    OMNI_ERR_INVALID_ARGUMENT = 2,
    /// An options struct's `struct_size` is smaller than this library's
    /// struct: set it to `sizeof` the struct before use.
    OMNI_ERR_STRUCT_SIZE = 3,
    /// A file could not be found or read.
    OMNI_ERR_IO = 4,
    /// A model file is malformed (config, checkpoint, missing tensor, wrong shape).
    OMNI_ERR_MODEL = 5,
    /// Audio that cannot be used (NaN/inf samples, sample rate outside 1000..=384000 Hz).
    OMNI_ERR_AUDIO = 6,
    /// The requested device/backend is not available in this build or on this machine.
    OMNI_ERR_DEVICE = 7,
    /// The session failed earlier (an internal error); only `omni_session_free`
    /// is left to call on it.
    OMNI_ERR_SESSION_FAILED = 8,
    /// An internal error (a panic caught at the API boundary). A session whose
    /// call returned this is marked failed.
    OMNI_ERR_INTERNAL = 9,
}

/// Everything that can fail at the C boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FfiError {
    #[error("argument `{0}` is NULL")]
    Null(&'static str),
    #[error("`{what}.struct_size` is {got}, this library needs at least {need}: set it to sizeof({what})")]
    StructSize {
        what: &'static str,
        got: usize,
        need: usize,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the session failed earlier ({0}); free it with omni_session_free and create a new one"
    )]
    SessionFailed(String),
    #[error("internal error: {0}")]
    Panic(String),
    #[error(transparent)]
    Core(#[from] omni_core::Error),
}

impl FfiError {
    pub(crate) fn status(&self) -> OmniStatus {
        use omni_core::ErrorKind;
        match self {
            FfiError::Null(_) => OmniStatus::OMNI_ERR_NULL_ARGUMENT,
            FfiError::StructSize { .. } => OmniStatus::OMNI_ERR_STRUCT_SIZE,
            FfiError::Invalid(_) => OmniStatus::OMNI_ERR_INVALID_ARGUMENT,
            FfiError::SessionFailed(_) => OmniStatus::OMNI_ERR_SESSION_FAILED,
            FfiError::Panic(_) => OmniStatus::OMNI_ERR_INTERNAL,
            FfiError::Core(e) => match e.kind() {
                ErrorKind::Io => OmniStatus::OMNI_ERR_IO,
                ErrorKind::Model => OmniStatus::OMNI_ERR_MODEL,
                ErrorKind::Audio => OmniStatus::OMNI_ERR_AUDIO,
                ErrorKind::InvalidInput => OmniStatus::OMNI_ERR_INVALID_ARGUMENT,
                ErrorKind::Device => OmniStatus::OMNI_ERR_DEVICE,
                ErrorKind::SessionFailed => OmniStatus::OMNI_ERR_SESSION_FAILED,
                _ => OmniStatus::OMNI_ERR_INTERNAL,
            },
        }
    }
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// A C string of `s`; interior NULs (which C cannot hold) become U+FFFD.
pub(crate) fn to_cstring(s: &str) -> CString {
    match CString::new(s) {
        Ok(c) => c,
        Err(_) => CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default(),
    }
}

/// Longest message kept, in characters: a backstop behind the per-echo cuts of
/// `omni_core::error::clip`, so no message can grow with its input.
const MAX_MESSAGE_CHARS: usize = 4096;

fn set_last_error(msg: &str) {
    let c = to_cstring(&omni_core::error::clip(msg, MAX_MESSAGE_CHARS));
    // `try_with`/`try_borrow_mut`: never panic, even during thread teardown.
    let _ = LAST_ERROR.try_with(|e| {
        if let Ok(mut slot) = e.try_borrow_mut() {
            *slot = c;
        }
    });
}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic inside omni".to_string()
    }
}

/// Runs `f` behind the panic boundary: clears the thread's last error, turns
/// an `Err` into its status (recording its message) and a panic into
/// `OMNI_ERR_INTERNAL`. A success clears the message again after `f`: a call
/// made from inside `f` (a progress callback calling omni) may have set it.
/// No unwind leaves this function.
pub(crate) fn guard(f: impl FnOnce() -> FfiResult<()>) -> OmniStatus {
    set_last_error("");
    let outcome = catch_unwind(AssertUnwindSafe(f));
    let err = match outcome {
        Ok(Ok(())) => {
            set_last_error("");
            return OmniStatus::OMNI_OK;
        }
        Ok(Err(e)) => e,
        Err(payload) => FfiError::Panic(panic_message(payload.as_ref())),
    };
    // Formatting a message cannot unwind out of here either.
    let msg = catch_unwind(AssertUnwindSafe(|| err.to_string()))
        .unwrap_or_else(|_| "internal error".into());
    set_last_error(&msg);
    err.status()
}

static EMPTY: &[u8; 1] = b"\0";

/// The message of the most recent failed call on the calling thread, as
/// NUL-terminated UTF-8; `""` when the most recent status-returning call on
/// this thread succeeded. Never NULL.
///
/// Ownership: the string belongs to omni (do not free it). It stays valid
/// until the next omni call on the same thread (copy it to keep it). Each
/// thread has its own message, so an error of a push made on an audio thread
/// is read on that thread.
///
/// Threads: any.
#[no_mangle]
pub extern "C" fn omni_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|e| {
            e.try_borrow()
                .map(|c| c.as_ptr())
                .unwrap_or(EMPTY.as_ptr().cast())
        })
        .unwrap_or(EMPTY.as_ptr().cast())
}

/// The name of a status code (`"OMNI_ERR_IO"`, ...), or `"OMNI_ERR_UNKNOWN"`
/// for a value this library does not define. Static string: never freed,
/// valid for the life of the process. Threads: any.
#[no_mangle]
pub extern "C" fn omni_status_str(status: i32) -> *const c_char {
    let s: &'static [u8] = match status {
        0 => b"OMNI_OK\0",
        1 => b"OMNI_ERR_NULL_ARGUMENT\0",
        2 => b"OMNI_ERR_INVALID_ARGUMENT\0",
        3 => b"OMNI_ERR_STRUCT_SIZE\0",
        4 => b"OMNI_ERR_IO\0",
        5 => b"OMNI_ERR_MODEL\0",
        6 => b"OMNI_ERR_AUDIO\0",
        7 => b"OMNI_ERR_DEVICE\0",
        8 => b"OMNI_ERR_SESSION_FAILED\0",
        9 => b"OMNI_ERR_INTERNAL\0",
        _ => b"OMNI_ERR_UNKNOWN\0",
    };
    s.as_ptr().cast()
}

/// The library version (`"0.1.0"`), a static NUL-terminated string: never
/// freed, valid for the life of the process. Threads: any.
#[no_mangle]
pub extern "C" fn omni_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The C ABI version of the loaded library; compare it with the header's
/// `OMNI_ABI_VERSION`. Threads: any.
#[no_mangle]
pub extern "C" fn omni_abi_version() -> u32 {
    OMNI_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: omni_last_error never returns NULL and its string is valid
        // until the next omni call on this thread.
        unsafe { CStr::from_ptr(omni_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn guard_maps_errors_and_panics() {
        assert_eq!(guard(|| Ok(())), OmniStatus::OMNI_OK);
        assert_eq!(last(), "");
        assert_eq!(
            guard(|| Err(FfiError::Null("model_dir"))),
            OmniStatus::OMNI_ERR_NULL_ARGUMENT
        );
        assert!(last().contains("model_dir"), "{}", last());
        let st = guard(|| panic!("boom {}", 42));
        assert_eq!(st, OmniStatus::OMNI_ERR_INTERNAL);
        assert!(last().contains("boom 42"), "{}", last());
        assert_eq!(guard(|| Ok(())), OmniStatus::OMNI_OK);
        assert_eq!(last(), "", "a successful call clears the message");
    }

    #[test]
    fn a_success_leaves_no_message_even_when_a_nested_call_failed() {
        let st = guard(|| {
            // As a progress callback calling omni during omni_model_load.
            assert_eq!(
                guard(|| Err(FfiError::Null("inner"))),
                OmniStatus::OMNI_ERR_NULL_ARGUMENT
            );
            assert!(last().contains("inner"));
            Ok(())
        });
        assert_eq!(st, OmniStatus::OMNI_OK);
        assert_eq!(last(), "");
    }

    #[test]
    fn a_message_never_grows_with_its_input() {
        let huge = "q".repeat(1 << 20);
        assert_eq!(
            guard(|| Err(FfiError::Invalid(huge.clone()))),
            OmniStatus::OMNI_ERR_INVALID_ARGUMENT
        );
        assert!(
            last().len() < MAX_MESSAGE_CHARS + 32,
            "{} bytes",
            last().len()
        );
        assert!(
            last().ends_with("(1048576 bytes)"),
            "{}",
            last().chars().rev().take(80).collect::<String>()
        );
    }

    #[test]
    fn missing_files_are_io_and_malformed_files_are_model() {
        let missing: FfiError = omni_core::Error::MissingFile {
            path: "/nonexistent/whisper.pt".into(),
            what: "x".into(),
        }
        .into();
        assert_eq!(missing.status(), OmniStatus::OMNI_ERR_IO);
        let bad: FfiError = omni_core::Error::Checkpoint {
            path: "w.pt".into(),
            reason: "x".into(),
        }
        .into();
        assert_eq!(bad.status(), OmniStatus::OMNI_ERR_MODEL);
        let st = guard(|| {
            omni_core::model::whisper::WhisperConfig::from_openai_pt(std::path::Path::new(
                "/nonexistent/whisper.pt",
            ))?;
            Ok(())
        });
        assert_eq!(st, OmniStatus::OMNI_ERR_IO, "{}", last());
    }

    #[test]
    fn core_errors_map_to_status() {
        let e: FfiError = omni_core::Error::Audio("nan".into()).into();
        assert_eq!(e.status(), OmniStatus::OMNI_ERR_AUDIO);
        let e: FfiError = omni_core::Error::Device {
            requested: "tpu".into(),
            reason: "no".into(),
        }
        .into();
        assert_eq!(e.status(), OmniStatus::OMNI_ERR_DEVICE);
    }

    #[test]
    fn strings_are_static_and_terminated() {
        // SAFETY: both return static NUL-terminated strings.
        let (v, s) = unsafe {
            (
                CStr::from_ptr(omni_version()),
                CStr::from_ptr(omni_status_str(6)),
            )
        };
        assert_eq!(v.to_str().ok(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(s.to_str().ok(), Some("OMNI_ERR_AUDIO"));
        // SAFETY: as above.
        let u = unsafe { CStr::from_ptr(omni_status_str(-5)) };
        assert_eq!(u.to_str().ok(), Some("OMNI_ERR_UNKNOWN"));
        assert_eq!(to_cstring("a\0b").to_str().ok(), Some("a\u{FFFD}b"));
    }
}
