//! The Whisper encoder on host f32 buffers, for the CPU backend when every linear
//! layer of the blocks is packed (f32 or f16 `omni_kernels::WeightMatrix`): the
//! computation of [`WhisperEncoder::forward`]'s burn path (openai-whisper
//! `AudioEncoder.forward` and `ResidualAttentionBlock.forward`) without a tensor
//! between the steps:
//!
//! - the convolution stem as two GEMMs: each output frame's three input frames side
//!   by side (im2col, `[t, 3·c_in]`, taps outer) times the weight reordered at load
//!   to `[c_out, 3, c_in]`. Frame-major outputs `[t, c]` are the layout the blocks
//!   take (no transpose); the bias and GELU are one pass (`bias_gelu`), the
//!   positions are added in place. conv2's input frames are rows of conv1's output
//!   (with a zero row before and after), so its im2col rows are contiguous copies.
//! - the blocks on buffers reused from layer to layer: LayerNorm
//!   (`omni_kernels::layer_norm_rows`), q/k/v ([`Proj::forward_host`]), attention
//!   (`omni_kernels::attention_f32`), the output projection and `fc2` added to the
//!   residual in place, `fc1` with its GELU in its output pass.
//!
//! The buffers (`9·t·c` floats, 77 MB at large-v3's 1500 × 1280) are the calling
//! thread's scratch (`nn::host::with_scratch`), kept between calls.
//!
//! Measured against burn's path (Intel Xeon, 2 threads, 2026-12-01, f32):
//! `examples/whisper_probe.rs`, large-v3 shape with 4 layers: 1032 → 882 ms, the
//! stem (+ `ln_post`) 87.6 → 52.9 ms; `omni_bench`: whisper-base 332 → 292 ms,
//! large-v3 4 layers 998 → 885 ms. What remains is 88 % the `gemm` crate.

use std::sync::Arc;

use burn::module::Param;
use burn::tensor::Tensor;
use omni_kernels::{Format, WeightMatrix};
use rayon::prelude::*;

use super::encoder::{EncoderBlock, WhisperEncoder};
use crate::model::nn::host::{add_assign, from_host_f32, to_host_f32, with_scratch};
use crate::model::nn::norm::LayerNorm;
use crate::model::nn::proj::Proj;

/// The encoder's host-buffer path: what it needs beyond the burn module's weights,
/// the convolution stem's weights as GEMM matrices, `[c_out, 3·c_in]` with the taps
/// outer (`w'[o, j·c_in + i] = w[o, i, j]`), in the blocks' weight format (a second,
/// reordered copy of the convolutions; the blocks' packed weights are shared).
#[derive(Clone)]
pub struct HostEncoder {
    conv1: Arc<WeightMatrix>,
    conv2: Arc<WeightMatrix>,
}

impl std::fmt::Debug for HostEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostEncoder")
            .field("conv1", &self.conv1.shape())
            .field("conv2", &self.conv2.shape())
            .finish()
    }
}

impl HostEncoder {
    /// The stem of `enc` when its blocks can run on host buffers (every linear layer
    /// packed, none with LoRA, all in one format), else `None` (burn runs the
    /// encoder). Reads the convolution weights back from their device.
    pub fn new(enc: &WhisperEncoder) -> Option<Self> {
        let mut format = None;
        for b in &enc.blocks {
            let a = &b.attn;
            for p in [&a.query, &a.key, &a.value, &a.out, &b.fc1, &b.fc2] {
                let w = p.weight_matrix().filter(|_| p.lora.is_none())?;
                if *format.get_or_insert(w.format()) != w.format() {
                    return None;
                }
            }
        }
        let format = format.unwrap_or(Format::F32);
        if !matches!(format, Format::F32 | Format::F16) {
            return None;
        }
        let taps_outer = |w: &Param<Tensor<3>>| {
            let t = w.val();
            let [c_out, c_in, k] = t.dims();
            let v = to_host_f32(t);
            let mut r = vec![0.0f32; v.len()];
            for o in 0..c_out {
                for i in 0..c_in {
                    for j in 0..k {
                        r[o * c_in * k + j * c_in + i] = v[(o * c_in + i) * k + j];
                    }
                }
            }
            // f16 runs: the values are f16 already (exact).
            Arc::new(WeightMatrix::from_f32(format, c_out, c_in * k, &r))
        };
        Some(HostEncoder {
            conv1: taps_outer(&enc.conv1_weight),
            conv2: taps_outer(&enc.conv2_weight),
        })
    }

