//! x86-64 SIMD dot products (AVX2 + FMA + F16C; the `_vnni` kernels also AVX-512
//! F/BW/VL/VNNI). Every function here is a safe `#[target_feature]` function:
//! calling it from code compiled without those features is `unsafe`, and the only
//! such call sites are in `lib.rs` and `conv1d.rs`, behind the run-time check of
//! [`crate::Isa::Avx2`] / [`crate::Isa::Avx512Vnni`]. The `unsafe` blocks in this
//! file are the unaligned loads and stores, each within the bounds of a slice or
//! array.

use std::arch::x86_64::*;

use crate::blocks::{BlockQ4_0, BlockQ4_0x8, BlockQ8_0, BlockQ8_0x8, QK};
use crate::conv1d::{Lanes, OB, TM, TM_AVX2, TW};
use crate::XRow;

/// Horizontal sum of 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// One f16 (bits) to f32 with F16C (llama.cpp `GGML_FP16_TO_FP32` on x86).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16_to_f32(h: u16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
}

/// Σ of `a · b` over 32 signed bytes, as 8 f32 lanes. Mirrors llama.cpp's AVX2
/// `mul_sum_i8_pairs_float`: `maddubs` needs an unsigned left operand, so it takes
/// |a| and moves a's sign onto b. |a| ≤ 128 and |b| ≤ 127 keep each i16 pair sum
/// ≤ 2·128·127 = 32512 < 32767: no saturation, the i32 sums are exact.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn mul_sum_i8_pairs(a: __m256i, b: __m256i) -> __m256 {
    let ax = _mm256_sign_epi8(a, a);
    let sy = _mm256_sign_epi8(b, a);
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, _mm256_set1_epi16(1)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_i8x32(q: &[i8; QK]) -> __m256i {
    // SAFETY: `q` is exactly 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// The 32 codes of a q4_0 block as signed bytes `q - 8`, in element order.
/// Mirrors llama.cpp's AVX2 `bytes_from_nibbles_32` then `_mm256_sub_epi8(.., 8)`.
#[inline]
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
#[inline]
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
#[inline]
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

/// The eight block scales (f16 bits) of one block column as f32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scales8(d: [u16; 8]) -> __m256 {
    // SAFETY: `d` is exactly 16 readable bytes; `loadu` has no alignment requirement.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(d.as_ptr().cast()) })
}

/// Activation bytes `4g..4g+4` of a block as one 32-bit value in all eight lanes:
/// the x side of one 4-element group against the eight rows of a [`BlockQ4_0x8`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn broadcast_group(x: &[i8; QK], g: usize) -> __m256i {
    let b = &x[4 * g..4 * g + 4];
    _mm256_set1_epi32(i32::from_le_bytes([
        b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8,
    ]))
}

/// Chunk `c` (0..4) of an interleaved block: low nibbles (group `c` of the eight
/// rows) and high nibbles (group `c + 4`), as unsigned bytes 0..=15.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q4_0x8_chunk(w: &BlockQ4_0x8, c: usize) -> (__m256i, __m256i) {
    let q = &w.qs[32 * c..32 * c + 32];
    // SAFETY: `q` is a checked slice of 32 readable bytes; `loadu` has no alignment requirement.
    let bytes = unsafe { _mm256_loadu_si256(q.as_ptr().cast()) };
    let mask = _mm256_set1_epi8(0x0F);
    (
        _mm256_and_si256(bytes, mask),
        _mm256_and_si256(_mm256_srli_epi16::<4>(bytes), mask),
    )
}

/// Adds one block column's integer sums of eight rows (`dots`: lane `r` = row
/// `r`'s Σ code·x, already corrected for an unsigned code bias) into `acc`,
/// scaled by the rows' scales `d` and the activation scale: `dots · d_r · d_x`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate8(acc: __m256, dots: __m256i, d: [u16; 8], xd: f32) -> __m256 {
    _mm256_fmadd_ps(
        _mm256_mul_ps(scales8(d), _mm256_set1_ps(xd)),
        _mm256_cvtepi32_ps(dots),
        acc,
    )
}

/// The eight lanes as an array.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store8(acc: __m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: `out` is exactly 8 writable f32; `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
    out
}

/// Bytes ahead of the block being read that the decode kernels (one activation row)
/// prefetch. In-model A/B (1B-shape decode, Intel Xeon, 2026-12-01, medians of 16
/// tokens): q4_0 49.3–49.6 ms without, 46.5–47.1 / 40.8–44.4 / 41.3–42.6 ms at 512 /
/// 1024 / 2048 bytes; q8_0 65.5–67.1 → 64.4–64.8 ms at 2048. A layer's weights are a
/// few MB read once per token from DRAM, in short streams (16 rows per rayon task)
/// that the hardware prefetcher ramps up on too late.
const PREFETCH_AHEAD: usize = 2048;

/// Asks for the cache lines of the `len` bytes `PREFETCH_AHEAD` bytes past `p` (a
/// hint: no effect on results, never faults, may point past the weights).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch_ahead<T>(p: &T) {
    let base = (p as *const T).cast::<i8>().wrapping_add(PREFETCH_AHEAD);
    for line in (0..std::mem::size_of::<T>()).step_by(64) {
        // A prefetch reads nothing into the program and cannot fault, whatever the
        // address (wrapping pointer arithmetic, never dereferenced).
        _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(line));
    }
}

/// The shortest length among the weight blocks and every activation row.
fn common_len<const R: usize>(nw: usize, x: &[XRow<'_>; R]) -> usize {
    x.iter()
        .fold(nw, |n, r| n.min(r.q.len()).min(r.d.len()).min(r.sum.len()))
}

/// Eight interleaved q4_0 rows ([`BlockQ4_0x8`]) · `R` rows of q8 activations
/// (`R` = 1 for decode, 4 for longer inputs: each weight chunk is loaded and
/// unpacked once for the `R` rows). Per chunk, one `vpmaddubsw` per group of 4
/// elements puts weight row `r`'s partial sums in lane `r` directly: no horizontal
/// reduction. The i16 partial sums of a block stay exact: |pair| ≤ 2·15·127 = 3810,
/// eight groups ≤ 30480 < 32767. Then `− 8 · Σx` (the codes are kept unsigned).
/// Same integer sums as `ggml_vec_dot_q4_0_q8_0`; only the f32 accumulation order
/// differs.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot8_q4_0x8<const R: usize>(w: &[BlockQ4_0x8], x: [XRow<'_>; R]) -> [[f32; 8]; R] {
    let n = common_len(w.len(), &x);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, wb) in w[..n].iter().enumerate() {
        if R == 1 {
            prefetch_ahead(wb);
        }
        let mut s16 = [_mm256_setzero_si256(); R];
        for c in 0..4 {
            let (lo, hi) = q4_0x8_chunk(wb, c);
            for (s, xr) in s16.iter_mut().zip(&x) {
                let q = &xr.q[b];
                *s = _mm256_add_epi16(*s, _mm256_maddubs_epi16(lo, broadcast_group(q, c)));
                *s = _mm256_add_epi16(*s, _mm256_maddubs_epi16(hi, broadcast_group(q, c + 4)));
            }
        }
        for ((a, s), xr) in acc.iter_mut().zip(s16).zip(&x) {
            let dots = _mm256_madd_epi16(s, _mm256_set1_epi16(1));
            let dots = _mm256_sub_epi32(dots, _mm256_set1_epi32(8 * xr.sum[b]));
            *a = accumulate8(*a, dots, wb.d, xr.d[b]);
        }
    }
    std::array::from_fn(|r| store8(acc[r]))
}

/// [`dot8_q4_0x8`] with AVX-512 VNNI (`vpdpbusd` on 256-bit registers, AVX512VL):
/// one instruction per group multiplies the unsigned codes by the signed
/// activations and adds the four products into the row's i32 lane (no i16 step).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn dot8_q4_0x8_vnni<const R: usize>(
    w: &[BlockQ4_0x8],
    x: [XRow<'_>; R],
) -> [[f32; 8]; R] {
    let n = common_len(w.len(), &x);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, wb) in w[..n].iter().enumerate() {
        if R == 1 {
            prefetch_ahead(wb);
        }
        let mut s32 = [_mm256_setzero_si256(); R];
        for c in 0..4 {
            let (lo, hi) = q4_0x8_chunk(wb, c);
            for (s, xr) in s32.iter_mut().zip(&x) {
                let q = &xr.q[b];
                *s = _mm256_dpbusd_epi32(*s, lo, broadcast_group(q, c));
                *s = _mm256_dpbusd_epi32(*s, hi, broadcast_group(q, c + 4));
            }
        }
        for ((a, s), xr) in acc.iter_mut().zip(s32).zip(&x) {
            let dots = _mm256_sub_epi32(s, _mm256_set1_epi32(8 * xr.sum[b]));
            *a = accumulate8(*a, dots, wb.d, xr.d[b]);
        }
    }
    std::array::from_fn(|r| store8(acc[r]))
}

