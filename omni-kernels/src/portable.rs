//! Portable scalar dot products (no `unsafe`, no target features): the fallback on
//! every CPU, forced with `OMNI_KERNELS=portable`, and the reference the SIMD
//! variants are tested against. Integer block sums are exact; only the f32
//! accumulation order differs from the SIMD kernels.

use half::f16;

use crate::blocks::{BlockQ4_0, BlockQ8_0, QK};

/// Mirrors llama.cpp `ggml_vec_dot_q8_0_q8_0` (generic path): per block
/// `sumi = Σ qw·qx` in i32, `acc += sumi · dw · dx`.
pub(crate) fn dot_q8_0(w: &[BlockQ8_0], xq: &[[i8; QK]], xd: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for ((b, q), &d) in w.iter().zip(xq).zip(xd) {
        let sumi: i32 = b.qs.iter().zip(q).map(|(&a, &c)| a as i32 * c as i32).sum();
        acc += sumi as f32 * (b.scale() * d);
    }
    acc
}

/// Mirrors llama.cpp `ggml_vec_dot_q4_0_q8_0` (generic path): codes minus 8,
/// low nibbles against `x[0..16]`, high nibbles against `x[16..32]`.
pub(crate) fn dot_q4_0(w: &[BlockQ4_0], xq: &[[i8; QK]], xd: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for ((b, q), &d) in w.iter().zip(xq).zip(xd) {
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let v0 = (b.qs[j] & 0x0F) as i32 - 8;
            let v1 = (b.qs[j] >> 4) as i32 - 8;
            sumi += v0 * q[j] as i32 + v1 * q[j + QK / 2] as i32;
        }
        acc += sumi as f32 * (b.scale() * d);
    }
    acc
}

/// f16 weights (bits) · f32 activations, accumulated in f32.
pub(crate) fn dot_f16(w: &[u16], x: &[f32]) -> f32 {
    // Eight partial sums so the compiler can keep the loop free of a serial dependency.
    let mut acc = [0.0f32; 8];
    let mut wc = w.chunks_exact(8);
    let mut xc = x.chunks_exact(8);
    for (a, b) in (&mut wc).zip(&mut xc) {
        for l in 0..8 {
            acc[l] += f16::from_bits(a[l]).to_f32() * b[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (&a, &b) in wc.remainder().iter().zip(xc.remainder()) {
        s += f16::from_bits(a).to_f32() * b;
    }
    s
}
