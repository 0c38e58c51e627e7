//! The speech encoder: Whisper's audio encoder (large-v3 in LLaMA-Omni).
//!
//! - [`config`]: the encoder dimensions, read from the checkpoint itself.
//! - [`encoder`]: the burn module and its loader (openai `.pt`, HF safetensors,
//!   or the `model.speech_encoder.*` copy inside the LLaMA-Omni shards).
//! - [`host`]: the same forward pass on host buffers (CPU backend, packed weights).

pub mod config;
pub mod encoder;
pub mod host;

pub use config::WhisperConfig;
pub use encoder::{WhisperEncoder, WhisperKeyLayout};
