//! `SpeechGeneratorCTC`: `input_proj` → N Llama decoder layers (causal, the
//! LLM's RoPE theta and llama3 scaling, MHA, no final norm) → `output_proj`
//! (units + blank), greedy per frame.

use crate::model::nn::proj::Proj;
use std::borrow::Borrow;

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor};

use super::config::CtcDecoderConfig;
use super::ctc::{collapse, CtcCollapser};
use crate::model::llama::attention::AttentionDims;
use crate::model::llama::cache::KvCache;
use crate::model::llama::layer::{DecoderLayer, LayerDims};
use crate::model::llama::rope::Rope;
use crate::model::llama::sampling::argmax;
use crate::model::llama::LlamaConfig;
use crate::streaming::Streaming;
use crate::weights::{RunDType, WeightStore};
use crate::{Error, Result};

#[derive(Module, Debug)]
pub struct SpeechGenerator {
    pub input_proj: Proj,
    pub layers: Vec<DecoderLayer>,
    pub output_proj: Proj,
    #[module(skip)]
    pub config: CtcDecoderConfig,
    #[module(skip)]
    pub llm_hidden: usize,
    #[module(skip)]
    pub rope: Rope,
    #[module(skip)]
    pub dtype: RunDType,
    #[module(skip)]
    device: Device,
}

impl SpeechGenerator {
    /// Loads `{prefix}input_proj`, `{prefix}layers.N.*`, `{prefix}output_proj`
    /// (the reference's prefix is `speech_generator.`). The layers copy the
    /// LLM's norm eps and RoPE settings, as the reference deep-copies its config.
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        llm: &LlamaConfig,
        cfg: &CtcDecoderConfig,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        let head_dim = cfg.dim / cfg.n_heads;
        let dims = LayerDims {
            attn: AttentionDims {
                hidden: cfg.dim,
                n_heads: cfg.n_heads,
                n_kv_heads: cfg.n_heads,
                head_dim,
            },
            ffn: cfg.ffn,
            eps: llm.rms_norm_eps,
        };
        let layers = (0..cfg.n_layers)
            .map(|i| {
                DecoderLayer::load(store, &format!("{prefix}layers.{i}"), &dims, dtype, device)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SpeechGenerator {
            input_proj: store.proj(
                &format!("{prefix}input_proj"),
                llm.hidden_size,
                cfg.dim,
                true,
                dtype,
                device,
            )?,
            layers,
            output_proj: store.proj(
                &format!("{prefix}output_proj"),
                cfg.dim,
                cfg.unit_vocab_size + 1,
                true,
                dtype,
                device,
            )?,
            config: *cfg,
            llm_hidden: llm.hidden_size,
            rope: Rope::new(head_dim, llm.rope_theta, llm.rope_scaling.as_ref()),
            // Activations (f32 for f16 weights on the CPU: `WeightStore::activations`).
            dtype: store.activations(dtype, device),
            device: device.clone(),
        })
    }

    fn device(&self) -> Device {
        self.device.clone()
    }

    /// A fresh cache for [`SpeechGenerator::frame_logits`].
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// CTC logits `[n·λ, units+1]` of `n` hidden states `[n, llm_hidden]`,
    /// continuing after the frames `cache` already holds.
    pub fn frame_logits(&self, reps: Tensor<2>, cache: &mut KvCache) -> Result<Tensor<2>> {
        let [n, h] = reps.dims();
        if h != self.llm_hidden || n == 0 {
            return Err(Error::InvalidInput(format!(
                "speech decoder input [{n}, {h}]; expected [n>0, {}]",
                self.llm_hidden
            )));
        }
        let lambda = self.config.upsample_factor;
        // Uniform assignment with an integer ratio: frame t reads state ⌊t/λ⌋.
        let x = reps
            .unsqueeze_dim::<3>(1)
            .expand([n, lambda, h])
            .reshape([1, n * lambda, h]);
        let logits = self.forward_frames(x, cache);
        Ok(logits.reshape([n * lambda, self.config.unit_vocab_size + 1]))
    }