/// Group `g` (0..8) of an interleaved q8_0 block: the eight rows' codes `4g..4g+4`,
/// biased (code + 128, unsigned).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_0x8_group(w: &BlockQ8_0x8, g: usize) -> __m256i {
    let q = &w.qs[32 * g..32 * g + 32];
    // SAFETY: `q` is a checked slice of 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(q.as_ptr().cast()) }
}

/// Eight interleaved q8_0 rows ([`BlockQ8_0x8`]) · `R` rows of q8 activations,
/// AVX2: per group the codes are unbiased (`^ 0x80`) and multiplied with llama.cpp's
/// sign trick (`vpmaddubsw` needs an unsigned operand: |w| against x with w's
/// sign; |pair| ≤ 2·128·127 = 32512, no saturation), one `vpmaddwd` per group puts
/// weight row `r`'s sum in lane `r`. Same integer sums as `ggml_vec_dot_q8_0_q8_0`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot8_q8_0x8<const R: usize>(w: &[BlockQ8_0x8], x: [XRow<'_>; R]) -> [[f32; 8]; R] {
    let n = common_len(w.len(), &x);
    let bias = _mm256_set1_epi8(i8::MIN);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, wb) in w[..n].iter().enumerate() {
        if R == 1 {
            prefetch_ahead(wb);
        }
        let mut s32 = [_mm256_setzero_si256(); R];
        for g in 0..8 {
            let wq = _mm256_xor_si256(q8_0x8_group(wb, g), bias);
            let aw = _mm256_sign_epi8(wq, wq);
            for (s, xr) in s32.iter_mut().zip(&x) {
                let xs = _mm256_sign_epi8(broadcast_group(&xr.q[b], g), wq);
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones));
            }
        }
        for ((a, s), xr) in acc.iter_mut().zip(s32).zip(&x) {
            *a = accumulate8(*a, s, wb.d, xr.d[b]);
        }
    }
    std::array::from_fn(|r| store8(acc[r]))
}

/// [`dot8_q8_0x8`] with AVX-512 VNNI: one `vpdpbusd` per group on the biased
/// (unsigned) codes, then `− 128 · Σx` per block (the activation blocks' Σx):
/// Σ(w + 128)·x − 128·Σx = Σw·x, exact in i32 (|Σ| ≤ 32·255·127).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) fn dot8_q8_0x8_vnni<const R: usize>(
    w: &[BlockQ8_0x8],
    x: [XRow<'_>; R],
) -> [[f32; 8]; R] {
    let n = common_len(w.len(), &x);
    let mut acc = [_mm256_setzero_ps(); R];
    for (b, wb) in w[..n].iter().enumerate() {
        if R == 1 {
            prefetch_ahead(wb);
        }
        let mut s32 = [_mm256_setzero_si256(); R];
        for g in 0..8 {
            let wq = q8_0x8_group(wb, g);
            for (s, xr) in s32.iter_mut().zip(&x) {
                *s = _mm256_dpbusd_epi32(*s, wq, broadcast_group(&xr.q[b], g));
            }
        }
        for ((a, s), xr) in acc.iter_mut().zip(s32).zip(&x) {
            let dots = _mm256_sub_epi32(s, _mm256_set1_epi32(128 * xr.sum[b]));
            *a = accumulate8(*a, dots, wb.d, xr.d[b]);
        }
    }
    std::array::from_fn(|r| store8(acc[r]))
}

/// f16 weights (bits) · f32 activations: 8 halves at a time through F16C
/// `vcvtph2ps` in registers, 4 FMA accumulators (no converted copy of the weights),
/// prefetching as the quantized decode kernels do (in-model A/B, Intel Xeon,
/// 2026-12-01: 1B f16 decode 148 → 120–124 ms, one 8B layer 22.8–24.4 → 21.0–21.9 ms).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f16(w: &[u16], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    let (w, x) = (&w[..n], &x[..n]);
    let mut acc = [_mm256_setzero_ps(); 4];
    let (wc, wrem) = w.as_chunks::<32>();
    let (xc, xrem) = x.as_chunks::<32>();
    for (a, b) in wc.iter().zip(xc) {
        // One cache line of weights per chunk; the row is a short stream (as in the
        // quantized decode kernels).
        prefetch_ahead(a);
        for (l, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `a` (u16) and `b` (f32) hold 32 elements each; lane `l` < 4 reads
            // elements 8l..8l+8, inside both. `loadu` has no alignment requirement.
            let (wv, xv) = unsafe {
                (
                    _mm_loadu_si128(a.as_ptr().add(8 * l).cast()),
                    _mm256_loadu_ps(b.as_ptr().add(8 * l)),
                )
            };
            *acc = _mm256_fmadd_ps(_mm256_cvtph_ps(wv), xv, *acc);
        }
    }
    let mut s = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    for (&a, &b) in wrem.iter().zip(xrem) {
        s += f16_to_f32(a) * b;
    }
    s
}

/// Four f16 weight rows · one f32 row of x (decode): each x vector loaded once for
/// the four rows, four weight streams in flight per thread, one cache line of each
/// row per step (prefetched 2 KB ahead as in [`dot_f16`]).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot4_f16(w: [&[u16]; 4], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    assert!(w.iter().all(|r| r.len() == n));
    let mut acc = [[_mm256_setzero_ps(); 2]; 4];
    let (xc, xrem) = x.as_chunks::<32>();
    let wc: [&[[u16; 32]]; 4] = [
        w[0].as_chunks::<32>().0,
        w[1].as_chunks::<32>().0,
        w[2].as_chunks::<32>().0,
        w[3].as_chunks::<32>().0,
    ];
    for (ci, xb) in xc.iter().enumerate() {
        // SAFETY: `xb` is 32 readable f32; lane j < 4 reads 8j..8j+8.
        let xv = unsafe {
            [
                _mm256_loadu_ps(xb.as_ptr()),
                _mm256_loadu_ps(xb.as_ptr().add(8)),
                _mm256_loadu_ps(xb.as_ptr().add(16)),
                _mm256_loadu_ps(xb.as_ptr().add(24)),
            ]
        };
        for (a, rows) in acc.iter_mut().zip(&wc) {
            let b = &rows[ci];
            prefetch_ahead(b);
            for (j, &xj) in xv.iter().enumerate() {
                // SAFETY: `b` is 32 readable u16; j < 4 reads halves 8j..8j+8.
                let wv = unsafe { _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(8 * j).cast())) };
                a[j % 2] = _mm256_fmadd_ps(wv, xj, a[j % 2]);
            }
        }
    }
    let done = xc.len() * 32;
    let mut out = [0.0f32; 4];
    for (r, (o, a)) in out.iter_mut().zip(&acc).enumerate() {
        *o = hsum_ps(_mm256_add_ps(a[0], a[1]));
        for (&h, &xv) in w[r][done..].iter().zip(xrem) {
            *o += f16_to_f32(h) * xv;
        }
    }
    out
}

