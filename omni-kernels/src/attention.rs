//! Multi-head attention in f32, `softmax(Q·Kᵀ / √d) · V` per head: the Whisper
//! encoder's (openai-whisper `MultiHeadAttention.qkv_attention` without a mask; its
//! `d^-¼` on both q and k is the same `1/√d`: [`attention_f32`]) and the LLM's
//! prompt (causal, grouped-query: [`attention_heads`]).
//!
//! Per head and block of [`Q_BLOCK`] query rows (one rayon task): the scores
//! `S = Q_h·K_hᵀ` (a GEMM into a per-thread scratch), each row's softmax in place
//! (max, `exp` vectorized, sum), `O_h = P·V_h` (a GEMM), then `O_h /= Σ`. The heads
//! are read in place from the projections' `[t, heads·d]` layout (no transposed
//! copies).

use rayon::prelude::*;

use crate::{gemm_f32, Isa, MatMut, MatRef};

/// Query rows per task: larger blocks pack `K_h` and `V_h` for the GEMMs fewer
/// times. Measured (whisper-base encoder in `omni_bench`, Intel Xeon, 2 threads,
/// 2026-12-01, one task per block with all heads): 64 → 476–513 ms, 128 → 451–457,
/// 256 → 420–426, 384 → 403–412 ms; one task per head and block (this code, which
/// keeps more threads busy on larger CPUs): 384 → 419–434 ms.
pub const Q_BLOCK: usize = 384;

/// `out[t_q, heads·d]` = per head `h`, `softmax(q_h·k_hᵀ / √d)·v_h`, with `q`
/// `[t_q, heads·d]`, `k` and `v` `[t_k, heads·d]` (head `h` in columns
/// `h·d..(h+1)·d`, as the projections produce them). Threads: rayon's current pool,
/// over blocks of query rows.
#[allow(clippy::too_many_arguments)] // the shapes of three matrices
pub fn attention_f32(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    t_q: usize,
    t_k: usize,
    heads: usize,
    d: usize,
    out: &mut [f32],
) {
    let c = heads * d;
    assert_eq!(q.len(), t_q * c, "q is not [{t_q}, {heads}·{d}]");
    assert_eq!(k.len(), t_k * c, "k is not [{t_k}, {heads}·{d}]");
    assert_eq!(v.len(), t_k * c, "v is not [{t_k}, {heads}·{d}]");
    let token_major = |data, rows| Heads {
        data,
        heads,
        rows,
        head_stride: d,
        row_stride: c,
    };
    attention_heads(
        token_major(q, t_q),
        token_major(k, t_k),
        token_major(v, t_k),
        d,
        None,
        out,
    )
}

/// A set of attention heads in a buffer: row `i` of head `h` is
/// `data[h·head_stride + i·row_stride..][..d]` (token-major `[rows, heads·d]`:
/// strides `d`, `heads·d`; head-major `[heads, rows, d]`: `rows·d`, `d`).
#[derive(Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub heads: usize,
    pub rows: usize,
    pub head_stride: usize,
    pub row_stride: usize,
}

impl Heads<'_> {
    fn check(&self, d: usize, what: &str) {
        if self.heads > 0 && self.rows > 0 {
            let last = (self.heads - 1) * self.head_stride + (self.rows - 1) * self.row_stride + d;
            assert!(
                last <= self.data.len(),
                "{what}: {} values, head {} row {} needs {last}",
                self.data.len(),
                self.heads - 1,
                self.rows - 1
            );
        }
    }
}

/// `out[t_q, heads·d]` = per query head `h`, `softmax(q_h·k_gᵀ / √d)·v_g` with `g =
/// h / (heads / kv_heads)` (grouped-query attention: transformers'
/// `repeat_kv`, without the copies), over every key or, with `causal = Some(p0)`,
/// the keys `0..=p0 + i` for query row `i` (the query rows are positions `p0..`
/// after `p0` cached ones: `LlamaAttention` with its causal mask). The AMX tiles
/// where opted in (unmasked), else [`attention_heads_with`] on the selected
/// instruction set.
pub fn attention_heads(
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    d: usize,
    causal: Option<usize>,
    out: &mut [f32],
) {
    if !check_shapes(q, k, v, d, causal, out) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if causal.is_none() && crate::amx_attention::applies(d) {
        return crate::amx_attention::attention(q, k, v, d, out);
    }
    attention_checked(Isa::selected(), q, k, v, d, causal, out)
}

/// [`attention_heads`] without the AMX opt-in, on an explicit instruction set
/// (panics if this CPU lacks it): at least 64 (`panel_attention::Q_ROWS`) query
/// rows per kv head (prompts, Whisper's frames) take the register tiles of omni's
/// GEMM with the scores key-major (`panel_attention`); fewer (decode steps, the
/// speech decoder's 25 frames over 32 kv heads) the per-head `gemm` crate path
/// below. `examples/attn_probe.rs` (Intel Xeon, 2 threads, 2026-12-02, one
/// Whisper layer's attention at 1500 frames, tiles vs the `gemm` crate path,
/// alternated): AVX-512 large-v3 66.1–67.6 ms against 72.5–74.9, base 25.9–27.1
/// against 26.3–26.6; AVX2 with the `gemm` crate held to AVX2 too
/// (`scripts/cargo_gemm_avx2.sh`: an AVX2 CPU's path) large-v3 97.5–101.6 against
/// 108.6–108.9, base 40.8–42.7 against 39.6–48.1.
pub fn attention_heads_with(
    isa: Isa,
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    d: usize,
    causal: Option<usize>,
    out: &mut [f32],
) {
    assert!(
        isa.is_available(),
        "kernels {isa:?} are not available on this CPU"
    );
    if check_shapes(q, k, v, d, causal, out) {
        attention_checked(isa, q, k, v, d, causal, out)
    }
}

