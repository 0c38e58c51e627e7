//! The model parts of LLaMA-Omni, each named for its paper component and loaded
//! from the published checkpoint layouts:
//!
//! - [`whisper`]: the speech encoder (Whisper-large-v3's encoder).
//! - [`adaptor`]: the speech adaptor (`EncoderProjectorConcat`, k = 5).
//! - [`llama`]: the LLM (Llama 3.1), its KV cache, prompt template and tokenizer.
//! - [`speech_decoder`]: the streaming speech decoder (`SpeechGeneratorCTC`).
//! - [`vocoder`]: the unit HiFi-GAN vocoder and its chunked streaming.
//! - [`nn`]: the layers they share (projections, norms).

pub mod adaptor;
pub mod llama;
pub mod nn;
pub mod speech_decoder;
pub mod vocoder;
pub mod whisper;
