//! Token-by-token generation over a KV cache. Each step gives the token and the
//! final-normed hidden state that predicted it: the speech decoder's input,
//! indexed as the reference does ([last prompt position, y1 … y(N-1)]).

use burn::tensor::{DType, Tensor};

use super::cache::KvCache;
use super::model::Llama;
use super::sampling::{Sampler, SamplingParams};
use crate::{Error, Result};

/// Generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationParams {
    pub max_new_tokens: usize,
    pub sampling: SamplingParams,
    /// Ids that end the answer (`<|eot_id|>` etc., from the config).
    pub stop_ids: Vec<u32>,
}

/// One generated token.
#[derive(Debug, Clone)]
pub struct Step {
    /// 0-based index of the token in the answer.
    pub index: usize,
    pub token: u32,
    /// Whether `token` is a stop id (it ends the answer; it is still reported).
    pub is_stop: bool,
    /// Final-normed hidden state `[1, hidden]` that predicted `token`.
    pub hidden: Tensor<2>,
}

/// A running generation. The last sampled token is fed to the model lazily, at
/// the next call, so a step returns as soon as its token is chosen.
pub struct Generation<'a> {
    model: &'a Llama,
    cache: &'a mut KvCache,
    sampler: Sampler,
    params: GenerationParams,
    hidden: Option<Tensor<2>>,
    pending: Option<u32>,
    produced: usize,
    done: bool,
}

/// Logits of one `[1, hidden]` state as host f32.
pub fn host_logits(model: &Llama, hidden: &Tensor<2>) -> Result<Vec<f32>> {
    model
        .logits(hidden.clone())
        .cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::InvalidInput(format!("logits readback: {e:?}")))
}

impl<'a> Generation<'a> {
    /// Prefills `prompt` (`[1, n, hidden]` embeddings, speech already spliced)
    /// after whatever `cache` holds.
    pub fn start(
        model: &'a Llama,
        cache: &'a mut KvCache,
        prompt: Tensor<3>,
        params: GenerationParams,
    ) -> Result<Self> {
        let last = Self::prefill(model, cache, prompt)?;
        Ok(Self::from_prefill(model, cache, last, params))
    }

    /// Prefills `prompt` after whatever `cache` holds; returns the final-normed
    /// hidden state `[1, hidden]` of its last position (for [`Generation::from_prefill`]).
    pub fn prefill(model: &Llama, cache: &mut KvCache, prompt: Tensor<3>) -> Result<Tensor<2>> {
        let h = model.forward(prompt, cache)?;
        let [_, n, d] = h.dims();
        Ok(h.slice([0..1, n - 1..n, 0..d]).reshape([1, d]))
    }

    /// Continues after [`Generation::prefill`] (`last`: its result, the cache
    /// as the prefill left it).
    pub fn from_prefill(
        model: &'a Llama,
        cache: &'a mut KvCache,
        last: Tensor<2>,
        params: GenerationParams,
    ) -> Self {
        Generation {
            model,
            cache,
            sampler: Sampler::new(params.sampling),
            params,
            hidden: Some(last),
            pending: None,
            produced: 0,
            done: false,
        }
    }

    /// Tokens produced so far.
    pub fn produced(&self) -> usize {
        self.produced
    }

    /// The last sampled token if it has not been fed to the model yet (a
    /// caller continuing the conversation must feed it).
    pub fn unfed_token(&self) -> Option<u32> {
        self.pending
    }

    /// The next token, or `None` once a stop id was produced or
    /// `max_new_tokens` reached.
    pub fn next_step(&mut self) -> Result<Option<Step>> {
        if self.done || self.produced >= self.params.max_new_tokens {
            self.done = true;
            return Ok(None);
        }
        if let Some(tok) = self.pending.take() {
            let x = self.model.embed(&[tok])?;
            let h = self.model.forward(x, self.cache)?;
            let d = h.dims()[2];
            self.hidden = Some(h.reshape([1, d]));
        }
        let hidden = match self.hidden.take() {
            Some(h) => h,
            None => return Ok(None),
        };
        let logits = host_logits(self.model, &hidden)?;
        let token = self.sampler.sample(&logits);
        let is_stop = self.params.stop_ids.contains(&token);
        let step = Step {
            index: self.produced,
            token,
            is_stop,
            hidden,
        };
        self.produced += 1;
        if is_stop {
            self.done = true;
        } else {
            self.pending = Some(token);
        }
        Ok(Some(step))
    }
}