/// Four f32 weight rows · one f32 row of x (decode), as [`dot4_f16`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot4_f32(w: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    assert!(w.iter().all(|r| r.len() == n));
    let mut acc = [[_mm256_setzero_ps(); 2]; 4];
    let (xc, xrem) = x.as_chunks::<16>();
    let wc: [&[[f32; 16]]; 4] = [
        w[0].as_chunks::<16>().0,
        w[1].as_chunks::<16>().0,
        w[2].as_chunks::<16>().0,
        w[3].as_chunks::<16>().0,
    ];
    for (ci, xb) in xc.iter().enumerate() {
        // SAFETY: `xb` is 16 readable f32; the loads read 0..8 and 8..16.
        let xv = unsafe {
            [
                _mm256_loadu_ps(xb.as_ptr()),
                _mm256_loadu_ps(xb.as_ptr().add(8)),
            ]
        };
        for (a, rows) in acc.iter_mut().zip(&wc) {
            let b = &rows[ci];
            prefetch_ahead(b);
            for (j, &xj) in xv.iter().enumerate() {
                // SAFETY: `b` is 16 readable f32; j < 2 reads 8j..8j+8.
                let wv = unsafe { _mm256_loadu_ps(b.as_ptr().add(8 * j)) };
                a[j] = _mm256_fmadd_ps(wv, xj, a[j]);
            }
        }
    }
    let done = xc.len() * 16;
    let mut out = [0.0f32; 4];
    for (r, (o, a)) in out.iter_mut().zip(&acc).enumerate() {
        *o = hsum_ps(_mm256_add_ps(a[0], a[1]));
        for (&wv, &xv) in w[r][done..].iter().zip(xrem) {
            *o += wv * xv;
        }
    }
    out
}

/// f32 weights · f32 activations: 4 FMA accumulators of 8 lanes, prefetching as
/// [`dot_f16`] does (the f32 model's decode GEMV: memory-bound, so 256-bit registers
/// suffice).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    let (w, x) = (&w[..n], &x[..n]);
    let mut acc = [_mm256_setzero_ps(); 4];
    let (wc, wrem) = w.as_chunks::<32>();
    let (xc, xrem) = x.as_chunks::<32>();
    for (a, b) in wc.iter().zip(xc) {
        // Two cache lines of weights per chunk.
        prefetch_ahead(a);
        for (l, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `a` and `b` hold 32 f32 each; lane `l` < 4 reads elements
            // 8l..8l+8, inside both. `loadu` has no alignment requirement.
            let (wv, xv) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(8 * l)),
                    _mm256_loadu_ps(b.as_ptr().add(8 * l)),
                )
            };
            *acc = _mm256_fmadd_ps(wv, xv, *acc);
        }
    }
    let mut s = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    for (&a, &b) in wrem.iter().zip(xrem) {
        s += a * b;
    }
    s
}

/// f16 bits to f32 (`vcvtph2ps`, 8 at a time), `min(src, dst)` elements.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f16_to_f32_slice(src: &[u16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    let (sc, srem) = src.as_chunks::<8>();
    let (dc, drem) = dst.as_chunks_mut::<8>();
    for (s, d) in sc.iter().zip(dc) {
        // SAFETY: `s` is 8 readable u16 (16 bytes), `d` 8 writable f32; `loadu`/`storeu`
        // have no alignment requirement.
        unsafe {
            _mm256_storeu_ps(
                d.as_mut_ptr(),
                _mm256_cvtph_ps(_mm_loadu_si128(s.as_ptr().cast())),
            )
        };
    }
    for (o, &h) in drem.iter_mut().zip(srem) {
        *o = f16_to_f32(h);
    }
}

/// Quantizes one 32-block of activations to 8 bits (codes into `q`, returns the
/// scale). Mirrors llama.cpp's AVX2 `quantize_row_q8_0`: `amax` over the block,
/// `d = amax / 127`, codes `round(x · 127 / amax)` with round-to-nearest-even
/// (`_mm256_round_ps(.., _MM_ROUND_NEAREST)`), the same as the portable path.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn quantize_block_q8(x: &[f32; QK], q: &mut [i8; QK]) -> f32 {
    // SAFETY: `x` is 32 readable f32; lanes 0, 8, 16, 24 each read 8 of them. `loadu`
    // has no alignment requirement.
    let v = unsafe {
        [
            _mm256_loadu_ps(x.as_ptr()),
            _mm256_loadu_ps(x.as_ptr().add(8)),
            _mm256_loadu_ps(x.as_ptr().add(16)),
            _mm256_loadu_ps(x.as_ptr().add(24)),
        ]
    };
    let sign = _mm256_set1_ps(-0.0);
    let mut amax = _mm256_andnot_ps(sign, v[0]);
    for vi in &v[1..] {
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, *vi));
    }
    let m4 = _mm_max_ps(
        _mm256_extractf128_ps::<1>(amax),
        _mm256_castps256_ps128(amax),
    );
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m1 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    let max_scalar = _mm_cvtss_f32(m1);
    let d = max_scalar / 127.0;
    let id = if max_scalar != 0.0 {
        127.0 / max_scalar
    } else {
        0.0
    };
    let mul = _mm256_set1_ps(id);
    let r: [__m256i; 4] = std::array::from_fn(|i| {
        _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(_mm256_mul_ps(v[i], mul)))
    });
    // Pack 4×8 i32 → 32 i8; packs interleave 128-bit lanes, the permute restores order.
    let i01 = _mm256_packs_epi32(r[0], r[1]);
    let i23 = _mm256_packs_epi32(r[2], r[3]);
    let b = _mm256_packs_epi16(i01, i23);
    let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: `q` is 32 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast(), b) };
    d
}

/// Cephes `expf` on 16 lanes (range reduction by ln 2 in two parts, a degree-5
/// polynomial, `vscalefps` for the power of two): within 2 ulp of `exp` for
/// x ≥ −87.3 (inputs below are clamped there, giving ~1e-38 instead of 0).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn exp512(x: __m512) -> __m512 {
    let x = _mm512_max_ps(x, _mm512_set1_ps(-87.336_55));
    let x = _mm512_min_ps(x, _mm512_set1_ps(88.376_26));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let y = _mm512_fmadd_ps(
        _mm512_mul_ps(p, r),
        r,
        _mm512_add_ps(r, _mm512_set1_ps(1.0)),
    );
    _mm512_scalef_ps(y, n)
}

/// Cephes `expf` on 8 lanes (as [`exp512`]; the power of two built in the exponent
/// bits, exact for the clamped range).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn exp256(x: __m256) -> __m256 {
    let x = _mm256_max_ps(x, _mm256_set1_ps(-87.336_55));
    let x = _mm256_min_ps(x, _mm256_set1_ps(88.376_26));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let y = _mm256_fmadd_ps(
        _mm256_mul_ps(p, r),
        r,
        _mm256_add_ps(r, _mm256_set1_ps(1.0)),
    );
    // 2^n as the bits of an f32, (n + 127) << 23: the clamp keeps x·log2(e) in
    // [-126.0, 127.5], so n is in [-126, 127] and the exponent field in [1, 254].
    let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    )));
    _mm256_mul_ps(y, pow2)
}

/// `row[j] ← exp(scale·(row[j] − max))`, returns their sum (AVX-512).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn softmax_row_avx512(row: &mut [f32], scale: f32) -> f32 {
    let mut mv = _mm512_set1_ps(f32::NEG_INFINITY);
    let (ch, rem) = row.as_chunks::<16>();
    for c in ch {
        // SAFETY: `c` is 16 readable f32; `loadu` has no alignment requirement.
        mv = _mm512_max_ps(mv, unsafe { _mm512_loadu_ps(c.as_ptr()) });
    }
    let m = rem.iter().fold(_mm512_reduce_max_ps(mv), |a, &b| a.max(b));
    let (vm, vs) = (_mm512_set1_ps(m), _mm512_set1_ps(scale));
    let mut sum = _mm512_setzero_ps();
    let (ch, rem) = row.as_chunks_mut::<16>();
    for c in ch {
        // SAFETY: `c` is 16 readable and writable f32 (a unique borrow).
        unsafe {
            let e = exp512(_mm512_mul_ps(
                _mm512_sub_ps(_mm512_loadu_ps(c.as_ptr()), vm),
                vs,
            ));
            _mm512_storeu_ps(c.as_mut_ptr(), e);
            sum = _mm512_add_ps(sum, e);
        }
    }
    let mut s = _mm512_reduce_add_ps(sum);
    for x in rem {
        *x = (scale * (*x - m)).exp();
        s += *x;
    }
    s
}

