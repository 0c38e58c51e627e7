//! Whisper's `AudioEncoder`: conv1 + GELU, conv2 (stride 2) + GELU, sinusoidal
//! positions, pre-LN residual attention blocks, `ln_post`.

use burn::module::{Module, Param};
use burn::tensor::activation::gelu;
use burn::tensor::module::{attention, conv1d};
use burn::tensor::ops::{AttentionModuleOptions, ConvOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::config::WhisperConfig;
use super::host::HostEncoder;
use crate::model::nn::host::{from_host_f32, to_host_f32};
use crate::model::nn::norm::LayerNorm;
use crate::model::nn::proj::Proj;
use crate::weights::{RunDType, WeightStore};
use crate::{Error, Result};

/// Key names of the two published Whisper layouts (after the prefix is removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhisperKeyLayout {
    /// openai-whisper: `conv1`, `blocks.N.attn.query`, `positional_embedding`, `ln_post`.
    OpenAi,
    /// HF transformers: `conv1`, `layers.N.self_attn.q_proj`, `embed_positions.weight`, `layer_norm`.
    Hf,
}

impl WhisperKeyLayout {
    /// Detects the layout from the keys present.
    pub fn detect(store: &WeightStore) -> Option<Self> {
        if store.contains("blocks.0.attn.query.weight") || store.contains("ln_post.weight") {
            Some(WhisperKeyLayout::OpenAi)
        } else if store.contains("layers.0.self_attn.q_proj.weight")
            || store.contains("layer_norm.weight")
        {
            Some(WhisperKeyLayout::Hf)
        } else {
            None
        }
    }

    fn pos(self) -> &'static str {
        match self {
            WhisperKeyLayout::OpenAi => "positional_embedding",
            WhisperKeyLayout::Hf => "embed_positions.weight",
        }
    }

    fn ln_post(self) -> &'static str {
        match self {
            WhisperKeyLayout::OpenAi => "ln_post",
            WhisperKeyLayout::Hf => "layer_norm",
        }
    }

    /// Key of a part of block `i`: `attn_ln`, `q`, `k`, `v`, `out`, `mlp_ln`, `fc1`, `fc2`.
    fn block(self, i: usize, part: &str) -> String {
        let (o, h) = match part {
            "attn_ln" => ("attn_ln", "self_attn_layer_norm"),
            "q" => ("attn.query", "self_attn.q_proj"),
            "k" => ("attn.key", "self_attn.k_proj"),
            "v" => ("attn.value", "self_attn.v_proj"),
            "out" => ("attn.out", "self_attn.out_proj"),
            "mlp_ln" => ("mlp_ln", "final_layer_norm"),
            "fc1" => ("mlp.0", "fc1"),
            _ => ("mlp.2", "fc2"),
        };
        match self {
            WhisperKeyLayout::OpenAi => format!("blocks.{i}.{o}"),
            WhisperKeyLayout::Hf => format!("layers.{i}.{h}"),
        }
    }

    /// Infers the dimensions from tensor shapes (for checkpoints without `dims`,
    /// such as the encoder copy inside the LLaMA-Omni shards). Whisper's head
    /// width is 64 in every published size.
    pub fn infer_config(self, store: &WeightStore) -> Result<WhisperConfig> {
        let missing = |key: &str| Error::MissingKey {
            path: store.origin().to_path_buf(),
            key: key.to_string(),
        };
        let conv1 = store
            .info("conv1.weight")
            .ok_or_else(|| missing("conv1.weight"))?;
        let pos = store.info(self.pos()).ok_or_else(|| missing(self.pos()))?;
        let (n_audio_state, n_mels) = match conv1.shape.as_slice() {
            [s, m, 3] => (*s, *m),
            other => {
                return Err(Error::ShapeMismatch {
                    path: store.origin().to_path_buf(),
                    key: "conv1.weight".into(),
                    expected: vec![0, 0, 3],
                    found: other.to_vec(),
                })
            }
        };
        let n_audio_ctx = pos.shape.first().copied().unwrap_or(0);
        let mut n_audio_layer = 0;
        while store.contains(&format!("{}.weight", self.block(n_audio_layer, "q"))) {
            n_audio_layer += 1;
        }
        WhisperConfig {
            n_mels,
            n_audio_ctx,
            n_audio_state,
            n_audio_head: (n_audio_state / 64).max(1),
            n_audio_layer,
        }
        .validate(store.origin())
    }
}