    /// [`WhisperEncoder::forward`] of `mel` `[batch, n_mels, frames]` (validated by
    /// the caller) → `[batch, t, c]`, `t = (frames − 1) / 2 + 1`.
    pub fn forward(&self, enc: &WhisperEncoder, mel: Tensor<3>) -> Tensor<3> {
        let [batch, n_mels, frames] = mel.dims();
        let (device, dtype) = (mel.device(), enc.dtype.burn());
        let c = enc.config.n_audio_state;
        let t = (frames - 1) / 2 + 1;
        let mel = to_host_f32(mel);
        let pos = to_host_f32(enc.positional_embedding.val().narrow(0, 0, t));
        let mut out = vec![0.0f32; batch * t * c];
        with_scratch(Buffers::len(frames, n_mels, t, c), |scratch| {
            let mut s = Buffers::new(scratch, frames, n_mels, t, c);
            for (mel, out) in mel
                .chunks_exact(n_mels * frames)
                .zip(out.chunks_exact_mut(t * c))
            {
                self.stem(enc, mel, frames, &pos, &mut s);
                for block in &enc.blocks {
                    block_forward(block, t, &mut s);
                }
                layer_norm(&enc.ln_post, s.x, out);
            }
        });
        from_host_f32(out, [batch, t, c], &device, dtype)
    }

    /// `s.x = gelu(conv2(gelu(conv1(mel)))) + pos` for one mel `[n_mels, frames]`.
    fn stem(
        &self,
        enc: &WhisperEncoder,
        mel: &[f32],
        frames: usize,
        pos: &[f32],
        s: &mut Buffers<'_>,
    ) {
        let n_mels = mel.len() / frames;
        let c = enc.config.n_audio_state;
        let t = s.x.len() / c;
        // conv1's im2col: row f holds mel frames f − 1, f, f + 1 (zeros outside).
        let cols1 = &mut s.wide[..frames * 3 * n_mels];
        cols1
            .par_chunks_mut(3 * n_mels)
            .enumerate()
            .for_each(|(f, row)| {
                for (j, tap) in row.chunks_exact_mut(n_mels).enumerate() {
                    match (f + j).checked_sub(1).filter(|&src| src < frames) {
                        Some(src) => tap
                            .iter_mut()
                            .enumerate()
                            .for_each(|(i, v)| *v = mel[i * frames + src]),
                        None => tap.fill(0.0),
                    }
                }
            });
        // conv1's output in rows 1..=frames of `c1`, zero rows 0 and frames + 1.
        let c1 = &mut s.qkv[..(frames + 2) * c];
        c1[..c].fill(0.0);
        c1[(frames + 1) * c..].fill(0.0);
        let body = &mut c1[c..(frames + 1) * c];
        self.conv1.matmul_gemm(cols1, frames, body);
        omni_kernels::bias_gelu(body, Some(&to_host_f32(enc.conv1_bias.val())), c);
        // conv2 (stride 2): output frame τ reads conv1 frames 2τ − 1, 2τ, 2τ + 1,
        // rows 2τ..2τ + 3 of `c1`.
        let c1 = &s.qkv[..(frames + 2) * c];
        let cols2 = &mut s.wide[..t * 3 * c];
        cols2
            .par_chunks_mut(3 * c)
            .enumerate()
            .for_each(|(tau, row)| row.copy_from_slice(&c1[2 * tau * c..(2 * tau + 3) * c]));
        self.conv2.matmul_gemm(cols2, t, s.x);
        omni_kernels::bias_gelu(s.x, Some(&to_host_f32(enc.conv2_bias.val())), c);
        add_assign(s.x, pos);
    }
}