    /// `input_proj` → layers → `output_proj` on already upsampled frames
    /// `[b, frames, llm_hidden]` at positions `cache.len()..`: logits
    /// `[b, frames, units+1]`. Training passes a right-padded batch (causal
    /// attention keeps real frames from seeing the padding after them).
    pub fn forward_frames(&self, x: Tensor<3>, cache: &mut KvCache) -> Tensor<3> {
        let frames = x.dims()[1];
        let mut x = self.input_proj.forward(x.cast(self.dtype.burn()));
        let (cos, sin) = self
            .rope
            .tables(cache.len(), frames, self.dtype.burn(), &self.device());
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            x = layer.forward(x, &cos, &sin, lc);
        }
        self.output_proj.forward(x)
    }

    /// Greedy frame labels of `[frames, classes]` logits, on the host.
    pub fn frame_labels(&self, logits: Tensor<2>) -> Result<Vec<u32>> {
        let [frames, classes] = logits.dims();
        let v = logits
            .cast(DType::F32)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::InvalidInput(format!("logits readback: {e:?}")))?;
        Ok((0..frames)
            .map(|f| argmax(&v[f * classes..(f + 1) * classes]) as u32)
            .collect())
    }

    /// The reference's `predict` + `ctc_postprocess`: the whole sequence of
    /// hidden states at once. Returns (frame labels, units).
    pub fn predict(&self, reps: Tensor<2>) -> Result<(Vec<u32>, Vec<u32>)> {
        let mut cache = self.new_cache();
        let frames = self.frame_labels(self.frame_logits(reps, &mut cache)?)?;
        let units = collapse(&frames, self.config.blank());
        Ok((frames, units))
    }
}

/// Incremental unit decoding: one LLM hidden state in, the units it completes
/// out. Causal attention and repetition upsampling make earlier frames final,
/// so this equals [`SpeechGenerator::predict`] on the whole sequence. `G` is
/// anything that lends a [`SpeechGenerator`] (`&SpeechGenerator`, an `Arc`, or
/// the generator itself), as for [`VocoderStream`](crate::model::vocoder::VocoderStream).
#[derive(Debug, Clone)]
pub struct UnitStream<G: Borrow<SpeechGenerator>> {
    generator: G,
    cache: KvCache,
    ctc: CtcCollapser,
    states: usize,
}

impl<G: Borrow<SpeechGenerator>> UnitStream<G> {
    pub fn new(generator: G) -> Self {
        let (cache, blank) = {
            let g = generator.borrow();
            (g.new_cache(), g.config.blank())
        };
        UnitStream {
            generator,
            cache,
            ctc: CtcCollapser::new(blank),
            states: 0,
        }
    }

    /// The speech decoder.
    pub fn generator(&self) -> &SpeechGenerator {
        self.generator.borrow()
    }

    /// Hidden states consumed since the last reset.
    pub fn states(&self) -> usize {
        self.states
    }
}

impl<G: Borrow<SpeechGenerator>> Streaming for UnitStream<G> {
    /// LLM hidden states `[n, llm_hidden]` (usually n = 1).
    type Input<'a> = Tensor<2>;
    /// The units they complete.
    type Output = Vec<u32>;

    /// Feeds hidden states; returns the new units.
    fn push(&mut self, reps: Tensor<2>) -> Result<Vec<u32>> {
        let n = reps.dims()[0];
        let generator = self.generator.borrow();
        let logits = generator.frame_logits(reps, &mut self.cache)?;
        let frames = generator.frame_labels(logits)?;
        self.states += n;
        self.ctc.push(&frames)
    }

    /// Every unit is given out as soon as its frames are decoded: nothing is held
    /// back. Clears the cache for the next utterance.
    fn flush(&mut self) -> Result<Vec<u32>> {
        self.cache.clear();
        self.ctc.flush()
    }

    /// Starts a new utterance.
    fn reset(&mut self) {
        self.cache.clear();
        self.ctc.reset();
        self.states = 0;
    }
}
