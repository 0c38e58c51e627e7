//! A decoder layer on host f32 buffers, for the CPU backend when every linear layer
//! is packed (inference; training's burn layers never come here): the computation
//! of [`DecoderLayer::forward`]'s burn path (transformers'
//! `LlamaDecoderLayer.forward`: `input_layernorm`, `LlamaAttention` with
//! `apply_rotary_pos_emb` and the KV cache, the residual, `post_attention_layernorm`,
//! `LlamaMLP`, the residual) without a tensor between the steps:
//!
//! - RMSNorm (`omni_kernels::rms_norm_rows`), q/k/v, `o_proj`, gate/up/down
//!   ([`Proj::forward_host`]; SwiGLU's `silu(g)·u` in one pass,
//!   `omni_kernels::silu_mul`), the residual adds in place;
//! - RoPE on the token-major q and k in place (rotate-half, the same f32 products
//!   and sums as [`super::rope::apply`]);
//! - the new keys and values go to the cache's host buffers
//!   ([`LayerCache::append_host`]); the attention (`omni_kernels::attention_heads`,
//!   causal, grouped-query) reads q in place and every cached key and value where
//!   the cache holds them.
//!
//! The buffers are the calling thread's scratch (`nn::host::with_scratch`, reused
//! from layer to layer and call to call: 30 MB at the 1B shape and 340 tokens).
//! Taken for prompts, decode steps and the speech decoder's frames alike: a step
//! costs the layer's weights and the cache read in place, no tensor operations
//! (before the host cache, decode ran burn's ops: at the 1B shape in q4_0, 0.5 ms
//! per layer outside the matrix products, a fifth of the step).

use burn::tensor::{Device, Tensor};

use super::cache::LayerCache;
use super::layer::DecoderLayer;
use crate::model::nn::host::{add_assign, from_host_f32, to_host_f32, with_scratch};
use crate::model::nn::proj::Proj;
use crate::model::nn::rms_norm::RmsNorm;

/// Whether `layer` can run `x` (`[b, s, hidden]`) on host buffers: the CPU
/// backend, one sequence, every linear layer packed without LoRA.
pub fn takes(layer: &DecoderLayer, x: &Tensor<3>) -> bool {
    let [b, _, _] = x.dims();
    let (a, m) = (&layer.self_attn, &layer.mlp);
    b == 1
        && x.device() == Device::flex()
        && [
            &a.q_proj,
            &a.k_proj,
            &a.v_proj,
            &a.o_proj,
            &m.gate_proj,
            &m.up_proj,
            &m.down_proj,
        ]
        .iter()
        .all(|p| p.weight_matrix().is_some() && p.lora.is_none() && p.bias.is_none())
}

/// `layer` on `x` `[1, s, hidden]` at positions `cache.len()..` (checked by
/// [`takes`]), `cos`/`sin` `[1, 1, s, head_dim]` from `Rope::tables`.
pub fn layer_forward(
    layer: &DecoderLayer,
    x: Tensor<3>,
    cos: &Tensor<4>,
    sin: &Tensor<4>,
    cache: &mut LayerCache,
) -> Tensor<3> {
    let [_, s, hidden] = x.dims();
    let (dtype, device) = (x.dtype(), x.device());
    let a = &layer.self_attn;
    let (h, kvh, d) = (a.n_heads, a.n_kv_heads, a.head_dim);
    let ffn = layer.mlp.gate_proj.dims()[1];
    let p0 = cache.len();
    let (cos, sin) = (to_host_f32(cos.clone()), to_host_f32(sin.clone()));
    let mut x = to_host_f32(x);
    let (qn, kvn) = (s * h * d, s * kvh * d);
    let len = s * hidden + qn + 2 * kvn + qn + 2 * s * ffn;
    with_scratch(len, |buf| {
        let (ln, rest) = buf.split_at_mut(s * hidden);
        let (q, rest) = rest.split_at_mut(qn);
        let (k, rest) = rest.split_at_mut(kvn);
        let (v, rest) = rest.split_at_mut(kvn);
        let (att, rest) = rest.split_at_mut(qn);
        let (g, u) = rest.split_at_mut(s * ffn);
        // Attention.
        rms_norm(&layer.input_layernorm, &x, ln);
        project(&a.q_proj, ln, s, q);
        project(&a.k_proj, ln, s, k);
        project(&a.v_proj, ln, s, v);
        rope_rows(q, h, d, &cos, &sin);
        rope_rows(k, kvh, d, &cos, &sin);
        let (k_all, v_all) = cache.append_host(k, v, s, kvh, d, dtype, &device);
        omni_kernels::attention_heads(
            heads(q, h, s, d, h * d),
            heads(k_all.data, kvh, k_all.rows, k_all.head_stride, d),
            heads(v_all.data, kvh, v_all.rows, v_all.head_stride, d),
            d,
            Some(p0),
            att,
        );
        project(&a.o_proj, att, s, ln);
        add_assign(&mut x, ln);
        // MLP.
        rms_norm(&layer.post_attention_layernorm, &x, ln);
        project(&layer.mlp.gate_proj, ln, s, g);
        project(&layer.mlp.up_proj, ln, s, u);
        omni_kernels::silu_mul(g, u);
        project(&layer.mlp.down_proj, g, s, ln);
        add_assign(&mut x, ln);
    });
    from_host_f32(x, [1, s, hidden], &device, dtype)
}

/// `heads` attention heads of `rows` rows in `data` (see `omni_kernels::Heads`).
fn heads(
    data: &[f32],
    heads: usize,
    rows: usize,
    head_stride: usize,
    row_stride: usize,
) -> omni_kernels::Heads<'_> {
    omni_kernels::Heads {
        data,
        heads,
        rows,
        head_stride,
        row_stride,
    }
}

/// `out = layer(x)` for a layer [`takes`] checked.
fn project(layer: &Proj, x: &[f32], m: usize, out: &mut [f32]) {
    assert!(
        layer.forward_host(x, m, out, false),
        "prompt host path on an unpacked layer"
    );
}

fn rms_norm(n: &RmsNorm, x: &[f32], out: &mut [f32]) {
    omni_kernels::rms_norm_rows(x, &to_host_f32(n.weight.val()), n.eps as f32, out);
}

/// RoPE in place on `x` `[s, heads·d]` (token-major), `cos`/`sin` `[s, d]`: per
/// head, `x·cos + rotate_half(x)·sin` with `rotate_half(x) = [−x2, x1]`
/// ([`super::rope::apply`]'s products and sums, in the same order).
fn rope_rows(x: &mut [f32], heads: usize, d: usize, cos: &[f32], sin: &[f32]) {
    let half = d / 2;
    for (p, row) in x.chunks_exact_mut(heads * d).enumerate() {
        let (c, sn) = (&cos[p * d..(p + 1) * d], &sin[p * d..(p + 1) * d]);
        for head in row.chunks_exact_mut(d) {
            for i in 0..half {
                let (x1, x2) = (head[i], head[i + half]);
                head[i] = x1 * c[i] + -x2 * sn[i];
                head[i + half] = x2 * c[i + half] + x1 * sn[i + half];
            }
        }
    }
}
