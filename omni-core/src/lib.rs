//! omni-core: the four parts of LLaMA-Omni, written in burn and device-agnostic.
//!
//! - [`audio`]: WAV reading, resampling to 16 kHz, Whisper's log-mel frontend.
//! - [`whisper`]: the Whisper encoder (speech encoder).
//! - [`adaptor`]: the speech adaptor (`EncoderProjectorConcat`).
//! - [`device`]: run-time device choice (`cpu`, `wgpu`, `cuda:N`).

pub mod adaptor;
pub mod audio;
pub mod device;
pub mod error;
pub mod llama;
pub mod nn;
pub mod progress;
pub mod speech_decoder;
pub mod weights;
pub mod whisper;

pub use error::{Error, Result};
/// The burn version omni is built on, re-exported for callers handling tensors.
pub use burn;
