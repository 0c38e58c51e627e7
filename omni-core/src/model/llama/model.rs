//! The Llama 3.1 decoder: token embeddings, N decoder layers, final RMSNorm,
//! `lm_head` (tied to the embeddings or not, per config).

use crate::model::nn::proj::Proj;
use burn::module::{Module, Param};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use super::attention::AttentionDims;
use super::cache::KvCache;
use super::config::LlamaConfig;
use super::layer::{DecoderLayer, LayerDims};
use super::prompt::SPEECH_TOKEN_INDEX;
use super::rope::Rope;
use crate::model::nn::rms_norm::RmsNorm;
use crate::progress::{report, ProgressFn};
use crate::weights::{RunDType, WeightStore};
use crate::{Error, Result};

/// Llama for causal LM, HF key layout (`model.embed_tokens`, `model.layers.N`,
/// `model.norm`, `lm_head`).
#[derive(Module, Debug)]
pub struct Llama {
    pub embed_tokens: Param<Tensor<2>>,
    pub layers: Vec<DecoderLayer>,
    pub norm: RmsNorm,
    /// `[hidden, vocab]`; a copy of `embed_tokens` when the config ties them.
    pub lm_head: Proj,
    #[module(skip)]
    pub config: LlamaConfig,
    #[module(skip)]
    pub rope: Rope,
    #[module(skip)]
    pub dtype: RunDType,
}

impl Llama {
    /// Shapes of one layer of this config.
    pub fn layer_dims(config: &LlamaConfig) -> LayerDims {
        LayerDims {
            attn: AttentionDims {
                hidden: config.hidden_size,
                n_heads: config.num_attention_heads,
                n_kv_heads: config.kv_heads(),
                head_dim: config.head_dim(),
            },
            ffn: config.intermediate_size,
            eps: config.rms_norm_eps,
        }
    }

