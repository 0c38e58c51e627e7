//! Multi-turn state: the KV cache and the history it holds.
//!
//! Turn 1's prompt is the reference's exact single-turn prompt (system header,
//! user header, `<speech>` + instruction, assistant header). Each later turn
//! appends the closing `<|eot_id|>` of the previous answer and the next user
//! and assistant headers to the same cache, so later turns see earlier ones.
//! A typed-text turn is the same template with the text as the user message
//! (no speech placeholder).
//!
//! When the next turn would not fit in `max_context` positions (prompt plus
//! `max_new_tokens`), the oldest turns are dropped and the cache is rebuilt
//! from the system prompt and the remaining turns (their speech embeddings are
//! kept for that), at the cost of one prefill of the kept history.
//!
//! A turn can be rolled back (a speculative start whose speech went on, a
//! question that continued), and the last answer can be cut to what the user
//! heard ([`Dialogue::truncate_answer`]).

use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;

use crate::model::llama::prompt::{
    spliced_len, tokenizer_speech_token, Conversation, SPEECH_TOKEN_INDEX,
};
use crate::model::llama::tokenizer::Tokenizer;
use crate::model::llama::KvCache;
use crate::{Error, Result};

/// What the user said in one turn.
pub(crate) enum UserTurn {
    /// Speech embeddings `[frames, hidden]` (boxed: a tensor handle is large next to
    /// a `String`).
    Speech(Box<Tensor<2>>),
    /// Typed text.
    Text(String),
}

/// One exchange of the conversation as the model remembers it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTurn {
    /// Typed text, or None for a spoken turn.
    pub text: Option<String>,
    /// Speech positions of a spoken turn (0 for text).
    pub speech_frames: usize,
    /// The answer's tokens as kept in the history, closed by `<|eot_id|>`
    /// (cut to what was played when the answer was interrupted).
    pub answer: Vec<u32>,
}

/// What the model's context holds: the turns, and the prompt ids with one
/// `-200` per speech block (the positions the model has seen or will see
/// next, in order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub turns: Vec<HistoryTurn>,
    pub ids: Vec<i64>,
}

/// One finished (or interrupted) exchange.
struct TurnRecord {
    /// From the user header to the assistant header, with one -200 for speech.
    user_ids: Vec<i64>,
    speech: Option<Tensor<2>>,
    text: Option<String>,
    /// Answer tokens, closed by `<|eot_id|>`.
    answer: Vec<u32>,
}

impl TurnRecord {
    fn speech_slice(&self) -> &[Tensor<2>] {
        self.speech.as_slice()
    }
}

/// The prompt of the next turn: ids to feed (with -200 placeholders) and the
/// speech blocks for them, plus whether the cache had to be rebuilt.
pub(crate) struct NextPrompt {
    pub ids: Vec<i64>,
    pub speech: Vec<Tensor<2>>,
    pub rebuilt: bool,
    pub dropped_turns: usize,
}

/// What [`Dialogue::rollback`] restores.
#[derive(Clone)]
pub struct Snapshot {
    cache_len: usize,
    pending: Vec<u32>,
    needs_rebuild: bool,
}

/// Where the last answer sits in the cache.
#[derive(Clone, Copy)]
struct LastAnswer {
    /// Cache length when the answer started.
    start: usize,
    /// Answer tokens fed to the cache.
    fed: usize,
}

pub(crate) struct Dialogue {
    pub cache: KvCache,
    system_ids: Vec<i64>,
    system: String,
    user_template: String,
    turns: Vec<TurnRecord>,
    /// Tokens of the last answer not yet in the cache.
    pending: Vec<u32>,
    eot: u32,
    max_context: usize,
    /// The cache no longer matches `turns` (a rolled-back rebuild): rebuild next time.
    needs_rebuild: bool,
    last_answer: Option<LastAnswer>,
    /// The last `next_prompt` added a turn / rebuilt the cache (for rollback).
    prompted: bool,
    rebuilt: bool,
    /// What `Session::history` shows.
    view: Arc<Mutex<History>>,
}

/// Token count of a prompt once speech placeholders are expanded ([`spliced_len`]).
fn positions(ids: &[i64], speech: &[Tensor<2>]) -> Result<usize> {
    let lens: Vec<usize> = speech.iter().map(|s| s.dims()[0]).collect();
    spliced_len(ids, &lens)
}

