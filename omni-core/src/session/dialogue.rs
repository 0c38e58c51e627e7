//! Multi-turn state: the KV cache and the history it holds.
//!
//! Turn 1's prompt is the reference's exact single-turn prompt (system header,
//! user header, `<speech>` + instruction, assistant header). Each later turn
//! appends the closing `<|eot_id|>` of the previous answer and the next user
//! and assistant headers to the same cache, so later turns see earlier ones.
//!
//! When the next turn would not fit in `max_context` positions (prompt plus
//! `max_new_tokens`), the oldest turns are dropped and the cache is rebuilt
//! from the system prompt and the remaining turns (their speech embeddings are
//! kept for that), at the cost of one prefill of the kept history.

use burn::tensor::Tensor;

use crate::llama::prompt::{tokenizer_speech_token, Conversation};
use crate::llama::tokenizer::Tokenizer;
use crate::llama::KvCache;
use crate::llama::model::SPEECH_TOKEN_INDEX;
use crate::{Error, Result};

/// One finished (or interrupted) exchange.
struct TurnRecord {
    /// From the user header to the assistant header, with one -200.
    user_ids: Vec<i64>,
    speech: Tensor<2>,
    /// Answer tokens, closed by `<|eot_id|>`.
    answer: Vec<u32>,
}

/// The prompt of the next turn: ids to feed (with -200 placeholders) and the
/// speech blocks for them, plus whether the cache had to be rebuilt.
pub(crate) struct NextPrompt {
    pub ids: Vec<i64>,
    pub speech: Vec<Tensor<2>>,
    pub rebuilt: bool,
    pub dropped_turns: usize,
}

pub(crate) struct Dialogue {
    pub cache: KvCache,
    system_ids: Vec<i64>,
    user_template: String,
    turns: Vec<TurnRecord>,
    /// Tokens of the last answer not yet in the cache.
    pending: Vec<u32>,
    eot: u32,
    max_context: usize,
}

/// Token count of a prompt once speech placeholders are expanded.
fn positions(ids: &[i64], speech: &[Tensor<2>]) -> usize {
    ids.iter().filter(|&&i| i != SPEECH_TOKEN_INDEX).count() + speech.iter().map(|s| s.dims()[0]).sum::<usize>()
}

impl Dialogue {
    /// `system` and `user_message` (with `<speech>` where the speech goes) as in
    /// the reference's llama_3 template.
    pub fn new(tok: &Tokenizer, cache: KvCache, system: &str, user_message: &str, max_context: usize) -> Result<Self> {
        let eot = tok
            .token_id("<|eot_id|>")
            .ok_or_else(|| Error::InvalidInput("tokenizer has no <|eot_id|>".into()))?;
        if !user_message.contains("<speech>") {
            return Err(Error::InvalidInput("the user message must contain <speech>".into()));
        }
        let system_ids = tokenizer_speech_token(tok, &Conversation::with_system(system).render())?;
        // The user turn as the template renders it after the system block.
        let mut conv = Conversation::with_system(system);
        conv.push_user(user_message).open_assistant();
        let full = conv.render();
        let sys = Conversation::with_system(system).render();
        let user_template = full.strip_prefix(&sys).map(str::to_string).ok_or_else(|| {
            Error::InvalidInput("the conversation template does not start with its system block".into())
        })?;
        Ok(Dialogue { cache, system_ids, user_template, turns: Vec::new(), pending: Vec::new(), eot, max_context })
    }

    fn user_ids(&self, tok: &Tokenizer) -> Result<Vec<i64>> {
        // No BOS: the template text carries its own special tokens.
        let mut ids = Vec::new();
        for (k, part) in self.user_template.split("<speech>").enumerate() {
            if k > 0 {
                ids.push(SPEECH_TOKEN_INDEX);
            }
            ids.extend(tok.encode(part, false)?.into_iter().map(|i| i as i64));
        }
        Ok(ids)
    }

    /// Builds the next turn's prompt for `speech` (`[frames, hidden]`),
    /// rebuilding the cache when the context would overflow.
    pub fn next_prompt(&mut self, tok: &Tokenizer, speech: Tensor<2>, max_new_tokens: usize) -> Result<NextPrompt> {
        let user_ids = self.user_ids(tok)?;
        let new_len = positions(&user_ids, std::slice::from_ref(&speech)) + self.pending.len();
        let first = self.turns.is_empty() && self.cache.is_empty();
        let system_len = positions(&self.system_ids, &[]);
        if first {
            if system_len + new_len + max_new_tokens > self.max_context {
                return Err(Error::InvalidInput(format!(
                    "a turn of {new_len} positions plus {max_new_tokens} new tokens does not fit the context of {}",
                    self.max_context
                )));
            }
            let mut ids = self.system_ids.clone();
            ids.extend(&user_ids);
            self.turns.push(TurnRecord { user_ids, speech: speech.clone(), answer: Vec::new() });
            return Ok(NextPrompt { ids, speech: vec![speech], rebuilt: false, dropped_turns: 0 });
        }
        if self.cache.len() + new_len + max_new_tokens <= self.max_context {
            let mut ids: Vec<i64> = self.pending.drain(..).map(|t| t as i64).collect();
            ids.extend(&user_ids);
            self.turns.push(TurnRecord { user_ids, speech: speech.clone(), answer: Vec::new() });
            return Ok(NextPrompt { ids, speech: vec![speech], rebuilt: false, dropped_turns: 0 });
        }
        // Rebuild: drop the oldest turns until the history fits.
        self.pending.clear();
        let new_user = positions(&user_ids, std::slice::from_ref(&speech));
        let mut dropped = 0;
        loop {
            let hist: usize = self
                .turns
                .iter()
                .map(|t| positions(&t.user_ids, std::slice::from_ref(&t.speech)) + t.answer.len())
                .sum();
            if system_len + hist + new_user + max_new_tokens <= self.max_context {
                break;
            }
            if self.turns.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "a turn of {new_user} positions plus {max_new_tokens} new tokens does not fit the context of {}",
                    self.max_context
                )));
            }
            self.turns.remove(0);
            dropped += 1;
        }
        self.cache.clear();
        let mut ids = self.system_ids.clone();
        let mut blocks = Vec::new();
        for t in &self.turns {
            ids.extend(&t.user_ids);
            blocks.push(t.speech.clone());
            ids.extend(t.answer.iter().map(|&a| a as i64));
        }
        ids.extend(&user_ids);
        blocks.push(speech.clone());
        self.turns.push(TurnRecord { user_ids, speech, answer: Vec::new() });
        Ok(NextPrompt { ids, speech: blocks, rebuilt: true, dropped_turns: dropped })
    }

    /// Records the answer of the current turn. `unfed` is the last token if the
    /// model has not consumed it; the answer is closed with `<|eot_id|>`.
    pub fn finish_turn(&mut self, mut answer: Vec<u32>, unfed: Option<u32>) {
        self.pending.clear();
        if let Some(u) = unfed {
            self.pending.push(u);
        }
        match answer.last() {
            Some(&last) if last == self.eot => self.pending = vec![self.eot],
            _ => {
                answer.push(self.eot);
                self.pending.push(self.eot);
            }
        }
        if let Some(t) = self.turns.last_mut() {
            t.answer = answer;
        }
    }

    /// Forgets the whole conversation.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.turns.clear();
        self.pending.clear();
    }
}