/// [`attention_heads_with`] on shapes [`check_shapes`] passed, with something to
/// compute.
fn attention_checked(
    isa: Isa,
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    d: usize,
    causal: Option<usize>,
    out: &mut [f32],
) {
    let (heads, t_q, t_k) = (q.heads, q.rows, k.rows);
    let c = heads * d;
    let group = heads / k.heads;
    if group * t_q >= crate::panel_attention::Q_ROWS {
        return crate::panel_attention::attention(isa, q, k, v, d, causal, out);
    }
    // Per head and block of `Q_BLOCK` query rows (one rayon task): `S = Q_h·K_gᵀ` (a
    // GEMM into a per-thread scratch), each row's softmax in place over its visible
    // keys (the rest set to 0), `O = P·V_g` (a GEMM), `O /= Σ`.
    let scale = 1.0 / (d as f32).sqrt();
    let blocks = t_q.div_ceil(Q_BLOCK);
    // One task per (head, block of query rows): its output goes to a buffer of its
    // own (`[rows, d]`), copied into `out` after (the heads' columns interleave).
    let parts: Vec<(usize, usize, Vec<f32>)> = (0..heads * blocks)
        .into_par_iter()
        .map_init(Vec::new, |scores, task| {
            let (h, blk) = (task / blocks, task % blocks);
            let g = h / group;
            let i0 = blk * Q_BLOCK;
            let rows = Q_BLOCK.min(t_q - i0);
            // Keys any row of the block sees.
            let keys = causal.map_or(t_k, |p0| p0 + i0 + rows);
            scores.resize(rows * keys, 0.0f32);
            gemm_f32(
                MatMut {
                    data: scores,
                    rows,
                    cols: keys,
                    rs: keys,
                },
                MatRef {
                    data: &q.data[h * q.head_stride + i0 * q.row_stride..],
                    rows,
                    cols: d,
                    rs: q.row_stride,
                    cs: 1,
                },
                // Kᵀ: element (e, j) is row j of kv head g, column e.
                MatRef {
                    data: &k.data[g * k.head_stride..],
                    rows: d,
                    cols: keys,
                    rs: 1,
                    cs: k.row_stride,
                },
                gemm::Parallelism::None,
            );
            let sums: Vec<f32> = scores
                .chunks_exact_mut(keys)
                .enumerate()
                .map(|(r, row)| {
                    let seen = causal.map_or(keys, |p0| p0 + i0 + r + 1);
                    row[seen..].fill(0.0);
                    softmax_row(isa, &mut row[..seen], scale)
                })
                .collect();
            let mut o = vec![0.0f32; rows * d];
            gemm_f32(
                MatMut {
                    data: &mut o,
                    rows,
                    cols: d,
                    rs: d,
                },
                MatRef {
                    data: scores,
                    rows,
                    cols: keys,
                    rs: keys,
                    cs: 1,
                },
                MatRef {
                    data: &v.data[g * v.head_stride..],
                    rows: keys,
                    cols: d,
                    rs: v.row_stride,
                    cs: 1,
                },
                gemm::Parallelism::None,
            );
            for (row, s) in o.chunks_exact_mut(d).zip(&sums) {
                let inv = 1.0 / s;
                row.iter_mut().for_each(|y| *y *= inv);
            }
            (h, i0, o)
        })
        .collect();
    for (h, i0, o) in parts {
        for (r, row) in o.chunks_exact(d).enumerate() {
            out[(i0 + r) * c + h * d..(i0 + r) * c + (h + 1) * d].copy_from_slice(row);
        }
    }
}

/// Asserts the shapes of an attention call (panics on a mismatch); returns whether
/// there is anything to compute.
fn check_shapes(
    q: Heads<'_>,
    k: Heads<'_>,
    v: Heads<'_>,
    d: usize,
    causal: Option<usize>,
    out: &[f32],
) -> bool {
    let (heads, t_q, t_k) = (q.heads, q.rows, k.rows);
    let c = heads * d;
    assert_eq!(out.len(), t_q * c, "out is not [{t_q}, {heads}·{d}]");
    assert!(
        k.heads == v.heads && k.rows == v.rows,
        "k and v differ in shape"
    );
    q.check(d, "q");
    k.check(d, "k");
    v.check(d, "v");
    if t_q == 0 || c == 0 {
        return false;
    }
    assert!(t_k > 0, "attention over no keys");
    assert!(
        k.heads > 0 && heads.is_multiple_of(k.heads),
        "{heads} query heads over {} kv heads",
        k.heads
    );
    if let Some(p0) = causal {
        assert!(
            p0 + t_q <= t_k,
            "causal: {t_q} queries after {p0} cached need {} keys, got {t_k}",
            p0 + t_q
        );
    }
    true
}

/// `row[j] ← exp(scale·(row[j] − max))`; returns the sum of the new values (≥ 1).
pub fn softmax_row(isa: Isa, row: &mut [f32], scale: f32) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512Vnni` is only selected where AVX-512 F (and AVX2, FMA,
        // F16C) were detected at run time.
        Isa::Avx512Vnni => unsafe { crate::x86::softmax_row_avx512(row, scale) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only selected where AVX2, FMA and F16C were detected.
        Isa::Avx2 => unsafe { crate::x86::softmax_row_avx2(row, scale) },
        _ => {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut s = 0.0f32;
            for x in row.iter_mut() {
                *x = (scale * (*x - m)).exp();
                s += *x;
            }
            s
        }
    }
}