impl Dialogue {
    /// `system` and `user_message` (with `<speech>` where the speech goes) as in
    /// the reference's llama_3 template.
    pub fn new(
        tok: &Tokenizer,
        cache: KvCache,
        system: &str,
        user_message: &str,
        max_context: usize,
        view: Arc<Mutex<History>>,
    ) -> Result<Self> {
        let eot = tok
            .token_id("<|eot_id|>")
            .ok_or_else(|| Error::InvalidInput("tokenizer has no <|eot_id|>".into()))?;
        if user_message.matches("<speech>").count() != 1 {
            return Err(Error::InvalidInput(
                "the user message must contain <speech> exactly once".into(),
            ));
        }
        let system_ids = tokenizer_speech_token(tok, &Conversation::with_system(system).render())?;
        let user_template = Self::user_block(system, user_message)?;
        let d = Dialogue {
            cache,
            system_ids,
            system: system.to_string(),
            user_template,
            turns: Vec::new(),
            pending: Vec::new(),
            eot,
            max_context,
            needs_rebuild: false,
            last_answer: None,
            prompted: false,
            rebuilt: false,
            view,
        };
        d.publish();
        Ok(d)
    }

    /// The user turn as the template renders it after the system block.
    fn user_block(system: &str, user_message: &str) -> Result<String> {
        let mut conv = Conversation::with_system(system);
        conv.push_user(user_message).open_assistant();
        let full = conv.render();
        let sys = Conversation::with_system(system).render();
        full.strip_prefix(&sys).map(str::to_string).ok_or_else(|| {
            Error::InvalidInput(
                "the conversation template does not start with its system block".into(),
            )
        })
    }

    /// Prompt positions of the system block and the fixed part of a spoken
    /// user turn (for validating options).
    pub fn fixed_positions(&self, tok: &Tokenizer) -> Result<usize> {
        Ok(positions(&self.system_ids, &[])? + self.speech_user_ids(tok)?.len() - 1)
    }

