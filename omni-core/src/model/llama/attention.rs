//! Grouped-query self-attention with RoPE and a KV cache.

use crate::model::nn::proj::Proj;
use burn::module::Module;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Tensor};

use super::cache::LayerCache;
use super::rope;
use crate::weights::{RunDType, WeightStore};
use crate::Result;

/// Attention shapes of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionDims {
    pub hidden: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

/// `q_proj`, `k_proj`, `v_proj`, `o_proj` (no biases, as Llama).
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Proj,
    pub k_proj: Proj,
    pub v_proj: Proj,
    pub o_proj: Proj,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

impl Attention {
    /// Loads `{prefix}.q_proj` … `{prefix}.o_proj`.
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        d: AttentionDims,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        let q = d.n_heads * d.head_dim;
        let kv = d.n_kv_heads * d.head_dim;
        Ok(Attention {
            q_proj: store.proj(
                &format!("{prefix}.q_proj"),
                d.hidden,
                q,
                false,
                dtype,
                device,
            )?,
            k_proj: store.proj(
                &format!("{prefix}.k_proj"),
                d.hidden,
                kv,
                false,
                dtype,
                device,
            )?,
            v_proj: store.proj(
                &format!("{prefix}.v_proj"),
                d.hidden,
                kv,
                false,
                dtype,
                device,
            )?,
            o_proj: store.proj(
                &format!("{prefix}.o_proj"),
                q,
                d.hidden,
                false,
                dtype,
                device,
            )?,
            n_heads: d.n_heads,
            n_kv_heads: d.n_kv_heads,
            head_dim: d.head_dim,
        })
    }

    /// `x`: `[1, s, hidden]` at positions `cache.len()..`; causal over the cache
    /// and the new positions.
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        cache: &mut LayerCache,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let (h, kvh, hd) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let [q, k, v] = Proj::forward_shared([&self.q_proj, &self.k_proj, &self.v_proj], x);
        let q = q.reshape([b, s, h, hd]).swap_dims(1, 2);
        let k = k.reshape([b, s, kvh, hd]).swap_dims(1, 2);
        let v = v.reshape([b, s, kvh, hd]).swap_dims(1, 2);
        let q = rope::apply(q, cos, sin);
        let k = rope::apply(k, cos, sin);
        let (k, v) = cache.append(k, v);
        let t = k.dims()[2];
        let rep = h / kvh;
        let out = if s == 1 {
            // One query: group the query heads of each KV head as its "sequence",
            // so the cache is read in place (no repeat of K/V). It attends every
            // cached position, so no mask is needed.
            let qg = q.reshape([b, kvh, rep, hd]);
            let o = attention(qg, k, v, None, None, AttentionModuleOptions::default());
            o.reshape([b, h, 1, hd])
        } else {
            let (k, v) = if rep > 1 {
                let expand = |x: Tensor<4>| {
                    x.unsqueeze_dim::<5>(2)
                        .expand([b, kvh, rep, t, hd])
                        .reshape([b, h, t, hd])
                };
                (expand(k), expand(v))
            } else {
                (k, v)
            };
            let opts = AttentionModuleOptions {
                is_causal: true,
                ..Default::default()
            };
            attention(q, k, v, None, None, opts)
        };
        self.o_proj
            .forward(out.swap_dims(1, 2).reshape([b, s, h * hd]))
    }
}
