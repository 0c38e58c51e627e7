//! omni-core: the four parts of LLaMA-Omni, written in burn and device-agnostic.
//!
//! - [`audio`]: audio files (WAV, FLAC, MP3, Ogg Vorbis), resampling to 16 kHz, Whisper's log-mel frontend.
//! - [`whisper`]: the Whisper encoder (speech encoder).
//! - [`adaptor`]: the speech adaptor (`EncoderProjectorConcat`).
//! - [`device`]: run-time device choice (`cpu`, `wgpu`, `cuda:N`).
//! - [`session`]: the conversation engine (push audio or text, pull events).
//!
//! No `unsafe` here: SIMD kernels live in `omni-kernels`, the C ABI in `omni-ffi`.

#![forbid(unsafe_code)]

pub mod adaptor;
pub mod audio;
pub mod bundle;
pub mod device;
pub mod error;
pub mod llama;
pub mod nn;
pub mod pipeline;
pub mod progress;
pub mod session;
pub mod speech_decoder;
pub mod streaming;
#[cfg(feature = "train")]
pub mod train;
pub mod vocoder;
pub mod weights;
pub mod whisper;

pub use bundle::{Omni, OmniOptions};
/// The burn version omni is built on, re-exported for callers handling tensors.
pub use burn;
pub use error::{AudioFileProblem, Error, ErrorKind, Result};
/// omni's CPU kernels (q8_0/q4_0 blocks, GEMV), re-exported for tests and benches.
pub use omni_kernels as kernels;
pub use session::{Event, Session, SessionOptions};
pub use streaming::Streaming;