    fn speech_user_ids(&self, tok: &Tokenizer) -> Result<Vec<i64>> {
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

    fn record(&self, tok: &Tokenizer, user: UserTurn) -> Result<TurnRecord> {
        Ok(match user {
            UserTurn::Speech(s) => TurnRecord {
                user_ids: self.speech_user_ids(tok)?,
                speech: Some(*s),
                text: None,
                answer: Vec::new(),
            },
            UserTurn::Text(t) => {
                let block = Self::user_block(&self.system, &t)?;
                let user_ids = tok
                    .encode(&block, false)?
                    .into_iter()
                    .map(|i| i as i64)
                    .collect();
                TurnRecord {
                    user_ids,
                    speech: None,
                    text: Some(t),
                    answer: Vec::new(),
                }
            }
        })
    }

    /// State to come back to if the next turn is withdrawn.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            cache_len: self.cache.len(),
            pending: self.pending.clone(),
            needs_rebuild: self.needs_rebuild,
        }
    }

    /// Withdraws everything since `snap` (the turn never happened).
    pub fn rollback(&mut self, snap: Snapshot) {
        if self.prompted {
            self.turns.pop();
        }
        let rebuilt = std::mem::take(&mut self.rebuilt);
        self.prompted = false;
        if rebuilt {
            // The prompt rebuilt the cache (older turns dropped): the history
            // is what `turns` says; rebuild it with the next prompt.
            self.cache.clear();
            self.pending.clear();
            self.needs_rebuild = true;
        } else {
            self.cache.truncate(snap.cache_len);
            self.pending = snap.pending;
            self.needs_rebuild = snap.needs_rebuild;
        }
        self.last_answer = None;
        self.publish();
    }

    /// Builds the next turn's prompt, rebuilding the cache when the context
    /// would overflow.
    pub fn next_prompt(
        &mut self,
        tok: &Tokenizer,
        user: UserTurn,
        max_new_tokens: usize,
    ) -> Result<NextPrompt> {
        let rec = self.record(tok, user)?;
        let new_user = positions(&rec.user_ids, rec.speech_slice())?;
        let new_len = new_user + self.pending.len();
        let first = self.turns.is_empty() && self.cache.is_empty();
        let system_len = positions(&self.system_ids, &[])?;
        self.last_answer = None;
        self.prompted = false;
        self.rebuilt = false;
        if first {
            if system_len + new_len + max_new_tokens > self.max_context {
                return Err(Error::InvalidInput(format!(
                    "a turn of {} positions plus {max_new_tokens} new tokens does not fit the context of {}",
                    system_len + new_len,
                    self.max_context
                )));
            }
            let mut ids = self.system_ids.clone();
            ids.extend(&rec.user_ids);
            let speech = rec.speech.iter().cloned().collect();
            self.needs_rebuild = false;
            self.turns.push(rec);
            self.prompted = true;
            self.publish();
            return Ok(NextPrompt {
                ids,
                speech,
                rebuilt: false,
                dropped_turns: 0,
            });
        }
        if !self.needs_rebuild && self.cache.len() + new_len + max_new_tokens <= self.max_context {
            let mut ids: Vec<i64> = self.pending.drain(..).map(|t| t as i64).collect();
            ids.extend(&rec.user_ids);
            let speech = rec.speech.iter().cloned().collect();
            self.turns.push(rec);
            self.prompted = true;
            self.publish();
            return Ok(NextPrompt {
                ids,
                speech,
                rebuilt: false,
                dropped_turns: 0,
            });
        }
        // Rebuild: drop the oldest turns until the history fits.
        self.pending.clear();
        let mut dropped = 0;
        loop {
            let mut hist = 0;
            for t in &self.turns {
                hist += positions(&t.user_ids, t.speech_slice())? + t.answer.len();
            }
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
        self.needs_rebuild = false;
        let mut ids = self.system_ids.clone();
        let mut blocks = Vec::new();
        for t in self.turns.iter().chain(std::iter::once(&rec)) {
            ids.extend(&t.user_ids);
            blocks.extend(t.speech.iter().cloned());
            ids.extend(t.answer.iter().map(|&a| a as i64));
        }
        self.turns.push(rec);
        self.prompted = true;
        self.rebuilt = true;
        self.publish();
        Ok(NextPrompt {
            ids,
            speech: blocks,
            rebuilt: true,
            dropped_turns: dropped,
        })
    }

    /// Records the answer of the current turn. `start` is the cache length
    /// when the answer started; `unfed` is the last token if the model has not
    /// consumed it; the answer is closed with `<|eot_id|>`.
    pub fn finish_turn(&mut self, mut answer: Vec<u32>, unfed: Option<u32>, start: usize) {
        self.pending.clear();
        self.prompted = false;
        self.rebuilt = false;
        let fed = answer.len()
            - usize::from(unfed.is_some())
            - usize::from(answer.last() == Some(&self.eot));
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
        self.last_answer = Some(LastAnswer { start, fed });
        self.publish();
    }

    /// Cuts the last answer to its first `keep` tokens (the part the user
    /// heard), closed with `<|eot_id|>`: the next prompt continues from there.
    pub fn truncate_answer(&mut self, keep: usize) {
        let Some(la) = self.last_answer else { return };
        let Some(t) = self.turns.last_mut() else {
            return;
        };
        let content = t.answer.len().saturating_sub(1);
        if keep >= content {
            return;
        }
        t.answer.truncate(keep);
        t.answer.push(self.eot);
        if keep <= la.fed {
            self.cache.truncate(la.start + keep);
        }
        self.pending = vec![self.eot];
        self.last_answer = Some(LastAnswer {
            start: la.start,
            fed: keep.min(la.fed),
        });
        self.publish();
    }

    /// Forgets the whole conversation.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.turns.clear();
        self.pending.clear();
        self.needs_rebuild = false;
        self.last_answer = None;
        self.publish();
    }

    /// Updates the view `Session::history` reads.
    fn publish(&self) {
        let mut ids = self.system_ids.clone();
        let mut turns = Vec::with_capacity(self.turns.len());
        for t in &self.turns {
            ids.extend(&t.user_ids);
            ids.extend(t.answer.iter().map(|&a| a as i64));
            turns.push(HistoryTurn {
                text: t.text.clone(),
                speech_frames: t.speech.as_ref().map_or(0, |s| s.dims()[0]),
                answer: t.answer.clone(),
            });
        }
        *self.view.lock().unwrap_or_else(|p| p.into_inner()) = History { turns, ids };
    }
}
