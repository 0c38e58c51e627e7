//! One Llama decoder layer (HF `LlamaDecoderLayer`): pre-RMSNorm attention and
//! SwiGLU MLP, each with a residual. The speech decoder uses the same layer.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::attention::{Attention, AttentionDims};
use super::cache::LayerCache;
use super::mlp::Mlp;
use crate::model::nn::rms_norm::RmsNorm;
use crate::weights::{RunDType, WeightStore};
use crate::Result;

/// Shapes of one decoder layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerDims {
    pub attn: AttentionDims,
    pub ffn: usize,
    pub eps: f64,
}

#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
}

impl DecoderLayer {
    /// Loads the HF keys under `{prefix}` (e.g. `model.layers.3`).
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        d: &LayerDims,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        let h = d.attn.hidden;
        let act = store.activations(dtype, device);
        Ok(DecoderLayer {
            input_layernorm: RmsNorm::load(
                store,
                &format!("{prefix}.input_layernorm.weight"),
                h,
                d.eps,
                act,
                device,
            )?,
            self_attn: Attention::load(
                store,
                &format!("{prefix}.self_attn"),
                d.attn,
                dtype,
                device,
            )?,
            post_attention_layernorm: RmsNorm::load(
                store,
                &format!("{prefix}.post_attention_layernorm.weight"),
                h,
                d.eps,
                act,
                device,
            )?,
            mlp: Mlp::load(store, &format!("{prefix}.mlp"), h, d.ffn, dtype, device)?,
        })
    }

    /// The layer on `x` `[b, s, hidden]` at positions `cache.len()..`: on the CPU
    /// with packed weights on host buffers (`super::host`), anything else in burn's
    /// ops ([`DecoderLayer::forward_burn`]).
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        cache: &mut LayerCache,
    ) -> Tensor<3> {
        if super::host::takes(self, &x) {
            return super::host::layer_forward(self, x, cos, sin, cache);
        }
        self.forward_burn(x, cos, sin, cache)
    }

    /// The layer in burn's ops (other devices, unpacked weights, training's autodiff): the
    /// definition the host path is tested against.
    pub fn forward_burn(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        cache: &mut LayerCache,
    ) -> Tensor<3> {
        let x = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), cos, sin, cache);
        x.clone() + self.mlp.forward(self.post_attention_layernorm.forward(x))
    }
}
