//! omni-core: LLaMA-Omni in burn, device-agnostic: load the model once ([`Omni`]),
//! then talk to it through [`Session`]s (push audio or text, pull events).
//!
//! - [`Omni`], [`OmniOptions`]: the loaded model (immutable, shared by sessions).
//! - [`Session`], [`SessionOptions`], [`Event`]: the conversation engine.
//! - [`model`]: the parts, by their paper names (Whisper encoder, speech adaptor,
//!   Llama 3.1, CTC speech decoder, unit HiFi-GAN), for callers that run one alone.
//! - [`audio`]: audio files (WAV, FLAC, MP3, Ogg Vorbis), resampling to 16 kHz,
//!   Whisper's log-mel frontend.
//! - [`weights`]: checkpoint readers (safetensors, PyTorch) and run dtypes.
//! - [`Streaming`]: the `push`/`flush`/`reset` verbs every incremental stage shares.
//! - [`error`]: [`Error`] and its [`ErrorKind`]s.
//! - `train` (cargo feature `train`): the two training stages.
//!
//! No `unsafe` here: SIMD kernels live in `omni-kernels`, the C ABI in `omni-ffi`.

#![forbid(unsafe_code)]

pub mod audio;
mod bundle;
mod device;
pub mod error;
pub mod model;
mod pipeline;
mod progress;
mod session;
mod streaming;
#[cfg(test)]
mod test_util;
#[cfg(feature = "train")]
pub mod train;
pub mod weights;

pub use bundle::{find_speech_encoder, Omni, OmniOptions};
/// The burn version omni is built on, re-exported for callers handling tensors.
pub use burn;
pub use device::{compiled_backends, parse_device, Device};
pub use error::{AudioFileProblem, Error, ErrorKind, Result};
/// omni's CPU kernels (q8_0/q4_0 blocks, GEMV), re-exported for tests and benches.
pub use omni_kernels as kernels;
pub use pipeline::{OfflineAnswer, SpeechEmbeddings};
pub use progress::{Progress, ProgressFn};
pub use session::{
    EndpointOptions, ErrorCode, Event, History, HistoryTurn, InterruptReason, Session,
    SessionOptions, Timings, NO_TOKEN,
};
pub use streaming::Streaming;