/// `row[j] ← exp(scale·(row[j] − max))`, returns their sum (AVX2).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn softmax_row_avx2(row: &mut [f32], scale: f32) -> f32 {
    let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
    let (ch, rem) = row.as_chunks::<8>();
    for c in ch {
        // SAFETY: `c` is 8 readable f32; `loadu` has no alignment requirement.
        mv = _mm256_max_ps(mv, unsafe { _mm256_loadu_ps(c.as_ptr()) });
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` is 8 writable f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mv) };
    let m = lanes
        .iter()
        .chain(rem)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let (vm, vs) = (_mm256_set1_ps(m), _mm256_set1_ps(scale));
    let mut sum = _mm256_setzero_ps();
    let (ch, rem) = row.as_chunks_mut::<8>();
    for c in ch {
        // SAFETY: `c` is 8 readable and writable f32 (a unique borrow).
        unsafe {
            let e = exp256(_mm256_mul_ps(
                _mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), vm),
                vs,
            ));
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            sum = _mm256_add_ps(sum, e);
        }
    }
    let mut s = hsum_ps(sum);
    for x in rem {
        *x = (scale * (*x - m)).exp();
        s += *x;
    }
    s
}

/// Register-blocked small-batch kernel body: `W` weight rows against `X` rows of f32
/// x over one chunk of columns (the slices; their common length a multiple of the
/// lane count), `W·X` vector accumulators along the columns (the dot-product
/// form), each weight vector loaded (converted) once for the `X` rows and each x
/// vector once for the `W` rows. The accumulators come from and go back to `acc`
/// (`X·W` vectors of `lanes` f32: entry `(i·W + j)·lanes`), so a product runs chunk
/// by chunk with the chunk's x rows in L1; the caller sums the lanes at the end.
macro_rules! block_kernel {
    ($(#[$doc:meta])* $name:ident, $feat:literal, $wt:ty, $lanes:literal, $vec:ty,
     zero: $zero:expr, loadw: |$wp:ident| $loadw:expr, loadx: |$xp:ident| $loadx:expr,
     loada: |$ap:ident| $loada:expr, storea: |$sp:ident, $sv:ident| $storea:expr,
     fma: $fma:ident) => {
        $(#[$doc])*
        #[inline]
        #[target_feature(enable = $feat)]
        pub(crate) fn $name<const W: usize, const X: usize>(
            w: [&[$wt]; W],
            x: [&[f32]; X],
            acc: &mut [f32],
        ) {
            let k = w[0].len();
            assert!(k.is_multiple_of($lanes));
            assert!(w.iter().all(|r| r.len() == k) && x.iter().all(|r| r.len() == k));
            assert_eq!(acc.len(), X * W * $lanes);
            let mut a = [[$zero; W]; X];
            for i in 0..X {
                for j in 0..W {
                    let $ap = acc[(i * W + j) * $lanes..].as_ptr();
                    // SAFETY: (i·W + j + 1)·lanes ≤ X·W·lanes = acc.len() (asserted):
                    // the load reads `lanes` f32 inside `acc`; no alignment requirement.
                    a[i][j] = unsafe { $loada };
                }
            }
            let mut wv = [$zero; W];
            let mut c = 0;
            while c < k {
                for j in 0..W {
                    let $wp = w[j][c..].as_ptr();
                    // SAFETY: c + lanes ≤ k = w[j].len() (asserted): the load reads
                    // `lanes` elements inside the row; no alignment requirement.
                    wv[j] = unsafe { $loadw };
                }
                for i in 0..X {
                    let $xp = x[i][c..].as_ptr();
                    // SAFETY: as above, for row i of x.
                    let xv = unsafe { $loadx };
                    for j in 0..W {
                        a[i][j] = $fma(wv[j], xv, a[i][j]);
                    }
                }
                c += $lanes;
            }
            for i in 0..X {
                for j in 0..W {
                    let $sp = acc[(i * W + j) * $lanes..].as_mut_ptr();
                    let $sv = a[i][j];
                    // SAFETY: as for the loads of `acc` above (a unique borrow).
                    unsafe { $storea };
                }
            }
        }
    };
}

block_kernel!(
    /// f32 weights, AVX-512 (16 lanes; `W = 4`, `X = 6`: 24 accumulators + 5 in flight
    /// of the 32 registers).
    block_f32_avx512, "avx2,fma,f16c,avx512f", f32, 16, __m512,
    zero: _mm512_setzero_ps(),
    loadw: |p| _mm512_loadu_ps(p),
    loadx: |p| _mm512_loadu_ps(p),
    loada: |p| _mm512_loadu_ps(p), storea: |p, v| _mm512_storeu_ps(p, v),
    fma: _mm512_fmadd_ps
);

block_kernel!(
    /// f16 weights (bits), AVX-512: 16 halves through `vcvtph2ps` per weight vector.
    block_f16_avx512, "avx2,fma,f16c,avx512f", u16, 16, __m512,
    zero: _mm512_setzero_ps(),
    loadw: |p| _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())),
    loadx: |p| _mm512_loadu_ps(p),
    loada: |p| _mm512_loadu_ps(p), storea: |p, v| _mm512_storeu_ps(p, v),
    fma: _mm512_fmadd_ps
);

block_kernel!(
    /// f32 weights, AVX2 (8 lanes; `W = 2`, `X = 4`: 8 accumulators of the 16
    /// registers).
    block_f32_avx2, "avx2,fma,f16c", f32, 8, __m256,
    zero: _mm256_setzero_ps(),
    loadw: |p| _mm256_loadu_ps(p),
    loadx: |p| _mm256_loadu_ps(p),
    loada: |p| _mm256_loadu_ps(p), storea: |p, v| _mm256_storeu_ps(p, v),
    fma: _mm256_fmadd_ps
);

block_kernel!(
    /// f16 weights (bits), AVX2.
    block_f16_avx2, "avx2,fma,f16c", u16, 8, __m256,
    zero: _mm256_setzero_ps(),
    loadw: |p| _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
    loadx: |p| _mm256_loadu_ps(p),
    loada: |p| _mm256_loadu_ps(p), storea: |p, v| _mm256_storeu_ps(p, v),
    fma: _mm256_fmadd_ps
);

/// 8 lanes from 8 floats.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load_ps(x: &[f32; 8]) -> __m256 {
    // SAFETY: `x` is exactly 8 readable f32; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

/// Output samples per AVX2 half-tile.
const TW2: usize = 16;

/// The AVX2 + FMA version of [`crate::conv1d::tile_portable`], as `TW / 16` tiles of
/// [`TW2`] = 16 samples ([`conv_tile16`]).
#[target_feature(enable = "avx2,fma")]
pub(crate) fn conv_tile(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[f32],
    m0: usize,
) -> [[f32; TW]; OB] {
    const { assert!(OB == 4 && TW.is_multiple_of(TW2)) };
    let mut out = [[0f32; TW]; OB];
    for q in 0..TW / TW2 {
        let part = conv_tile16(xp, lp, c_in, k, d, w, m0 + q * TW2);
        for (o, p) in out.iter_mut().zip(&part) {
            o[q * TW2..(q + 1) * TW2].copy_from_slice(p);
        }
    }
    out
}

/// A tile of `OB` = 4 output channels × 16 samples held in 8 ymm accumulators over
/// every (input channel, tap) pair: per pair, 2 input vectors, 4 broadcast weights,
/// 8 FMAs. (A 4 × 24 tile needs all 16 registers plus a temporary: LLVM spilled an
/// accumulator, and the store-to-load chain made it ~25 % slower; so did inlining
/// this into a loop over the 16-sample parts of a longer tile: 2× slower.)
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
fn conv_tile16(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[f32],
    m0: usize,
) -> [[f32; TW2]; OB] {
    let mut a = [[_mm256_setzero_ps(); 2]; OB];
    let span = TW2 + d * (k - 1);
    let w = &w[..c_in * k * OB];
    for i in 0..c_in {
        let row = &xp[i * lp + m0..i * lp + m0 + span];
        let wi = &w[i * k * OB..(i + 1) * k * OB];
        for (j, wj) in wi.as_chunks::<OB>().0.iter().enumerate() {
            let xs: &[[f32; 8]; 2] = match row[j * d..j * d + TW2].as_chunks::<8>().0.try_into() {
                Ok(xs) => xs,
                Err(_) => unreachable!("TW2 = 16 is 2 chunks of 8"),
            };
            let x = [load_ps(&xs[0]), load_ps(&xs[1])];
            for (al, &wv) in a.iter_mut().zip(wj) {
                let wv = _mm256_set1_ps(wv);
                for (s, &xv) in al.iter_mut().zip(&x) {
                    *s = _mm256_fmadd_ps(wv, xv, *s);
                }
            }
        }
    }
    let mut out = [[0f32; TW2]; OB];
    for (o, al) in out.iter_mut().zip(&a) {
        for (c, &v) in o.as_chunks_mut::<8>().0.iter_mut().zip(al) {
            // SAFETY: `c` is exactly 8 writable f32; `storeu` has no alignment requirement.
            unsafe { _mm256_storeu_ps(c.as_mut_ptr(), v) };
        }
    }
    out
}

/// The (input channel, tap) pairs of a wide convolution tile, in order: `f(xs, wj)`
/// with the `T` input samples `xp[i·lp + m0 + j·d..][..T]` the tap reads and its
/// packed weights `w[i·k + j]`. Inlined into each tile kernel (and so compiled with its
/// target features).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // the input's geometry and the tile's place
fn for_each_tap<const T: usize, L>(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[L],
    m0: usize,
    mut f: impl FnMut(&[f32; T], &L),
) {
    let span = T + d * (k - 1);
    let w = &w[..c_in * k];
    for i in 0..c_in {
        let row = &xp[i * lp + m0..i * lp + m0 + span];
        for (j, wj) in w[i * k..(i + 1) * k].iter().enumerate() {
            let xs: &[f32; T] = row[j * d..j * d + T].try_into().expect("T samples");
            f(xs, wj);
        }
    }
}

/// The AVX2 wide convolution tile (`conv1d`'s layers of 16 output channels or more):
/// `out[l][u] = Σ_i Σ_j w[i·k + j][l] · xp[i·lp + m0 + u + j·d]` for [`TM_AVX2`] = 6
/// positions `u` × 16 output channels `l`, in 12 ymm accumulators: per (input
/// channel, tap) pair, two aligned loads of the packed weights (`Lanes<16>`, 64-byte
/// aligned), six broadcast samples of x, 12 FMAs (8 loads per 12 FMAs: the FMAs bound
/// it, where [`conv_tile16`]'s 4 × 16 tile needs 6 loads per 8). 12 accumulators + 2
/// weight vectors + 1 broadcast fit the 16 registers.
#[allow(clippy::too_many_arguments)] // the input's geometry and the tile's place
#[target_feature(enable = "avx2,fma")]
pub(crate) fn conv_tile_wide_avx2(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[Lanes<16>],
    m0: usize,
    out: &mut [[f32; 32]; 32],
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; TM_AVX2];
    for_each_tap::<TM_AVX2, _>(xp, lp, c_in, k, d, w, m0, |xs, wj| {
        // SAFETY: `Lanes<16>` is 16 f32 aligned to 64 bytes: two aligned 32-byte loads.
        let (w0, w1) = unsafe {
            (
                _mm256_load_ps(wj.0.as_ptr()),
                _mm256_load_ps(wj.0.as_ptr().add(8)),
            )
        };
        for (a, &x) in acc.iter_mut().zip(xs) {
            let b = _mm256_set1_ps(x);
            a[0] = _mm256_fmadd_ps(b, w0, a[0]);
            a[1] = _mm256_fmadd_ps(b, w1, a[1]);
        }
    });
    // Channel-major for the caller's row writes.
    for (u, a) in acc.iter().enumerate() {
        let mut v = [0f32; 16];
        // SAFETY: `v` is 16 writable f32; `storeu` has no alignment requirement.
        unsafe {
            _mm256_storeu_ps(v.as_mut_ptr(), a[0]);
            _mm256_storeu_ps(v.as_mut_ptr().add(8), a[1]);
        }
        for (o, &x) in out.iter_mut().zip(&v) {
            o[u] = x;
        }
    }
}

/// The AVX-512 version of [`conv_tile`]: the whole tile of `OB` = 4 output channels ×
/// `TW` = 96 samples in 24 zmm accumulators: per (input channel, tap) pair, 6 input
/// vectors, 4 broadcast weights, 24 FMAs of 16 lanes (the loads per FMA bound it).
/// Measured (vocoder row of `omni_bench`, Intel Xeon, 2026-12-01): 4 × 32 samples
/// 144 ms, 4 × 64 131 ms, 4 × 96 126–131 ms against 134 ms back to back; 4 × 112
/// (28 accumulators: spills) 148 ms against 125; 8 channels × 32 (two blocks of
/// weights, 10 loads per 16 FMAs) 150 ms; the AVX2 tiles 176–178 ms.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn conv_tile_avx512(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[f32],
    m0: usize,
) -> [[f32; TW]; OB] {
    const { assert!(OB == 4 && TW.is_multiple_of(16)) };
    const V: usize = TW / 16;
    let mut a = [[_mm512_setzero_ps(); V]; OB];
    let span = TW + d * (k - 1);
    let w = &w[..c_in * k * OB];
    for i in 0..c_in {
        let row = &xp[i * lp + m0..i * lp + m0 + span];
        let wi = &w[i * k * OB..(i + 1) * k * OB];
        for (j, wj) in wi.as_chunks::<OB>().0.iter().enumerate() {
            let xs = &row[j * d..j * d + TW];
            let wv: [__m512; OB] = std::array::from_fn(|l| _mm512_set1_ps(wj[l]));
            for (v, xc) in xs.as_chunks::<16>().0.iter().enumerate() {
                // SAFETY: `xc` is 16 readable f32 (a checked chunk); `loadu` has no
                // alignment requirement.
                let xv = unsafe { _mm512_loadu_ps(xc.as_ptr()) };
                for (al, &w) in a.iter_mut().zip(&wv) {
                    al[v] = _mm512_fmadd_ps(w, xv, al[v]);
                }
            }
        }
    }
    let mut out = [[0f32; TW]; OB];
    for (o, al) in out.iter_mut().zip(&a) {
        for (c, &v) in o.as_chunks_mut::<16>().0.iter_mut().zip(al) {
            // SAFETY: `c` is exactly 16 writable f32; `storeu` has no alignment
            // requirement.
            unsafe { _mm512_storeu_ps(c.as_mut_ptr(), v) };
        }
    }
    out
}

/// The AVX-512 convolution tile for 32 or more output channels:
/// `out[l][u] = Σ_i Σ_j w[i·k + j][l] · xp[i·lp + m0 + u + j·d]` for [`TM`] = 14
/// positions `u` (lanes 14 and 15 zero) × 32 output channels `l`, the transpose of [`conv_tile_avx512`]'s
/// roles (the GEMM tile of `panel_gemm` with x read in place): per tap one broadcast of
/// each of the 14 input samples (4-byte loads: never split across cache lines) and two
/// aligned loads of the packed weights (`Lanes32`, 64-byte aligned), 28 FMAs into 28
/// zmm accumulators. [`conv_tile_avx512`] loads 64-byte vectors of x at every tap
/// offset, most of which straddle two cache lines (`examples/conv_probe.rs`, 2 threads,
/// 256 channels, k = 11: 262–281 GFLOP/s there, 307–317 here; `conv1d` has the rest).
#[allow(clippy::too_many_arguments)] // the input's geometry and the tile's place
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn conv_tile_wide_avx512(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[Lanes<32>],
    m0: usize,
    out: &mut [[f32; 32]; 32],
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; TM];
    for_each_tap::<TM, _>(xp, lp, c_in, k, d, w, m0, |xs, wj| {
        // SAFETY: `Lanes<32>` is 32 f32 aligned to 64 bytes: two aligned loads.
        let (w0, w1) = unsafe {
            (
                _mm512_load_ps(wj.0.as_ptr()),
                _mm512_load_ps(wj.0.as_ptr().add(16)),
            )
        };
        for (a, &x) in acc.iter_mut().zip(xs) {
            let b = _mm512_set1_ps(x);
            a[0] = _mm512_fmadd_ps(b, w0, a[0]);
            a[1] = _mm512_fmadd_ps(b, w1, a[1]);
        }
    });
    // Channel-major for the caller's contiguous row writes: two 16 × 16 transposes
    // (positions TM..16 zero).
    for h in 0..2 {
        let mut r: [__m512; 16] = std::array::from_fn(|u| {
            if u < TM {
                acc[u][h]
            } else {
                _mm512_setzero_ps()
            }
        });
        transpose16(&mut r);
        for (o, v) in out[16 * h..16 * h + 16].iter_mut().zip(&r) {
            // SAFETY: 16 writable f32 of the row; `storeu` has no alignment requirement.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr(), *v) };
        }
    }
}

/// The AVX-512 convolution tile for 16 output channels (HiFi-GAN's last stage):
/// `out[l][u]` for 2·[`TM`] = 28 positions `u` (lanes 28..32 zero) × 16 channels `l`,
/// as [`conv_tile_wide_avx512`] with one weight vector per tap and 28 accumulators.
#[allow(clippy::too_many_arguments)] // the input's geometry and the tile's place
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn conv_tile_wide16_avx512(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[Lanes<16>],
    m0: usize,
    out: &mut [[f32; 32]; 32],
) {
    const T: usize = 2 * TM;
    let mut acc = [_mm512_setzero_ps(); T];
    for_each_tap::<T, _>(xp, lp, c_in, k, d, w, m0, |xs, wj| {
        // SAFETY: `Lanes<16>` is 16 f32 aligned to 64 bytes: one aligned load.
        let w0 = unsafe { _mm512_load_ps(wj.0.as_ptr()) };
        for (a, &x) in acc.iter_mut().zip(xs) {
            *a = _mm512_fmadd_ps(_mm512_set1_ps(x), w0, *a);
        }
    });
    for h in 0..2 {
        let mut r: [__m512; 16] = std::array::from_fn(|u| {
            if 16 * h + u < T {
                acc[16 * h + u]
            } else {
                _mm512_setzero_ps()
            }
        });
        transpose16(&mut r);
        for (o, v) in out[..16].iter_mut().zip(&r) {
            // SAFETY: 16 writable f32 of the row; `storeu` has no alignment requirement.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr().add(16 * h), *v) };
        }
    }
}

/// Rows of x per AVX-512 GEMM tile (`panel_gemm`): 14 × 2 accumulators, two weight
/// vectors and the broadcast (embedded in the FMA) of the 32 registers.
const GEMM_MR_512: usize = 14;
/// Rows of x per AVX2 GEMM tile: 3 × 4 accumulators, 3 broadcasts, 1 weight vector.
const GEMM_MR_256: usize = 3;

/// `c[i·ldc + j] (+)= Σ_kk a[kk·14 + i] · b[kk·32 + j]` (`i < 14`, `j < 32`): the
/// AVX-512 register tile of [`crate::panel_gemm`] (BLIS's micro-kernel: x packed
/// `[kc][14]`, the weight panel `[kc][32]`).
///
/// # Safety
/// `c + i·ldc + j` valid for reads and writes, and exclusive, for `i < 14`, `j < 32`.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) unsafe fn gemm_tile_avx512(
    a: &[f32],
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    const MR: usize = GEMM_MR_512;
    let kc = b.len() / 32;
    assert!(b.len() == kc * 32 && a.len() == kc * MR);
    if accumulate {
        for i in 0..MR {
            // SAFETY: a prefetch of the tile's rows (valid, by the contract); it never faults.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc).cast());
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + 16).cast());
            }
        }
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for kk in 0..kc {
        // SAFETY: kk < kc: b[32kk..32kk + 32] and a[14kk..14kk + 14] are inside the
        // slices (lengths asserted); `loadu` has no alignment requirement.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_ps(bp.add(kk * 32)),
                _mm512_loadu_ps(bp.add(kk * 32 + 16)),
            )
        };
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above, i < 14.
            let av = _mm512_set1_ps(unsafe { *ap.add(kk * MR + i) });
            acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        // SAFETY: row i of the tile: 32 f32 valid and exclusive (the contract).
        unsafe {
            let p = c.add(i * ldc);
            let (mut v0, mut v1) = (acc[0], acc[1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(p));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(p.add(16)));
            }
            _mm512_storeu_ps(p, v0);
            _mm512_storeu_ps(p.add(16), v1);
        }
    }
}

/// The AVX2 register tile (`i < 3`, `j < 32`; x packed `[kc][3]`).
///
/// # Safety
/// As [`gemm_tile_avx512`], for `i < 3`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_tile_avx2(
    a: &[f32],
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    const MR: usize = GEMM_MR_256;
    let kc = b.len() / 32;
    assert!(b.len() == kc * 32 && a.len() == kc * MR);
    let mut acc = [[_mm256_setzero_ps(); 4]; MR];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for kk in 0..kc {
        // SAFETY: kk < kc and i < 3: inside `a` (length asserted).
        let av: [__m256; MR] =
            std::array::from_fn(|i| unsafe { _mm256_broadcast_ss(&*ap.add(kk * MR + i)) });
        for j in 0..4 {
            // SAFETY: kk < kc, j < 4: b[32kk + 8j..+8] inside `b`.
            let bv = unsafe { _mm256_loadu_ps(bp.add(kk * 32 + 8 * j)) };
            for (acc, &a) in acc.iter_mut().zip(&av) {
                acc[j] = _mm256_fmadd_ps(a, bv, acc[j]);
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (j, &v) in acc.iter().enumerate() {
            // SAFETY: 8 f32 of row i of the tile (j < 4): valid and exclusive (the
            // contract).
            unsafe {
                let q = c.add(i * ldc + 8 * j);
                let v = if accumulate {
                    _mm256_add_ps(v, _mm256_loadu_ps(q))
                } else {
                    v
                };
                _mm256_storeu_ps(q, v);
            }
        }
    }
}

/// The 16 × 16 transpose: `r[i]` ← column `i` of the rows `r[0..16]` (three rounds
/// of in-lane unpacks/shuffles and two of 128-bit lane shuffles).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn transpose16(r: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    for p in 0..8 {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    for q in 0..4 {
        let (b, u) = (4 * q, &t[4 * q..4 * q + 4]);
        r[b] = _mm512_shuffle_ps::<0x44>(u[0], u[2]);
        r[b + 1] = _mm512_shuffle_ps::<0xEE>(u[0], u[2]);
        r[b + 2] = _mm512_shuffle_ps::<0x44>(u[1], u[3]);
        r[b + 3] = _mm512_shuffle_ps::<0xEE>(u[1], u[3]);
    }
    for h in 0..2 {
        for j in 0..4 {
            let (x, y) = (r[8 * h + j], r[8 * h + 4 + j]);
            t[8 * h + j] = _mm512_shuffle_f32x4::<0x88>(x, y);
            t[8 * h + 4 + j] = _mm512_shuffle_f32x4::<0xDD>(x, y);
        }
    }
    for j in 0..8 {
        r[j] = _mm512_shuffle_f32x4::<0x88>(t[j], t[8 + j]);
        r[8 + j] = _mm512_shuffle_f32x4::<0xDD>(t[j], t[8 + j]);
    }
}

/// The body of the panel transposes: `$load(row, k0)` gives 16 f32 of `row` from
/// column `k0`.
macro_rules! transpose_panel_body {
    ($kc:expr, $dst:expr, |$j:ident, $k0:ident| $load:expr) => {
        for $k0 in (0..$kc).step_by(16) {
            for h in 0..2 {
                let mut r: [__m512; 16] = std::array::from_fn(|i| {
                    let $j = 16 * h + i;
                    $load
                });
                transpose16(&mut r);
                for (kk, v) in r.iter().enumerate() {
                    let d = &mut $dst[($k0 + kk) * 32 + 16 * h..][..16];
                    // SAFETY: `d` is 16 writable f32.
                    unsafe { _mm512_storeu_ps(d.as_mut_ptr(), *v) };
                }
            }
        }
    };
}

/// `dst[kk·32 + j] = src[j·stride + kk]` for `j < 32`, `kk < kc` (`kc % 16 == 0`):
/// a weight panel of `panel_gemm`, 16 × 16 blocks at a time.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn transpose_panel_avx512(src: &[f32], stride: usize, kc: usize, dst: &mut [f32]) {
    assert!(kc.is_multiple_of(16) && dst.len() == kc * 32);
    assert!(src.len() >= 31 * stride + kc);
    transpose_panel_body!(kc, dst, |j, k0| {
        let s = &src[j * stride + k0..][..16];
        // SAFETY: `s` is 16 readable f32.
        unsafe { _mm512_loadu_ps(s.as_ptr()) }
    });
}

/// [`transpose_panel_avx512`] from f16 weights (bits), converted as they are loaded
/// (`vcvtph2ps`, 16 halves per row and block).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn transpose_panel_f16_avx512(src: &[u16], stride: usize, kc: usize, dst: &mut [f32]) {
    assert!(kc.is_multiple_of(16) && dst.len() == kc * 32);
    assert!(src.len() >= 31 * stride + kc);
    transpose_panel_body!(kc, dst, |j, k0| {
        let s = &src[j * stride + k0..][..16];
        // SAFETY: `s` is 16 readable u16 (32 bytes).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(s.as_ptr().cast())) }
    });
}

/// The 8 × 8 transpose: `r[i]` ← column `i` of the rows `r[0..8]` (in-lane unpacks
/// and shuffles, then 128-bit lane permutes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn transpose8(r: &mut [__m256; 8]) {
    let t: [__m256; 8] = std::array::from_fn(|i| {
        let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    // t[0] = a0 b0 a1 b1 | a4 b4 a5 b5, t[1] = a2 b2 a3 b3 | a6 b6 a7 b7, t[2], t[3]
    // likewise for rows c, d; s[0] = a0 b0 c0 d0 | a4 b4 c4 d4, s[1] the 1/5 columns,
    // s[2] 2/6, s[3] 3/7; s[4..8] the same for rows e..h.
    let s: [__m256; 8] = std::array::from_fn(|i| {
        let (a, b) = (
            t[(i / 4) * 4 + (i % 4) / 2],
            t[(i / 4) * 4 + (i % 4) / 2 + 2],
        );
        if i % 2 == 0 {
            _mm256_shuffle_ps::<0x44>(a, b)
        } else {
            _mm256_shuffle_ps::<0xEE>(a, b)
        }
    });
    for c in 0..4 {
        r[c] = _mm256_permute2f128_ps::<0x20>(s[c], s[c + 4]);
        r[c + 4] = _mm256_permute2f128_ps::<0x31>(s[c], s[c + 4]);
    }
}

/// `dst[kk·32 + j] = src[j·stride + kk]` for `j < 32`, `kk < kc` (`kc % 8 == 0`): a
/// weight panel of `panel_gemm` on AVX2, 8 × 8 blocks at a time, each row's 8
/// values `load(j, k0)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn transpose_panel_avx2_with(kc: usize, dst: &mut [f32], load: impl Fn(usize, usize) -> __m256) {
    for k0 in (0..kc).step_by(8) {
        for h in 0..4 {
            let mut r: [__m256; 8] = std::array::from_fn(|i| load(8 * h + i, k0));
            transpose8(&mut r);
            for (kk, v) in r.iter().enumerate() {
                let d = &mut dst[(k0 + kk) * 32 + 8 * h..][..8];
                // SAFETY: `d` is 8 writable f32; `storeu` has no alignment requirement.
                unsafe { _mm256_storeu_ps(d.as_mut_ptr(), *v) };
            }
        }
    }
}

/// [`transpose_panel_avx512`] on AVX2 (`kc % 8 == 0`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn transpose_panel_avx2(src: &[f32], stride: usize, kc: usize, dst: &mut [f32]) {
    assert!(kc.is_multiple_of(8) && dst.len() == kc * 32);
    assert!(src.len() >= 31 * stride + kc);
    transpose_panel_avx2_with(kc, dst, |j, k0| {
        let s = &src[j * stride + k0..][..8];
        // SAFETY: `s` is 8 readable f32.
        unsafe { _mm256_loadu_ps(s.as_ptr()) }
    });
}

