//! The forward path pieces shared by the streaming session and the offline
//! (reference-style) answer: speech → speech embeddings, and the offline
//! answer itself.

use std::time::Instant;

use burn::tensor::Tensor;

use crate::audio::N_SAMPLES;
use crate::bundle::Omni;
use crate::model::llama::generate::{Generation, GenerationParams};
use crate::model::llama::prompt::{tokenizer_speech_token, Conversation};
use crate::{Error, Result};

/// Speech embeddings of one user turn.
pub struct SpeechEmbeddings {
    /// `[300 · windows, llm_hidden]`.
    pub embeds: Tensor<2>,
    /// 30 s windows used (1 unless the turn was longer than 30 s).
    pub windows: usize,
    pub elapsed_ms: f64,
}

/// Mel → Whisper encoder → adaptor, as the reference: each 30 s window is
/// zero-padded to 30 s. Audio longer than 30 s (which the reference silently
/// cuts) is split into consecutive 30 s windows whose embeddings are
/// concatenated, in order, into one speech block.
pub fn speech_embeddings(omni: &Omni, audio16k: &[f32]) -> Result<SpeechEmbeddings> {
    let t0 = Instant::now();
    if audio16k.is_empty() {
        return Err(Error::Audio("empty audio".into()));
    }
    let mut blocks = Vec::new();
    for window in audio16k.chunks(N_SAMPLES) {
        let lm = omni.mel.log_mel_30s(window)?;
        let x = omni.encoder.mel_tensor(&lm.data, lm.n_mels, lm.n_frames)?;
        let enc = omni.encoder.forward(x)?;
        let ad = omni.adaptor.forward(enc)?;
        let [_, n, h] = ad.dims();
        blocks.push(ad.reshape([n, h]));
    }
    let windows = blocks.len();
    let embeds = if windows == 1 {
        blocks.remove(0)
    } else {
        Tensor::cat(blocks, 0)
    };
    Ok(SpeechEmbeddings {
        embeds,
        windows,
        elapsed_ms: t0.elapsed().as_secs_f64() * 1e3,
    })
}

/// What the reference's `infer.py` produces for one question.
#[derive(Debug, Clone)]
pub struct OfflineAnswer {
    pub tokens: Vec<u32>,
    pub text: String,
    /// Units from the whole-sequence speech decoder (the reference's `predict`).
    pub units: Vec<u32>,
    /// Whole-utterance vocoder output, 16 kHz.
    pub audio: Vec<f32>,
}

impl Omni {
    /// Answers one spoken question the reference's way: generate the whole
    /// text, then run the speech decoder over all hidden states at once and
    /// vocode all units in one call. The streaming session must give the
    /// same tokens and units.
    pub fn answer_offline(
        &self,
        audio16k: &[f32],
        params: &GenerationParams,
    ) -> Result<OfflineAnswer> {
        let speech = speech_embeddings(self, audio16k)?;
        let ids = tokenizer_speech_token(&self.tokenizer, &Conversation::single_turn().render())?;
        let prompt = self.llm.splice_speech(&ids, &[speech.embeds])?;
        let mut cache = self.llm.new_cache();
        let mut gen = Generation::start(&self.llm, &mut cache, prompt, params.clone())?;
        let mut tokens = Vec::new();
        let mut hidden = Vec::new();
        while let Some(step) = gen.next_step()? {
            tokens.push(step.token);
            hidden.push(step.hidden);
        }
        let text = self.tokenizer.decode(&tokens, true)?;
        let units = if hidden.is_empty() {
            Vec::new()
        } else {
            self.speech_generator.predict(Tensor::cat(hidden, 0))?.1
        };
        let audio = if units.is_empty() {
            Vec::new()
        } else {
            self.vocoder.synthesize(&units)?
        };
        Ok(OfflineAnswer {
            tokens,
            text,
            units,
            audio,
        })
    }
}
