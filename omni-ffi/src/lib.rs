//! C ABI for omni: `libomni.so` (cdylib) and `libomni.a` (staticlib).
//!
//! The header `include/omni.h` is generated from this crate by cbindgen
//! (`scripts/gen_header.sh`, version pinned in `omni-ffi/cbindgen.toml`); the
//! doc comments below are copied into it, so they are the C documentation.
//!
//! Shape (whisper.h / sherpa-onnx c-api style): an opaque, shared
//! [`OmniModel`] and per-conversation [`OmniSession`]s; options structs with a
//! `struct_size` field; `OmniStatus` return codes plus a thread-local message
//! ([`omni_last_error`]); events handed to the caller, who frees them with
//! [`omni_event_free`].
//!
//! Hygiene: every entry point checks its pointers, runs its body inside
//! `catch_unwind` (no unwind crosses into C), and never panics on bad input.
//! All `unsafe` of omni lives in this crate, each block with its `SAFETY:`.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
// Each exported function states its contract in a "Safety:" paragraph rather
// than a `# Safety` heading: these doc comments become the C header, where a
// Rust heading reads as noise.
#![allow(clippy::missing_safety_doc)]

mod args;
mod audio;
mod error;
mod event;
mod log;
mod model;
mod options;
mod session;

pub use audio::{omni_audio_free, omni_audio_read, OmniAudio};
pub use error::{
    omni_abi_version, omni_last_error, omni_status_str, omni_version, OmniStatus, OMNI_ABI_VERSION,
};
pub use event::{
    OmniErrorCode, OmniEvent, OmniEventType, OmniInterruptReason, OmniTimings, OMNI_NO_TOKEN,
};
pub use log::{omni_set_log_callback, OmniLogFn, OmniLogLevel};
pub use model::{
    omni_model_free, omni_model_load, omni_model_options_default, OmniModel, OmniProgressFn,
};
pub use options::{OmniDType, OmniModelOptions, OmniSessionOptions};
pub use session::{
    omni_event_free, omni_session_cancel, omni_session_end_turn, omni_session_free,
    omni_session_is_busy, omni_session_new, omni_session_options_default, omni_session_played,
    omni_session_poll, omni_session_push_f32, omni_session_push_i16, omni_session_push_text,
    omni_session_reset, OmniSession,
};
