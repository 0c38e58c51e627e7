//! One streaming interface for the incremental stages of the answer path, after
//! moshi's `StreamingModule` (`rust/moshi-core/src/streaming.rs`): the same three
//! verbs on every stage, so a reader (or a generic driver) knows how each is fed.
//!
//! | stage | input | output |
//! |---|---|---|
//! | [`TextStream`](crate::model::llama::tokenizer::TextStream) (detokenizer) | one token id | text that is final |
//! | [`UnitStream`](crate::model::speech_decoder::UnitStream) (CTC speech decoder) | LLM hidden states | discrete units |
//! | [`CtcCollapser`](crate::model::speech_decoder::CtcCollapser) (its last step) | frame labels | units |
//! | [`VocoderStream`](crate::model::vocoder::VocoderStream) (unit HiFi-GAN) | units | PCM samples |
//!
//! The LLM's own loop ([`Generation`](crate::model::llama::generate::Generation)) is not a
//! stage of this kind: it takes no input once prefilled and is pulled step by step.

use crate::Result;

/// A stage that takes its input in pieces and gives out each piece of output as
/// soon as it is final.
pub trait Streaming {
    /// One piece of input.
    type Input<'a>;
    /// What a call gives out (possibly empty: the stage may hold input back).
    type Output;

    /// Feeds the next piece of the current utterance; returns the output it makes
    /// final. A bad input is an error and leaves the stage as it was.
    fn push(&mut self, input: Self::Input<'_>) -> Result<Self::Output>;

    /// Ends the utterance: returns what was held back. The next `push` starts a new
    /// utterance; counters (units, samples, states) stay readable until `reset`.
    fn flush(&mut self) -> Result<Self::Output>;

    /// Forgets everything, held-back output and counters included (a cancelled
    /// utterance).
    fn reset(&mut self);
}
