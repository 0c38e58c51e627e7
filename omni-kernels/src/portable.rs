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

/// f32 weights · f32 activations (eight partial sums, as [`dot_f16`]).
pub(crate) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut wc = w.chunks_exact(8);
    let mut xc = x.chunks_exact(8);
    for (a, b) in (&mut wc).zip(&mut xc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (&a, &b) in wc.remainder().iter().zip(xc.remainder()) {
        s += a * b;
    }
    s
}

/// Small-batch path: one weight row against `out.len()` rows of f32 `x` (row
/// stride `k`); `deq(b, buf)` writes block `b` of the row as 32 f32. Mirrors
/// "dequantize the row, then f32 dot products".
pub(crate) fn rows_dequantized(
    nb: usize,
    deq: impl Fn(usize, &mut [f32; QK]),
    x: &[f32],
    k: usize,
    out: &mut [f32],
) {
    let mut acc = [0.0f32; crate::SMALL_M_MAX];
    let m = out.len();
    let mut buf = [0.0f32; QK];
    for b in 0..nb {
        deq(b, &mut buf);
        for (i, a) in acc[..m].iter_mut().enumerate() {
            let xb = &x[i * k + b * QK..i * k + b * QK + QK];
            *a += buf.iter().zip(xb).map(|(w, v)| w * v).sum::<f32>();
        }
    }
    out.copy_from_slice(&acc[..m]);
}

/// Rows of x per portable GEMM tile.
pub(crate) const GEMM_MR: usize = 4;

/// `Σ_kk a[kk·4 + i] · b[kk·32 + j]` (`i < 4`, `j < 32`): the portable register
/// tile of `panel_gemm`.
pub(crate) fn gemm_tile(a: &[f32], b: &[f32]) -> [[f32; 32]; GEMM_MR] {
    let kc = b.len() / 32;
    assert!(b.len() == kc * 32 && a.len() == kc * GEMM_MR);
    let mut acc = [[0.0f32; 32]; GEMM_MR];
    for (av, bv) in a.chunks_exact(GEMM_MR).zip(b.chunks_exact(32)) {
        for (acc, &x) in acc.iter_mut().zip(av) {
            for (s, &w) in acc.iter_mut().zip(bv) {
                *s += x * w;
            }
        }
    }
    acc
}
