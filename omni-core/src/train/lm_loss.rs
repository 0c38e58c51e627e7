//! Stage 1: response-only cross-entropy through the adaptor and the LLM.
//!
//! Mirrors `OmniSpeechMetaForCausalLM.encode_speech` +
//! `prepare_inputs_labels_for_speech_and_text` (omni_speech/model/omni_speech_arch.py:
//! speech block spliced at `-200` with `IGNORE_INDEX` labels, right padding with
//! zero embeddings) and the loss of transformers 4.43 `LlamaForCausalLM.forward`
//! (logits in f32, shift by one, `CrossEntropyLoss` mean over the non-ignored
//! labels of the whole batch).

use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Int, Tensor, TensorData};

use super::batch::{Example, IGNORE_INDEX};
use crate::model::adaptor::SpeechAdaptor;
use crate::model::llama::prompt::SPEECH_TOKEN_INDEX;
use crate::model::llama::Llama;
use crate::{Error, Result};

/// A right-padded batch of LLM inputs.
#[derive(Debug, Clone)]
pub struct LlmInputs {
    /// `[batch, max_len, hidden]`, zeros after each example's end.
    pub embeds: Tensor<3>,
    /// Per example, `max_len` labels aligned with `embeds` (the speech block and
    /// the padding are [`IGNORE_INDEX`]).
    pub labels: Vec<Vec<i64>>,
    /// Real length of each example.
    pub lengths: Vec<usize>,
}

/// Embeddings and labels of a batch (`prepare_inputs_labels_for_speech_and_text`).
/// Each example's encoder output goes through the adaptor; its `frames / k`
/// embeddings replace the `-200` placeholder.
pub fn llm_inputs(adaptor: &SpeechAdaptor, llm: &Llama, batch: &[Example]) -> Result<LlmInputs> {
    if batch.is_empty() {
        return Err(Error::InvalidInput("empty training batch".into()));
    }
    let mut embeds = Vec::with_capacity(batch.len());
    let mut labels = Vec::with_capacity(batch.len());
    for (i, ex) in batch.iter().enumerate() {
        if ex.ids.len() != ex.labels.len() {
            return Err(Error::InvalidInput(format!(
                "example {i}: {} ids but {} labels",
                ex.ids.len(),
                ex.labels.len()
            )));
        }
        let speech = adaptor.forward(ex.speech.clone().unsqueeze::<3>())?;
        let [_, n, h] = speech.dims();
        let emb = llm.splice_speech(&ex.ids, &[speech.reshape([n, h])])?;
        let mut lab = Vec::with_capacity(emb.dims()[1]);
        for (&id, &l) in ex.ids.iter().zip(&ex.labels) {
            if id == SPEECH_TOKEN_INDEX {
                lab.extend(std::iter::repeat_n(IGNORE_INDEX, n));
            } else {
                lab.push(l);
            }
        }
        embeds.push(emb);
        labels.push(lab);
    }
    let lengths: Vec<usize> = labels.iter().map(|l| l.len()).collect();
    let max_len = lengths.iter().copied().max().unwrap_or(0);
    let hidden = llm.config.hidden_size;
    let padded = embeds
        .into_iter()
        .zip(&lengths)
        .map(|(e, &len)| {
            if len == max_len {
                e
            } else {
                let pad =
                    Tensor::<3>::zeros([1, max_len - len, hidden], &e.device()).cast(e.dtype());
                Tensor::cat(vec![e, pad], 1)
            }
        })
        .collect();
    for l in &mut labels {
        l.resize(max_len, IGNORE_INDEX);
    }
    Ok(LlmInputs {
        embeds: Tensor::cat(padded, 0),
        labels,
        lengths,
    })
}

/// `LlamaForCausalLM`'s loss on normed hidden states `[batch, len, hidden]`:
/// position p predicts `labels[p + 1]`; the mean over every non-ignored target
/// of the batch. Returns a one-element tensor.
pub fn lm_loss(llm: &Llama, hidden: Tensor<3>, labels: &[Vec<i64>]) -> Result<Tensor<1>> {
    let [b, len, _] = hidden.dims();
    let vocab = llm.config.vocab_size;
    if labels.len() != b || labels.iter().any(|l| l.len() != len) || len < 2 {
        return Err(Error::InvalidInput(format!(
            "labels do not match hidden states [{b}, {len}, _]"
        )));
    }
    let mut targets = Vec::with_capacity(b * (len - 1));
    let mut weights = Vec::with_capacity(b * (len - 1));
    for row in labels {
        for &l in &row[1..] {
            if l == IGNORE_INDEX {
                targets.push(0i64);
                weights.push(0f32);
            } else if l < 0 || l as usize >= vocab {
                return Err(Error::InvalidInput(format!(
                    "label {l} outside the vocabulary of {vocab}"
                )));
            } else {
                targets.push(l);
                weights.push(1f32);
            }
        }
    }
    let count = weights.iter().filter(|&&w| w > 0.0).count();
    if count == 0 {
        return Err(Error::InvalidInput("no target label in the batch".into()));
    }
    let logits = llm
        .logits(hidden.slice([0..b, 0..len - 1]))
        .cast(DType::F32);
    let device = logits.device();
    let lp = log_softmax(logits, 2);
    let idx = Tensor::<3, Int>::from_data(TensorData::new(targets, [b, len - 1, 1]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(weights, [b, len - 1]), &device);
    let picked = lp.gather(2, idx).reshape([b, len - 1]);
    Ok((picked * w).sum().neg().div_scalar(count as f32))
}
