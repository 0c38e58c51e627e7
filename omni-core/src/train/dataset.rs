//! A manifest's records tokenized as the reference's `preprocess_llama_3` does,
//! grouped into batches of similar length, in a seeded order per epoch, and made
//! into [`Example`]s (the frozen encoder runs when a batch is built).
//!
//! - Prompt: the `llama_3` conversation with the record's user message (default
//!   [`DEFAULT_USER_MESSAGE`]) and the assistant header open, through
//!   [`tokenizer_speech_token`]; answer: the answer text + `<|eot_id|>`, no BOS
//!   (what `preprocess_llama_3` leaves unmasked after the assistant header).
//! - Batches: examples sorted by answer length (ties by manifest order), cut into
//!   runs of `batch_size` (the last may be shorter), the runs shuffled each
//!   epoch with a seed (the HF `Trainer`'s `group_by_length` idea). A position
//!   in the data is `(epoch, batch)`: resuming rebuilds the same order.

use super::batch::Example;
use super::data::{Manifest, Record};
use super::model::TrainModel;
use crate::model::llama::prompt::{tokenizer_speech_token, Conversation, DEFAULT_USER_MESSAGE};
use crate::model::llama::tokenizer::Tokenizer;
use crate::{Error, Result};

/// One tokenized record.
#[derive(Debug, Clone)]
pub struct Tokenized {
    pub record: Record,
    /// Prompt ids up to the open assistant header, one `-200` for the speech.
    pub prompt: Vec<i64>,
    /// Answer tokens + `<|eot_id|>`.
    pub answer: Vec<u32>,
}

/// The answer's end token of the `llama_3` template.
pub const EOT: &str = "<|eot_id|>";

/// Tokenizes one record.
pub fn tokenize(tok: &Tokenizer, record: &Record, vocab_size: usize) -> Result<Tokenized> {
    let mut conv = Conversation::llama_3();
    conv.push_user(
        record
            .instruction
            .as_deref()
            .unwrap_or(DEFAULT_USER_MESSAGE),
    )
    .open_assistant();
    let prompt = tokenizer_speech_token(tok, &conv.render())?;
    let answer = tok.encode(&format!("{}{EOT}", record.answer), false)?;
    let ids = answer.iter().map(|&t| t as usize);
    let prompt_ids = prompt.iter().filter(|&&i| i >= 0).map(|&i| i as usize);
    if let Some(bad) = ids.chain(prompt_ids).find(|&t| t >= vocab_size) {
        return Err(Error::InvalidInput(format!(
            "line {}: token {bad} outside the LLM's vocabulary of {vocab_size}",
            record.line
        )));
    }
    Ok(Tokenized {
        record: record.clone(),
        prompt,
        answer,
    })
}

/// Tokenized records and their batches.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub items: Vec<Tokenized>,
    /// Indices into `items`, by length, cut into batches (before shuffling).
    pub buckets: Vec<Vec<usize>>,
}

/// splitmix64: a small seeded generator for the batch order.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Dataset {
    /// Tokenizes `manifest`'s records and groups them into batches of `batch_size`.
    pub fn new(
        manifest: &Manifest,
        tok: &Tokenizer,
        vocab: usize,
        batch_size: usize,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::InvalidInput("batch size 0".into()));
        }
        let items = manifest
            .records
            .iter()
            .map(|r| {
                tokenize(tok, r, vocab)
                    .map_err(|e| Error::InvalidInput(format!("{}: {e}", manifest.path.display())))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| (items[i].answer.len(), i));
        let buckets = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
        Ok(Dataset { items, buckets })
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.buckets.len()
    }

    /// The batch order of `epoch` (Fisher–Yates with a seed of `seed` and `epoch`).
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.buckets.len()).collect();
        let mut s = seed ^ epoch.wrapping_mul(0xd1b5_4a32_d192_ed03);
        for i in (1..order.len()).rev() {
            let j = (splitmix(&mut s) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order
    }

    /// Batch number `index` (0-based, counted from the start of training) in
    /// the seeded order: `(epoch, item indices)`.
    pub fn batch(&self, seed: u64, index: u64) -> (u64, &[usize]) {
        let per = self.buckets.len() as u64;
        let epoch = index / per;
        let order = self.epoch_order(seed, epoch);
        (epoch, &self.buckets[order[(index % per) as usize]])
    }

    /// The examples of `items` (the encoder runs on each question).
    pub fn examples(&self, model: &TrainModel, items: &[usize]) -> Result<Vec<Example>> {
        items
            .iter()
            .map(|&i| {
                let t = &self.items[i];
                let speech = model
                    .encode_file(&t.record.speech)
                    .map_err(|e| Error::InvalidInput(format!("line {}: {e}", t.record.line)))?;
                Ok(Example::from_prompt_answer(
                    &t.prompt,
                    &t.answer,
                    speech,
                    t.record.units.clone(),
                ))
            })
            .collect()
    }
}