/// One pre-LN residual block on `s.x` `[t, c]` in place (`EncoderBlock::forward`).
fn block_forward(b: &EncoderBlock, t: usize, s: &mut Buffers<'_>) {
    let c = s.x.len() / t;
    let a = &b.attn;
    layer_norm(&b.attn_ln, s.x, s.ln);
    let (q, kv) = s.qkv[..3 * t * c].split_at_mut(t * c);
    let (k, v) = kv.split_at_mut(t * c);
    project(&a.query, s.ln, t, q, false);
    project(&a.key, s.ln, t, k, false);
    project(&a.value, s.ln, t, v, false);
    omni_kernels::attention_f32(q, k, v, t, t, a.n_head, c / a.n_head, s.att);
    project(&a.out, s.att, t, q, false);
    add_assign(s.x, q);
    layer_norm(&b.mlp_ln, s.x, s.ln);
    let h = &mut s.wide[..t * 4 * c];
    project(&b.fc1, s.ln, t, h, true);
    project(&b.fc2, h, t, q, false);
    add_assign(s.x, q);
}

/// `out = layer(x)` (`gelu`: with GELU) for a layer [`HostEncoder::new`] checked.
fn project(layer: &Proj, x: &[f32], m: usize, out: &mut [f32], gelu: bool) {
    assert!(
        layer.forward_host(x, m, out, gelu),
        "Whisper host path on an unpacked layer"
    );
}

fn layer_norm(ln: &LayerNorm, x: &[f32], out: &mut [f32]) {
    let (g, b) = (to_host_f32(ln.weight.val()), to_host_f32(ln.bias.val()));
    omni_kernels::layer_norm_rows(x, &g, &b, ln.eps as f32, out);
}

/// The working buffers of one encoder call, carved from the thread's scratch.
struct Buffers<'a> {
    /// The residual stream `[t, c]`.
    x: &'a mut [f32],
    /// A LayerNorm's output `[t, c]`.
    ln: &'a mut [f32],
    /// The attention's output `[t, c]`.
    att: &'a mut [f32],
    /// q, k, v `[t, c]` each (q reused for the projections added to `x`); conv1's
    /// padded output `[frames + 2, c]` in the stem.
    qkv: &'a mut [f32],
    /// `fc1`'s output `[t, 4c]`; the stem's im2col rows.
    wide: &'a mut [f32],
}

impl<'a> Buffers<'a> {
    /// `qkv` and `wide`'s lengths.
    fn sizes(frames: usize, n_mels: usize, t: usize, c: usize) -> (usize, usize) {
        let qkv = (3 * t * c).max((frames + 2) * c);
        let wide = (4 * t * c).max(frames * 3 * n_mels);
        (qkv, wide)
    }

    /// Values of scratch for [`Buffers::new`].
    fn len(frames: usize, n_mels: usize, t: usize, c: usize) -> usize {
        let (qkv, wide) = Self::sizes(frames, n_mels, t, c);
        3 * t * c + qkv + wide
    }

    fn new(scratch: &'a mut [f32], frames: usize, n_mels: usize, t: usize, c: usize) -> Self {
        let (qkv, _) = Self::sizes(frames, n_mels, t, c);
        let (x, rest) = scratch.split_at_mut(t * c);
        let (ln, rest) = rest.split_at_mut(t * c);
        let (att, rest) = rest.split_at_mut(t * c);
        let (qkv, wide) = rest.split_at_mut(qkv);
        Buffers {
            x,
            ln,
            att,
            qkv,
            wide,
        }
    }
}