/// Multi-head self-attention of an encoder block (no bias on the key projection).
#[derive(Module, Debug)]
pub struct EncoderAttention {
    pub query: Proj,
    pub key: Proj,
    pub value: Proj,
    pub out: Proj,
    pub n_head: usize,
}

impl EncoderAttention {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, c] = x.dims();
        let h = self.n_head;
        let (q, k, v) = (
            self.query.forward(x.clone()),
            self.key.forward(x.clone()),
            self.value.forward(x),
        );
        if q.device() == Device::flex() {
            return self.out.forward(cpu_attention(q, k, v, h));
        }
        let split = |y: Tensor<3>| y.reshape([b, t, h, c / h]).swap_dims(1, 2);
        let o = attention(
            split(q),
            split(k),
            split(v),
            None,
            None,
            AttentionModuleOptions::default(),
        );
        self.out.forward(o.swap_dims(1, 2).reshape([b, t, c]))
    }
}

/// GELU of the convolution stem's output: on the CPU backend in one vectorized pass
/// on the host buffer (`omni_kernels::bias_gelu`, as the MLP's `fc1`), else burn's
/// `gelu`.
fn conv_gelu(x: Tensor<3>) -> Tensor<3> {
    if x.device() != Device::flex() {
        return gelu(x);
    }
    let (dims, dtype, device) = (x.dims(), x.dtype(), x.device());
    let mut v = to_host_f32(x);
    omni_kernels::bias_gelu(&mut v, None, dims[2].max(1));
    from_host_f32(v, dims, &device, dtype)
}

/// The attention of `[b, t, heads·d]` projections on the CPU backend:
/// `omni_kernels::attention_f32` (blocked GEMMs and a vectorized softmax, reading
/// the heads in place) in f32 whatever the run dtype, the result cast back. flex's
/// fused attention spends most of its time in a scalar `expf` (measured: `expf`
/// 10 % and its loop 18 % of the whisper-base encoder, Intel Xeon, 2026-12-01).
fn cpu_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, t, c] = q.dims();
    let (dtype, device) = (q.dtype(), q.device());
    let (q, k, v) = (to_host_f32(q), to_host_f32(k), to_host_f32(v));
    let mut out = vec![0.0f32; b * t * c];
    for (i, o) in out.chunks_exact_mut(t * c).enumerate() {
        let r = i * t * c..(i + 1) * t * c;
        omni_kernels::attention_f32(
            &q[r.clone()],
            &k[r.clone()],
            &v[r],
            t,
            t,
            heads,
            c / heads,
            o,
        );
    }
    from_host_f32(out, [b, t, c], &device, dtype)
}

/// One pre-LN residual block: attention then a 4× GELU MLP.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    pub attn_ln: LayerNorm,
    pub attn: EncoderAttention,
    pub mlp_ln: LayerNorm,
    pub fc1: Proj,
    pub fc2: Proj,
}

impl EncoderBlock {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.attn_ln.forward(x));
        let y = self
            .fc2
            .forward(self.fc1.forward_gelu(self.mlp_ln.forward(x.clone())));
        x + y
    }
}

/// The Whisper audio encoder.
#[derive(Module, Debug)]
pub struct WhisperEncoder {
    pub conv1_weight: Param<Tensor<3>>,
    pub conv1_bias: Param<Tensor<1>>,
    pub conv2_weight: Param<Tensor<3>>,
    pub conv2_bias: Param<Tensor<1>>,
    pub positional_embedding: Param<Tensor<2>>,
    pub blocks: Vec<EncoderBlock>,
    pub ln_post: LayerNorm,
    #[module(skip)]
    pub config: WhisperConfig,
    #[module(skip)]
    pub dtype: RunDType,
    /// The host-buffer path (CPU backend, packed linear layers: `super::host`);
    /// `None` runs every step in burn.
    #[module(skip)]
    pub host: Option<HostEncoder>,
}

