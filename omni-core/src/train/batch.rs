//! One training example, as the reference's data pipeline builds it
//! (`omni_speech/datasets/preprocess.py::preprocess_llama_3`).

use burn::tensor::Tensor;

/// The reference's `IGNORE_INDEX`: a label that is not a target.
pub const IGNORE_INDEX: i64 = -100;

/// One single-turn example.
#[derive(Debug, Clone)]
pub struct Example {
    /// Prompt + answer token ids, with one `-200` (`SPEECH_TOKEN_INDEX`) where
    /// the speech block goes.
    pub ids: Vec<i64>,
    /// One label per id: [`IGNORE_INDEX`] on the instruction, the id itself on
    /// the answer (the LLM shifts them: position p predicts label p + 1).
    pub labels: Vec<i64>,
    /// The frozen Whisper encoder's output, `[frames, encoder_dim]`; the adaptor
    /// reads the first `frames / k · k` frames (`encode_speech` cuts the batch's
    /// adaptor output to each example's length).
    pub speech: Tensor<2>,
    /// The answer's units (0..unit_vocab_size), the stage-2 CTC target.
    pub units: Vec<u32>,
}

impl Example {
    /// `preprocess_llama_3`'s masking on already tokenized parts: `prompt` is the
    /// tokenization of everything up to and including the assistant header
    /// (`tokenizer_speech_token`, BOS included), `answer` the rest of the
    /// conversation (answer text + `<|eot_id|>`). Every prompt position is
    /// [`IGNORE_INDEX`], every answer position is a target.
    pub fn from_prompt_answer(
        prompt: &[i64],
        answer: &[u32],
        speech: Tensor<2>,
        units: Vec<u32>,
    ) -> Self {
        let mut ids = prompt.to_vec();
        ids.extend(answer.iter().map(|&t| t as i64));
        let mut labels = vec![IGNORE_INDEX; prompt.len()];
        labels.extend(answer.iter().map(|&t| t as i64));
        Example {
            ids,
            labels,
            speech,
            units,
        }
    }
}