/// [`transpose_panel_avx2`] from f16 weights (bits), converted as they are loaded
/// (F16C `vcvtph2ps`, 8 halves per row and block).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn transpose_panel_f16_avx2(src: &[u16], stride: usize, kc: usize, dst: &mut [f32]) {
    assert!(kc.is_multiple_of(8) && dst.len() == kc * 32);
    assert!(src.len() >= 31 * stride + kc);
    transpose_panel_avx2_with(kc, dst, |j, k0| {
        let s = &src[j * stride + k0..][..8];
        // SAFETY: `s` is 8 readable u16 (16 bytes).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(s.as_ptr().cast())) }
    });
}

/// GELU on 16 lanes (see `crate::activation`: A&S 7.1.26 erf around [`exp512`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
fn gelu512(x: __m512) -> __m512 {
    use crate::activation::{AS_A, AS_P, CLAMP};
    // q from x clamped to ±20 (erfc(20/√2) < 1e-88: q is 0 there), so that ±inf give
    // inf / −0 instead of inf·0; a NaN x stays NaN through `x − q`.
    let xc = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(-CLAMP)),
        _mm512_set1_ps(CLAMP),
    );
    let z = _mm512_mul_ps(
        _mm512_abs_ps(xc),
        _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
    );
    let one = _mm512_set1_ps(1.0);
    let t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(AS_P), z, one));
    let mut p = _mm512_set1_ps(AS_A[4]);
    for &a in AS_A[..4].iter().rev() {
        p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(a));
    }
    p = _mm512_mul_ps(p, t);
    let e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)));
    // q = x/2 · erfc(|x|/√2); gelu = x − q for x ≥ 0, q for x < 0.
    let q = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5), xc), _mm512_mul_ps(p, e));
    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
    _mm512_mask_blend_ps(neg, _mm512_sub_ps(x, q), q)
}