/// openai-whisper's `sinusoids(length, channels)`: sin half first.
pub fn sinusoids(length: usize, channels: usize) -> Vec<f32> {
    let half = channels / 2;
    let inc = (10000f64).ln() / (half as f64 - 1.0).max(1.0);
    let mut out = vec![0f32; length * channels];
    for t in 0..length {
        for i in 0..half {
            let a = t as f64 * (-inc * i as f64).exp();
            out[t * channels + i] = a.sin() as f32;
            out[t * channels + half + i] = a.cos() as f32;
        }
    }
    out
}

impl WhisperEncoder {
    /// Loads the encoder from `store`, whose keys are already stripped of their
    /// prefix (`encoder.`, `model.encoder.` or `model.speech_encoder.`).
    pub fn load(
        store: &WeightStore,
        config: &WhisperConfig,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        let layout = WhisperKeyLayout::detect(store).ok_or_else(|| Error::MissingKey {
            path: store.origin().to_path_buf(),
            key: "blocks.0.attn.query.weight (openai layout) or layers.0.self_attn.q_proj.weight (HF layout)".into(),
        })?;
        let c = config.n_audio_state;
        let eps = 1e-5;
        // The linear layers: f32/f16 weights as omni-kernels matrices on the CPU (the
        // `gemm` crate on the stored [out, in] weight: 1.5–2× burn's matmul at the
        // encoder's fc1 shapes, `examples/gemm_probe.rs`); never quantized. A q8_0 /
        // q4_0 run (its formats are for the LLM's and speech decoder's layers) keeps
        // them in f16 where the CPU packs f16 (Whisper's published weights are f16,
        // so exact): half the memory of f32 (large-v3: 1.3 vs 2.5 GB), f32
        // activations as f16 runs; large-v3, 4 layers (`omni_bench`, Intel Xeon with
        // AMX, 2026-12-01): 0.80 s vs 0.92 s for f32 weights. Elsewhere f32.
        let quantized_f16 = dtype.quantized().is_some()
            && store.activations(RunDType::F16, device) == RunDType::F32;
        let (lin, dtype) = if quantized_f16 {
            (RunDType::F16, RunDType::F16)
        } else {
            (dtype.float(), dtype)
        };
        // Norms, convolutions, the positional embedding and the activations in the
        // activations' dtype: f32 for f16 runs on the CPU (f16 weights in the packed
        // linear layers), as the LLM (`WeightStore::activations`): flex's f16
        // elementwise ops convert per element, and the attention runs in f32 anyway.
        // large-v3, 4 layers (`omni_bench`, Intel Xeon with AMX, 2026-12-01): f16
        // activations 1.28 s, f32 activations 1.00 s (f32 weights: 1.02 s).
        let act = store.activations(dtype, device);
        let dtype = act;
        let mut blocks = Vec::with_capacity(config.n_audio_layer);
        for i in 0..config.n_audio_layer {
            let key = |p: &str| layout.block(i, p);
            blocks.push(EncoderBlock {
                attn_ln: LayerNorm::load(store, &key("attn_ln"), c, eps, dtype, device)?,
                attn: EncoderAttention {
                    query: store.proj(&key("q"), c, c, true, lin, device)?,
                    key: store.proj(&key("k"), c, c, false, lin, device)?,
                    value: store.proj(&key("v"), c, c, true, lin, device)?,
                    out: store.proj(&key("out"), c, c, true, lin, device)?,
                    n_head: config.n_audio_head,
                },
                mlp_ln: LayerNorm::load(store, &key("mlp_ln"), c, eps, dtype, device)?,
                fc1: store.proj(&key("fc1"), c, 4 * c, true, lin, device)?,
                fc2: store.proj(&key("fc2"), 4 * c, c, true, lin, device)?,
            });
        }
        let positional_embedding = if store.contains(layout.pos()) {
            store.tensor(layout.pos(), [config.n_audio_ctx, c], dtype, device)?
        } else {
            // A non-persistent buffer in some exports: it is a fixed function.
            let data = TensorData::new(sinusoids(config.n_audio_ctx, c), [config.n_audio_ctx, c]);
            Tensor::<2>::from_data(data, device).cast(dtype.burn())
        };
        let mut enc = WhisperEncoder {
            conv1_weight: Param::from_tensor(store.tensor(
                "conv1.weight",
                [c, config.n_mels, 3],
                dtype,
                device,
            )?),
            conv1_bias: Param::from_tensor(store.vector("conv1.bias", c, dtype, device)?),
            conv2_weight: Param::from_tensor(store.tensor(
                "conv2.weight",
                [c, c, 3],
                dtype,
                device,
            )?),
            conv2_bias: Param::from_tensor(store.vector("conv2.bias", c, dtype, device)?),
            positional_embedding: Param::from_tensor(positional_embedding),
            blocks,
            ln_post: LayerNorm::load(store, layout.ln_post(), c, eps, dtype, device)?,
            config: config.clone(),
            dtype,
            host: None,
        };
        if *device == Device::flex() {
            enc.host = HostEncoder::new(&enc);
        }
        Ok(enc)
    }

