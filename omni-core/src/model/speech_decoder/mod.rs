//! The streaming speech decoder (`SpeechGeneratorCTC`): LLM hidden states,
//! each upsampled λ times, through a small causal Llama stack, to CTC unit
//! predictions.
//!
//! - [`config`]: `ctc_decoder_config` "(layers,dim,heads,ffn)" and friends.
//! - [`generator`]: the burn module, its loader and both ways to run it: the
//!   reference's whole-sequence `predict`, and [`generator::UnitStream`], which
//!   feeds one hidden state at a time through a KV cache (O(n) instead of the
//!   reference's O(n²) re-run) and gives exactly the same units.
//! - [`ctc`]: greedy CTC post-processing (collapse repeats, drop blanks),
//!   incremental.

pub mod config;
pub mod ctc;
pub mod generator;

pub use config::CtcDecoderConfig;
pub use ctc::CtcCollapser;
pub use generator::{SpeechGenerator, UnitStream};