/// GELU on 8 lanes (as [`gelu512`], around [`exp256`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn gelu256(x: __m256) -> __m256 {
    use crate::activation::{AS_A, AS_P, CLAMP};
    let xc = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-CLAMP)),
        _mm256_set1_ps(CLAMP),
    );
    let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), xc);
    let z = _mm256_mul_ps(abs, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let one = _mm256_set1_ps(1.0);
    let t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(AS_P), z, one));
    let mut p = _mm256_set1_ps(AS_A[4]);
    for &a in AS_A[..4].iter().rev() {
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(a));
    }
    p = _mm256_mul_ps(p, t);
    let e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(z, z)));
    let q = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), xc), _mm256_mul_ps(p, e));
    let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
    _mm256_blendv_ps(_mm256_sub_ps(x, q), q, neg)
}

/// `row[j] ← gelu(row[j])` (AVX-512; the tail through a zero-padded vector).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn gelu_avx512(row: &mut [f32]) {
    let (ch, rem) = row.as_chunks_mut::<16>();
    for c in ch {
        // SAFETY: `c` is 16 readable and writable f32; no alignment requirement.
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), gelu512(_mm512_loadu_ps(c.as_ptr()))) };
    }
    if !rem.is_empty() {
        let mut t = [0.0f32; 16];
        t[..rem.len()].copy_from_slice(rem);
        // SAFETY: `t` is 16 f32.
        unsafe { _mm512_storeu_ps(t.as_mut_ptr(), gelu512(_mm512_loadu_ps(t.as_ptr()))) };
        let l = rem.len();
        rem.copy_from_slice(&t[..l]);
    }
}