    /// Device of the weights.
    pub fn device(&self) -> Device {
        self.conv1_bias.val().device()
    }

    /// Turns a row-major log-mel spectrogram `[n_mels, n_frames]` into the encoder
    /// input `[1, n_mels, n_frames]` of the run dtype.
    pub fn mel_tensor(&self, mel: &[f32], n_mels: usize, n_frames: usize) -> Result<Tensor<3>> {
        if n_mels != self.config.n_mels || mel.len() != n_mels * n_frames {
            return Err(Error::InvalidInput(format!(
                "log-mel of {} values as [{n_mels}, {n_frames}]; the encoder takes {} bins",
                mel.len(),
                self.config.n_mels
            )));
        }
        let data = TensorData::new(mel.to_vec(), [1, n_mels, n_frames]);
        Ok(Tensor::<3>::from_data(data, &self.device()).cast(self.dtype.burn()))
    }

    /// Runs the encoder on `[batch, n_mels, frames]` → `[batch, frames/2, n_audio_state]`.
    /// `frames` may be at most `2 * n_audio_ctx` (3000 for a 30 s window, as the reference).
    pub fn forward(&self, mel: Tensor<3>) -> Result<Tensor<3>> {
        let [_, n_mels, frames] = mel.dims();
        if n_mels != self.config.n_mels {
            return Err(Error::InvalidInput(format!(
                "mel has {n_mels} bins, the encoder takes {}",
                self.config.n_mels
            )));
        }
        if frames == 0 || frames > self.config.n_frames() {
            return Err(Error::InvalidInput(format!(
                "mel has {frames} frames; the encoder takes 1..={} (30 s)",
                self.config.n_frames()
            )));
        }
        if let Some(host) = self
            .host
            .as_ref()
            .filter(|_| mel.device() == Device::flex())
        {
            return Ok(host.forward(self, mel));
        }
        let x = conv_gelu(conv1d(
            mel,
            self.conv1_weight.val(),
            Some(self.conv1_bias.val()),
            ConvOptions::new([1], [1], [1], 1),
        ));
        let x = conv_gelu(conv1d(
            x,
            self.conv2_weight.val(),
            Some(self.conv2_bias.val()),
            ConvOptions::new([2], [1], [1], 1),
        ));
        let x = x.swap_dims(1, 2); // [b, t, c]
        let t = x.dims()[1];
        let pos = self
            .positional_embedding
            .val()
            .narrow(0, 0, t)
            .unsqueeze::<3>();
        let mut x = x + pos;
        for block in &self.blocks {
            x = block.forward(x);
        }
        Ok(self.ln_post.forward(x))
    }
}
