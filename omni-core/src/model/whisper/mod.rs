//! The speech encoder: Whisper's audio encoder (large-v3 in LLaMA-Omni).
//!
//! - [`config`]: the encoder dimensions, read from the checkpoint itself.
//! - [`encoder`]: the burn module and its loader (openai `.pt`, HF safetensors,
//!   or the `model.speech_encoder.*` copy inside the LLaMA-Omni shards).

pub mod config;
pub mod encoder;

pub use config::WhisperConfig;
pub use encoder::{WhisperEncoder, WhisperKeyLayout};