/// `row[j] ← gelu(row[j])` (AVX2).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn gelu_avx2(row: &mut [f32]) {
    let (ch, rem) = row.as_chunks_mut::<8>();
    for c in ch {
        // SAFETY: `c` is 8 readable and writable f32; no alignment requirement.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), gelu256(_mm256_loadu_ps(c.as_ptr()))) };
    }
    if !rem.is_empty() {
        let mut t = [0.0f32; 8];
        t[..rem.len()].copy_from_slice(rem);
        // SAFETY: `t` is 8 f32.
        unsafe { _mm256_storeu_ps(t.as_mut_ptr(), gelu256(_mm256_loadu_ps(t.as_ptr()))) };
        let l = rem.len();
        rem.copy_from_slice(&t[..l]);
    }
}

/// `g ← g·u / (1 + e^{−g})` (AVX-512; [`exp512`] clamps, so a very negative g gives
/// ~0 and a NaN g stays NaN through the product).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn silu_mul_avx512(g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let (gc, grem) = g[..n].as_chunks_mut::<16>();
    let (uc, urem) = u[..n].as_chunks::<16>();
    let one = _mm512_set1_ps(1.0);
    for (g, u) in gc.iter_mut().zip(uc) {
        // SAFETY: `g` and `u` are 16 f32 each (g writable); no alignment requirement.
        unsafe {
            let gv = _mm512_loadu_ps(g.as_ptr());
            let e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv));
            let y = _mm512_div_ps(
                _mm512_mul_ps(gv, _mm512_loadu_ps(u.as_ptr())),
                _mm512_add_ps(one, e),
            );
            _mm512_storeu_ps(g.as_mut_ptr(), y);
        }
    }
    for (g, &u) in grem.iter_mut().zip(urem) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `g ← g·u / (1 + e^{−g})` (AVX2).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn silu_mul_avx2(g: &mut [f32], u: &[f32]) {
    let n = g.len().min(u.len());
    let (gc, grem) = g[..n].as_chunks_mut::<8>();
    let (uc, urem) = u[..n].as_chunks::<8>();
    let one = _mm256_set1_ps(1.0);
    for (g, u) in gc.iter_mut().zip(uc) {
        // SAFETY: `g` and `u` are 8 f32 each (g writable); no alignment requirement.
        unsafe {
            let gv = _mm256_loadu_ps(g.as_ptr());
            let e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), gv));
            let y = _mm256_div_ps(
                _mm256_mul_ps(gv, _mm256_loadu_ps(u.as_ptr())),
                _mm256_add_ps(one, e),
            );
            _mm256_storeu_ps(g.as_mut_ptr(), y);
        }
    }
    for (g, &u) in grem.iter_mut().zip(urem) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Cephes `logf` on 16 lanes for `x > 0` finite (mantissa and exponent by
/// `vgetmantps` / `vgetexpps`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
fn ln512(x: __m512) -> __m512 {
    use crate::math::{LN2_HI, LN2_LO, LOG_P};
    // m in [1, 2), e = floor(log2 x).
    let m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(x);
    let e = _mm512_getexp_ps(x);
    // Fold m into [√½, √2): m ≥ √2 → m/2, e + 1.
    let big = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(m, _mm512_set1_ps(std::f32::consts::SQRT_2));
    let m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5));
    let e = _mm512_mask_add_ps(e, big, e, _mm512_set1_ps(1.0));
    let r = _mm512_sub_ps(m, _mm512_set1_ps(1.0));
    let z = _mm512_mul_ps(r, r);
    let mut p = _mm512_set1_ps(LOG_P[0]);
    for &c in &LOG_P[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let mut y = _mm512_mul_ps(_mm512_mul_ps(p, r), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(LN2_LO), y);
    y = _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5), y);
    _mm512_fmadd_ps(e, _mm512_set1_ps(LN2_HI), _mm512_add_ps(r, y))
}

