//! x86-64 SIMD dot products (AVX2 + FMA + F16C). Every function here is a safe
//! `#[target_feature]` function: calling it from code compiled without those
//! features is `unsafe`, and the only such call sites are in `lib.rs`, behind the
//! run-time check of [`crate::Isa::Avx2`]. The `unsafe` blocks in this file are
//! the unaligned loads (pointer reads), each within the bounds of a slice or array.

use std::arch::x86_64::*;

use crate::blocks::{BlockQ4_0, BlockQ8_0, QK};

/// Horizontal sum of 8 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// One f16 (bits) to f32 with F16C (llama.cpp `GGML_FP16_TO_FP32` on x86).
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_to_f32(h: u16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
}

/// Σ of `a · b` over 32 signed bytes, as 8 f32 lanes. Mirrors llama.cpp's AVX2
/// `mul_sum_i8_pairs_float`: `maddubs` needs an unsigned left operand, so it takes
/// |a| and moves a's sign onto b. |a| ≤ 128 and |b| ≤ 127 keep each i16 pair sum
/// ≤ 2·128·127 = 32512 < 32767: no saturation, the i32 sums are exact.
#[target_feature(enable = "avx2,fma,f16c")]
fn mul_sum_i8_pairs(a: __m256i, b: __m256i) -> __m256 {
    let ax = _mm256_sign_epi8(a, a);
    let sy = _mm256_sign_epi8(b, a);
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, _mm256_set1_epi16(1)))
}

#[target_feature(enable = "avx2,fma,f16c")]
fn load_i8x32(q: &[i8; QK]) -> __m256i {
    // SAFETY: `q` is exactly 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// The 32 codes of a q4_0 block as signed bytes `q - 8`, in element order.
/// Mirrors llama.cpp's AVX2 `bytes_from_nibbles_32` then `_mm256_sub_epi8(.., 8)`.
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0_codes(b: &BlockQ4_0) -> __m256i {
    // SAFETY: `b.qs` is exactly 16 readable bytes; `loadu` has no alignment requirement.
    let lo = unsafe { _mm_loadu_si128(b.qs.as_ptr().cast()) };
    let hi = _mm_srli_epi16::<4>(lo);
    // Lane 0: low nibbles = elements 0..16; lane 1: high nibbles = elements 16..32.
    let bytes = _mm256_and_si256(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(0x0F));
    _mm256_sub_epi8(bytes, _mm256_set1_epi8(8))
}

/// q8_0 weights · q8 activations. Mirrors llama.cpp `ggml_vec_dot_q8_0_q8_0` (AVX2).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q8_0(w: &[BlockQ8_0], xq: &[[i8; QK]], xd: &[f32]) -> f32 {
    let n = w.len().min(xq.len()).min(xd.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 2 <= n {
        let p0 = mul_sum_i8_pairs(load_i8x32(&w[i].qs), load_i8x32(&xq[i]));
        let p1 = mul_sum_i8_pairs(load_i8x32(&w[i + 1].qs), load_i8x32(&xq[i + 1]));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(w[i].d) * xd[i]), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(w[i + 1].d) * xd[i + 1]), p1, acc1);
        i += 2;
    }
    if i < n {
        let p0 = mul_sum_i8_pairs(load_i8x32(&w[i].qs), load_i8x32(&xq[i]));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(w[i].d) * xd[i]), p0, acc0);
    }
    hsum_ps(_mm256_add_ps(acc0, acc1))
}

/// q4_0 weights · q8 activations. Mirrors llama.cpp `ggml_vec_dot_q4_0_q8_0` (AVX2).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_q4_0(w: &[BlockQ4_0], xq: &[[i8; QK]], xd: &[f32]) -> f32 {
    let n = w.len().min(xq.len()).min(xd.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 2 <= n {
        let p0 = mul_sum_i8_pairs(q4_0_codes(&w[i]), load_i8x32(&xq[i]));
        let p1 = mul_sum_i8_pairs(q4_0_codes(&w[i + 1]), load_i8x32(&xq[i + 1]));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(w[i].d) * xd[i]), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(w[i + 1].d) * xd[i + 1]), p1, acc1);
        i += 2;
    }
    if i < n {
        let p0 = mul_sum_i8_pairs(q4_0_codes(&w[i]), load_i8x32(&xq[i]));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_to_f32(w[i].d) * xd[i]), p0, acc0);
    }
    hsum_ps(_mm256_add_ps(acc0, acc1))
}

/// f16 weights (bits) · f32 activations: 8 halves at a time through F16C
/// `vcvtph2ps` in registers, 4 FMA accumulators (no converted copy of the weights).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f16(w: &[u16], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    let (w, x) = (&w[..n], &x[..n]);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut wc = w.chunks_exact(32);
    let mut xc = x.chunks_exact(32);
    for (a, b) in (&mut wc).zip(&mut xc) {
        for (l, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `a` (u16) and `b` (f32) hold 32 elements each; lane `l` < 4 reads
            // elements 8l..8l+8, inside both. `loadu` has no alignment requirement.
            let (wv, xv) = unsafe {
                (_mm_loadu_si128(a.as_ptr().add(8 * l).cast()), _mm256_loadu_ps(b.as_ptr().add(8 * l)))
            };
            *acc = _mm256_fmadd_ps(_mm256_cvtph_ps(wv), xv, *acc);
        }
    }
    let mut s = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (&a, &b) in wc.remainder().iter().zip(xc.remainder()) {
        s += f16_to_f32(a) * b;
    }
    s
}
