//! `omni_set_log_callback`: routes the library's log records (the `log`
//! crate's, from omni-core: model loads, turn warnings and failures) to a C
//! callback, as whisper.cpp's `whisper_log_set`. Without a callback omni
//! prints nothing.

use std::ffi::{c_char, c_void, CString};
use std::sync::RwLock;

use crate::error::{guard, OmniStatus};

/// Severity of a log message.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum OmniLogLevel {
    /// Something failed.
    OMNI_LOG_ERROR = 1,
    /// Something the app should know (the same text as a WARNING event, or more).
    OMNI_LOG_WARN = 2,
    /// Progress of note (a model loaded).
    OMNI_LOG_INFO = 3,
    /// Details.
    OMNI_LOG_DEBUG = 4,
}

/// A log callback: `level`, a NUL-terminated UTF-8 message valid during the
/// call only, and the `user_data` given to `omni_set_log_callback`. It may be
/// called from any thread (omni's worker threads included), concurrently,
/// and must not unwind or call `omni_set_log_callback`.
pub type OmniLogFn = Option<
    unsafe extern "C" fn(level: OmniLogLevel, message: *const c_char, user_data: *mut c_void),
>;

struct Sink {
    f: unsafe extern "C" fn(OmniLogLevel, *const c_char, *mut c_void),
    user: *mut c_void,
}

// SAFETY: the callback contract (see `omni_set_log_callback`) makes the
// function and its user_data usable from any thread; omni never dereferences
// `user`, it only passes it back.
unsafe impl Send for Sink {}
// SAFETY: as above; the sink is only read to make calls.
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

struct CallbackLogger;

impl log::Log for CallbackLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("omni")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let sink = SINK.read().unwrap_or_else(|p| p.into_inner());
        let Some(s) = sink.as_ref() else { return };
        let level = match record.level() {
            log::Level::Error => OmniLogLevel::OMNI_LOG_ERROR,
            log::Level::Warn => OmniLogLevel::OMNI_LOG_WARN,
            log::Level::Info => OmniLogLevel::OMNI_LOG_INFO,
            _ => OmniLogLevel::OMNI_LOG_DEBUG,
        };
        let msg =
            CString::new(record.args().to_string().replace('\0', "\u{FFFD}")).unwrap_or_default();
        // SAFETY: the callback was given by the app for exactly this use; the
        // message is a valid NUL-terminated string for the call's duration.
        unsafe { (s.f)(level, msg.as_ptr(), s.user) };
    }

    fn flush(&self) {}
}

static LOGGER: CallbackLogger = CallbackLogger;

/// Routes omni's log messages to `callback` (NULL: stop; omni then prints
/// nothing), with messages up to `max_level`, an `OmniLogLevel` (e.g.
/// `OMNI_LOG_WARN`: errors and warnings; out of range: `OMNI_ERR_INVALID_ARGUMENT`). Replaces any earlier callback. `user_data` is passed back
/// untouched.
///
/// Errors: `OMNI_ERR_INVALID_ARGUMENT` for a bad `max_level`, or when another
/// logger of the Rust `log` crate was installed in this process first (a Rust
/// host app): omni's messages then go to that one. Threads: any; not from inside a callback.
///
/// Safety: `callback` is NULL or a function valid for as long as it is set, callable
/// from any thread with `user_data`.
#[no_mangle]
pub unsafe extern "C" fn omni_set_log_callback(
    callback: OmniLogFn,
    max_level: i32,
    user_data: *mut c_void,
) -> OmniStatus {
    guard(|| {
        let filter = match max_level {
            1 => log::LevelFilter::Error,
            2 => log::LevelFilter::Warn,
            3 => log::LevelFilter::Info,
            4 => log::LevelFilter::Debug,
            other => {
                return Err(crate::error::FfiError::Invalid(format!(
                    "max_level {other} is not an OmniLogLevel (1..=4)"
                )))
            }
        };
        let ours: &dyn log::Log = &LOGGER;
        let installed = log::set_logger(&LOGGER).is_ok() || std::ptr::addr_eq(log::logger(), ours);
        *SINK.write().unwrap_or_else(|p| p.into_inner()) =
            callback.map(|f| Sink { f, user: user_data });
        if !installed {
            return Err(crate::error::FfiError::Invalid(
                "another `log` logger is installed in this process: omni's messages go to it"
                    .into(),
            ));
        }
        log::set_max_level(if callback.is_some() {
            filter
        } else {
            log::LevelFilter::Off
        });
        Ok(())
    })
}
