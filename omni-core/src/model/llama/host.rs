//! A prompt's decoder layer on host f32 buffers, for the CPU backend when every
//! linear layer is packed (inference; training's burn layers never come here): the
//! computation of [`DecoderLayer::forward`]'s burn path (transformers'
//! `LlamaDecoderLayer.forward`: `input_layernorm`, `LlamaAttention` with
//! `apply_rotary_pos_emb` and the KV cache, the residual, `post_attention_layernorm`,
//! `LlamaMLP`, the residual) without a tensor between the steps:
//!
//! - RMSNorm (`omni_kernels::rms_norm_rows`), q/k/v, `o_proj`, gate/up/down
//!   ([`Proj::forward_host`]; SwiGLU's `silu(g)·u` in one pass,
//!   `omni_kernels::silu_mul`), the residual adds in place;
//! - RoPE on the token-major q and k in place (rotate-half, the same f32 products
//!   and sums as [`super::rope::apply`]);
//! - the new keys and values go to the cache as head-major tensors; the attention
//!   (`omni_kernels::attention_heads`, causal, grouped-query) reads q in place and,
//!   on a fresh cache, k and v from the same host buffers (else the cache's).
//!
//! The buffers are the calling thread's scratch (`nn::host::with_scratch`, reused
//! from layer to layer and call to call: 30 MB at the 1B shape and 340 tokens).
//! Taken for prompts ([`DecoderLayer::forward`]'s rule: more than one new position,
//! at least a quarter of the keys new), not for decode's single positions nor the
//! speech decoder's 25 frames against a long cache.

use burn::tensor::{Device, Tensor};

use super::cache::LayerCache;
use super::layer::DecoderLayer;
use crate::model::nn::host::{add_assign, from_host_f32, to_host_f32, with_scratch};
use crate::model::nn::proj::Proj;
use crate::model::nn::rms_norm::RmsNorm;

/// Whether `layer` can run `x` (`[b, s, hidden]`) after `cached` positions on host
/// buffers: the CPU backend, one sequence of more than one position with at least a
/// quarter of the keys new, every linear layer packed without LoRA.
pub fn takes(layer: &DecoderLayer, x: &Tensor<3>, cached: usize) -> bool {
    let [b, s, _] = x.dims();
    let (a, m) = (&layer.self_attn, &layer.mlp);
    b == 1
        && s > 1
        && 4 * s >= cached + s
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
        let (k_heads, v_heads) = (head_major(k, s, kvh, d), head_major(v, s, kvh, d));
        let as_tensor = |t: Vec<f32>| from_host_f32(t, [1, kvh, s, d], &device, dtype);
        let attend = |k_all: &[f32], v_all: &[f32], att: &mut [f32]| {
            let t = p0 + s;
            omni_kernels::attention_heads(
                heads(q, h, s, d, h * d),
                heads(k_all, kvh, t, t * d, d),
                heads(v_all, kvh, t, t * d, d),
                d,
                Some(p0),
                att,
            )
        };
        if p0 == 0 {
            // A fresh cache: the keys are exactly the new ones; the buffers then move
            // into the cache.
            attend(&k_heads, &v_heads, att);
            cache.append(as_tensor(k_heads), as_tensor(v_heads));
        } else {
            let (k_all, v_all) = cache.append(as_tensor(k_heads), as_tensor(v_heads));
            attend(&to_host_f32(k_all), &to_host_f32(v_all), att);
        }
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

/// `[s, heads·d]` (token-major) → `[heads, s, d]` (the cache's layout).
fn head_major(x: &[f32], s: usize, heads: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for (p, row) in x.chunks_exact(heads * d).enumerate() {
        for (hd, v) in row.chunks_exact(d).enumerate() {
            out[(hd * s + p) * d..][..d].copy_from_slice(v);
        }
    }
    out
}