/// `x ← log10(max(x, floor))` (AVX-512; NaN and +inf stay).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn log10_floor_avx512(xs: &mut [f32], floor: f32) {
    let (ch, rem) = xs.as_chunks_mut::<16>();
    let (fl, l10) = (
        _mm512_set1_ps(floor),
        _mm512_set1_ps(std::f32::consts::LOG10_E),
    );
    for c in ch {
        // SAFETY: `c` is 16 readable and writable f32; no alignment requirement.
        unsafe {
            let x = _mm512_loadu_ps(c.as_ptr());
            // NaN and +inf are their own log10.
            let keep = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(x, _mm512_set1_ps(f32::INFINITY));
            let y = _mm512_mul_ps(ln512(_mm512_max_ps(x, fl)), l10);
            _mm512_storeu_ps(c.as_mut_ptr(), _mm512_mask_blend_ps(keep, y, x));
        }
    }
    for x in rem {
        *x = if x.is_nan() { *x } else { x.max(floor).log10() };
    }
}

/// Cephes `logf` on 8 lanes for `x > 0` finite and normal (mantissa and exponent
/// from the bits, as sse_mathfun's `log_ps`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn ln256(x: __m256) -> __m256 {
    use crate::math::{LN2_HI, LN2_LO, LOG_P};
    let bits = _mm256_castps_si256(x);
    // e = biased exponent − 126, m in [0.5, 1).
    let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(126));
    let m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x3f00_0000),
    ));
    let mut e = _mm256_cvtepi32_ps(e);
    // m < √½: m ← 2m − 1, e − 1; else m − 1.
    let small = _mm256_cmp_ps::<_CMP_LT_OQ>(m, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let one = _mm256_set1_ps(1.0);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
    let r = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(m, small)), one);
    let z = _mm256_mul_ps(r, r);
    let mut p = _mm256_set1_ps(LOG_P[0]);
    for &c in &LOG_P[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let mut y = _mm256_mul_ps(_mm256_mul_ps(p, r), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(LN2_LO), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5), y);
    _mm256_fmadd_ps(e, _mm256_set1_ps(LN2_HI), _mm256_add_ps(r, y))
}

/// `x ← log10(max(x, floor))` (AVX2; NaN and +inf stay; `floor` a normal f32).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn log10_floor_avx2(xs: &mut [f32], floor: f32) {
    let (ch, rem) = xs.as_chunks_mut::<8>();
    let (fl, l10) = (
        _mm256_set1_ps(floor),
        _mm256_set1_ps(std::f32::consts::LOG10_E),
    );
    for c in ch {
        // SAFETY: `c` is 8 readable and writable f32; no alignment requirement.
        unsafe {
            let x = _mm256_loadu_ps(c.as_ptr());
            // NaN and +inf are their own log10.
            let keep = _mm256_cmp_ps::<_CMP_NLT_UQ>(x, _mm256_set1_ps(f32::INFINITY));
            let y = _mm256_mul_ps(ln256(_mm256_max_ps(x, fl)), l10);
            _mm256_storeu_ps(c.as_mut_ptr(), _mm256_blendv_ps(y, x, keep));
        }
    }
    for x in rem {
        *x = if x.is_nan() { *x } else { x.max(floor).log10() };
    }
}

/// The exponentials of a panel of scores held key-major (`panel[j·32 + l]`: key `j`,
/// query column `l`; the transposed layout of [`crate::panel_attention`]):
/// `panel[j·32 + l] ← exp(scale·(panel[j·32 + l] − max[l]))` for every row `j`, and
/// the column sums added to `sums` — one query per lane, no horizontal reductions
/// (AVX2: 4 vectors of 8 columns per row).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn exp_columns_avx2(
    panel: &mut [f32],
    max: &[f32; 32],
    scale: f32,
    sums: &mut [f32; 32],
) {
    let load = |p: &[f32]| -> [__m256; 4] {
        std::array::from_fn(|v| {
            let c: &[f32; 8] = p[8 * v..8 * v + 8].try_into().expect("8 lanes");
            load_ps(c)
        })
    };
    let (vm, vs) = (load(max), _mm256_set1_ps(scale));
    let mut s = load(sums);
    let (rows, rem) = panel.as_chunks_mut::<32>();
    assert!(rem.is_empty(), "a panel of 32 columns");
    for row in rows {
        for v in 0..4 {
            // SAFETY: `row` is 32 readable and writable f32; `loadu`/`storeu` have no
            // alignment requirement.
            unsafe {
                let p = row.as_mut_ptr().add(8 * v);
                let e = exp256(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p), vm[v]), vs));
                _mm256_storeu_ps(p, e);
                s[v] = _mm256_add_ps(s[v], e);
            }
        }
    }
    for (v, sv) in s.iter().enumerate() {
        // SAFETY: `sums[8v..8v + 8]` is 8 writable f32.
        unsafe { _mm256_storeu_ps(sums[8 * v..].as_mut_ptr(), *sv) };
    }
}

/// [`exp_columns_avx2`] on AVX-512 (2 vectors of 16 columns per row).
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) fn exp_columns_avx512(
    panel: &mut [f32],
    max: &[f32; 32],
    scale: f32,
    sums: &mut [f32; 32],
) {
    // SAFETY: two loads of 16 f32 inside the 32-value array; `loadu` has no
    // alignment requirement.
    let vm = unsafe {
        [
            _mm512_loadu_ps(max.as_ptr()),
            _mm512_loadu_ps(max.as_ptr().add(16)),
        ]
    };
    // SAFETY: as above.
    let mut s = unsafe {
        [
            _mm512_loadu_ps(sums.as_ptr()),
            _mm512_loadu_ps(sums.as_ptr().add(16)),
        ]
    };
    let vs = _mm512_set1_ps(scale);
    let (rows, rem) = panel.as_chunks_mut::<32>();
    assert!(rem.is_empty(), "a panel of 32 columns");
    for row in rows {
        for v in 0..2 {
            // SAFETY: 16 f32 inside the 32-value row (v < 2), read and written in
            // place (a unique borrow); no alignment requirement.
            unsafe {
                let p = row.as_mut_ptr().add(16 * v);
                let e = exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p), vm[v]), vs));
                _mm512_storeu_ps(p, e);
                s[v] = _mm512_add_ps(s[v], e);
            }
        }
    }
    // SAFETY: as above.
    unsafe {
        _mm512_storeu_ps(sums.as_mut_ptr(), s[0]);
        _mm512_storeu_ps(sums.as_mut_ptr().add(16), s[1]);
    }
}