    /// Loads the LLM from `store` (keys as in HF: `model.…` and `lm_head.weight`),
    /// casting to `dtype`. Reports one progress unit per layer.
    pub fn load(
        store: &WeightStore,
        config: &LlamaConfig,
        dtype: RunDType,
        device: &Device,
        mut progress: Option<ProgressFn<'_>>,
    ) -> Result<Self> {
        let c = config;
        let total = c.num_hidden_layers + 2;
        // Norms, RoPE tables and the KV cache in the activations' dtype (f32 for
        // f16 weights on the CPU: `WeightStore::activations`).
        let act = store.activations(dtype, device);
        // Quantized runs keep the embedding table in f16 (half the memory of f32;
        // the selected rows are cast to f32 in `embed`).
        let embed_dtype =
            if (dtype.quantized().is_some() || act != dtype) && device.supports_dtype(DType::F16) {
                RunDType::F16
            } else {
                dtype
            };
        let embed = store.tensor(
            "model.embed_tokens.weight",
            [c.vocab_size, c.hidden_size],
            embed_dtype,
            device,
        )?;
        report(&mut progress, "llm", 1, total);
        let dims = Self::layer_dims(c);
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            layers.push(DecoderLayer::load(
                store,
                &format!("model.layers.{i}"),
                &dims,
                dtype,
                device,
            )?);
            report(&mut progress, "llm", i + 2, total);
        }
        let norm = RmsNorm::load(
            store,
            "model.norm.weight",
            c.hidden_size,
            c.rms_norm_eps,
            act,
            device,
        )?;
        // A tied head reads the embedding matrix ([vocab, hidden], i.e. [out, in])
        // as a linear layer: one contiguous transposed copy instead of a strided view.
        let head_key = if c.tie_word_embeddings && !store.contains("lm_head.weight") {
            "model.embed_tokens"
        } else {
            "lm_head"
        };
        let lm_head = store.proj(head_key, c.hidden_size, c.vocab_size, false, dtype, device)?;
        report(&mut progress, "llm", total, total);
        Ok(Llama {
            embed_tokens: Param::from_tensor(embed),
            layers,
            norm,
            lm_head,
            config: c.clone(),
            rope: Rope::new(c.head_dim(), c.rope_theta, c.rope_scaling.as_ref()),
            dtype: act,
        })
    }

    /// Device of the weights.
    pub fn device(&self) -> Device {
        self.embed_tokens.val().device()
    }

    /// A fresh, empty KV cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// Embeddings `[1, n, hidden]` of token ids. Ids ≥ vocab are an error.
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor<3>> {
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(Error::InvalidInput(format!(
                "token id {bad} ≥ vocab size {}",
                self.config.vocab_size
            )));
        }
        let data = TensorData::new(
            ids.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            [ids.len()],
        );
        let idx = Tensor::<1, Int>::from_data(data, &self.device());
        Ok(self
            .embed_tokens
            .val()
            .select(0, idx)
            .cast(self.dtype.burn())
            .unsqueeze::<3>())
    }

    /// Prompt embeddings `[1, n, hidden]` from ids where each `-200` (the
    /// reference's `SPEECH_TOKEN_INDEX`) is replaced by the next speech block
    /// (`[frames, hidden]`, the adaptor output), as the reference's
    /// `prepare_inputs_labels_for_speech_and_text` does.
    pub fn splice_speech(&self, ids: &[i64], speech: &[Tensor<2>]) -> Result<Tensor<3>> {
        let placeholders = ids.iter().filter(|&&i| i == SPEECH_TOKEN_INDEX).count();
        if placeholders != speech.len() {
            return Err(Error::InvalidInput(format!(
                "prompt has {placeholders} speech placeholders but {} speech blocks were given",
                speech.len()
            )));
        }
        let dtype = self.dtype.burn();
        let mut parts = Vec::new();
        let mut blocks = speech.iter();
        for seg in ids.split(|&i| i == SPEECH_TOKEN_INDEX).enumerate() {
            let (k, text) = seg;
            if k > 0 {
                if let Some(b) = blocks.next() {
                    let [_, h] = b.dims();
                    if h != self.config.hidden_size {
                        return Err(Error::InvalidInput(format!(
                            "speech block width {h}, LLM width {}",
                            self.config.hidden_size
                        )));
                    }
                    parts.push(b.clone().cast(dtype).unsqueeze::<3>());
                }
            }
            if !text.is_empty() {
                let ids: Vec<u32> = text
                    .iter()
                    .map(|&i| {
                        u32::try_from(i).map_err(|_| Error::InvalidInput(format!("token id {i}")))
                    })
                    .collect::<Result<_>>()?;
                parts.push(self.embed(&ids)?);
            }
        }
        if parts.is_empty() {
            return Err(Error::InvalidInput("empty prompt".into()));
        }
        Ok(Tensor::cat(parts, 1))
    }

    /// Runs `x` (`[b, n, hidden]` embeddings) at positions `cache.len()..` and
    /// returns the last layer's hidden states **after** the final norm
    /// (HF `hidden_states[-1]`, what `lm_head` and the speech decoder read).
    /// Inference runs one sequence (`b = 1`); training runs a right-padded batch
    /// with a fresh cache: causal attention keeps every real position from
    /// seeing the padding after it, as HF's padding mask does.
    pub fn forward(&self, x: Tensor<3>, cache: &mut KvCache) -> Result<Tensor<3>> {
        let [b, n, h] = x.dims();
        if b == 0 || h != self.config.hidden_size || n == 0 {
            return Err(Error::InvalidInput(format!(
                "LLM input of shape [{b}, {n}, {h}]; expected [b>0, n>0, {}]",
                self.config.hidden_size
            )));
        }
        if cache.layers.len() != self.layers.len() {
            return Err(Error::InvalidInput(
                "KV cache belongs to another model".into(),
            ));
        }
        let start = cache.len();
        let (cos, sin) = self
            .rope
            .tables(start, n, self.dtype.burn(), &self.device());
        let mut x = x.cast(self.dtype.burn());
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            x = layer.forward(x, &cos, &sin, lc);
        }
        Ok(self.norm.forward(x))
    }

    /// `lm_head` on normed hidden states `[.., hidden]` → logits `[.., vocab]`.
    pub fn logits<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        self.lm_head.forward(hidden)
    }
}
