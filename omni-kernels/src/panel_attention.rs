//! The attention of [`crate::attention::attention_heads`] on the register tiles of
//! omni's GEMM (`panel_gemm`): no `gemm` crate, so every instruction set runs its
//! own tile (AVX-512 14 × 32, AVX2 3 × 32, portable 4 × 32), scores held key-major.
//!
//! One rayon task per kv head `g`, which packs once: `K_g` as micro-panels of `MR`
//! keys (`[d][MR]` each) and `V_gᵀ` as micro-panels of `MR` of its `d` columns
//! (`[keys][MR]` each). The query rows of the group's heads (`heads / kv_heads`
//! share `g`: the keys are read once per group, not once per query head) are
//! stacked and taken in panels of 32, [`Q_ROWS`] rows per block. Per panel:
//! 1. `Sᵀ = K_g·Qᵀ` (`[keys][32]`): the 32 query rows transposed into the tiles'
//!    weight panel, tiles of `K_g`'s micro-panels against it;
//! 2. the softmax down each column (one query per vector lane: no horizontal
//!    reductions) over its visible keys, the rest set to 0;
//! 3. `Oᵀ = V_gᵀ·Pᵀ`: `Pᵀ` is the panel as it stands, so nothing is transposed
//!    per block but the 32 query rows in and the output out;
//! 4. `O = (Oᵀ)ᵀ / Σ` into the task's rows.

use rayon::prelude::*;

use crate::attention::Heads;
use std::cell::RefCell;

use crate::panel_gemm::{mr, tile_raw, transpose_panel, with_buf, NR};

thread_local! {
    /// A task's packed keys and values (reused: fresh pages cost their faults).
    static KEYS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static VALUES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The block's key-major scores.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}
use crate::Isa;

/// Query rows per block (stacked over the group's heads; two panels of 32).
pub const Q_ROWS: usize = 2 * NR;

/// Keys per partial sum, in `P·V` and in the softmax's denominators (f32 error
/// ~(256 + keys/256)·ε instead of keys·ε): one accumulator over Whisper's 1500 keys
/// put the real Whisper base encoder 1.1e-4 (max |Δ| / max |ref|) from
/// openai-whisper on a real clip, against 2.3e-5 before (`tests/real_weights.rs`).
const SUM_KEYS: usize = 256;

/// See the module doc; the arguments as [`crate::attention::attention_heads`]
/// (checked there), `isa` available.
pub(crate) fn attention(
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
    let mr = mr(isa);
    let scale = 1.0 / (d as f32).sqrt();
    let (kpad, dm) = (t_k.div_ceil(mr) * mr, d.div_ceil(mr));
    let panels = Q_ROWS / NR;
    let parts: Vec<(usize, Vec<f32>)> = (0..k.heads)
        .into_par_iter()
        .map(|g| {
            let rows_total = group * t_q;
            let mut o = vec![0.0f32; rows_total * d];
            with_buf(&KEYS, kpad * d, |kk| {
                with_buf(&VALUES, dm * kpad * mr, |vt| {
                    with_buf(&SCORES, panels * kpad * NR, |st| {
                        pack_keys(k, g, d, mr, kk);
                        pack_values(v, g, d, mr, kpad, vt);
                        let mut qt = vec![0.0f32; d * NR];
                        let mut ot = vec![0.0f32; dm * mr * Q_ROWS];
                        let mut sums = vec![[0.0f32; NR]; panels];
                        for b0 in (0..rows_total).step_by(Q_ROWS) {
                            let rows = Q_ROWS.min(rows_total - b0);
                            // Row r of the block: query row i of head h, seeing `seen(r)` keys.
                            let hi = |r: usize| (g * group + (b0 + r) / t_q, (b0 + r) % t_q);
                            let seen = |r: usize| causal.map_or(t_k, |p0| p0 + hi(r).1 + 1);
                            let jmax = (0..rows).map(seen).max().unwrap_or(0);
                            let np = rows.div_ceil(NR);
                            for (j, (sp, sums)) in st
                                .chunks_exact_mut(kpad * NR)
                                .zip(&mut sums)
                                .take(np)
                                .enumerate()
                            {
                                // 1. Qᵀ of the panel's rows (zeros past the block), then Sᵀ.
                                let (h0, i0) = hi(j * NR);
                                if j * NR + NR <= rows && i0 + NR <= t_q {
                                    // 32 rows of one head: the register transposes.
                                    let s0 = h0 * q.head_stride + i0 * q.row_stride;
                                    let src = &q.data[s0..s0 + (NR - 1) * q.row_stride + d];
                                    transpose_panel(isa, src, q.row_stride, NR, d, &mut qt);
                                } else {
                                    for l in 0..NR {
                                        let r = j * NR + l;
                                        if r < rows {
                                            let (h, i) = hi(r);
                                            let row = &q.data
                                                [h * q.head_stride + i * q.row_stride..][..d];
                                            row.iter()
                                                .enumerate()
                                                .for_each(|(e, &x)| qt[e * NR + l] = x);
                                        } else {
                                            (0..d).for_each(|e| qt[e * NR + l] = 0.0);
                                        }
                                    }
                                }
                                for m in 0..jmax.div_ceil(mr) {
                                    // SAFETY: `isa` is available (the caller's contract); the tile's
                                    // rows m·mr.. + mr ≤ kpad of `sp` (row stride 32), which this
                                    // task owns.
                                    unsafe {
                                        let c = sp.as_mut_ptr().add(m * mr * NR);
                                        tile_raw(
                                            isa,
                                            &kk[m * d * mr..][..d * mr],
                                            &qt,
                                            c,
                                            NR,
                                            false,
                                        )
                                    }
                                }
                                // 2. The softmax down each column (padding columns see every key
                                // any row sees; they are dropped).
                                let seen: [usize; NR] = std::array::from_fn(|l| {
                                    let r = j * NR + l;
                                    if r < rows {
                                        seen(r)
                                    } else {
                                        jmax
                                    }
                                });
                                softmax_columns(isa, &mut sp[..jmax * NR], &seen, scale, sums);
                            }
                            // 3. Oᵀ = V_gᵀ·Pᵀ over the keys any row sees.
                            let ldo = np * NR;
                            for m in 0..dm {
                                let va = &vt[m * kpad * mr..][..jmax * mr];
                                for (j, sp) in st.chunks_exact(kpad * NR).take(np).enumerate() {
                                    // In blocks of `SUM_KEYS` keys, each block's sums added to the
                                    // tile (as a GEMM's blocks of k).
                                    for k0 in (0..jmax).step_by(SUM_KEYS) {
                                        let k1 = (k0 + SUM_KEYS).min(jmax);
                                        // SAFETY: as above: rows m·mr.. + mr ≤ dm·mr and columns
                                        // 32j.. + 32 ≤ ldo of `ot` (row stride ldo), owned by this task.
                                        unsafe {
                                            let c = ot.as_mut_ptr().add(m * mr * ldo + j * NR);
                                            let (a, b) =
                                                (&va[k0 * mr..k1 * mr], &sp[k0 * NR..k1 * NR]);
                                            tile_raw(isa, a, b, c, ldo, k0 > 0)
                                        }
                                    }
                                }
                            }
                            // 4. O = Oᵀᵀ / Σ.
                            for (r, orow) in
                                o[b0 * d..(b0 + rows) * d].chunks_exact_mut(d).enumerate()
                            {
                                let inv = 1.0 / sums[r / NR][r % NR];
                                for (e, y) in orow.iter_mut().enumerate() {
                                    *y = ot[e * ldo + r] * inv;
                                }
                            }
                        }
                    })
                })
            });
            (g, o)
        })
        .collect();
    for (g, o) in parts {
        for (rr, row) in o.chunks_exact(d).enumerate() {
            let (h, i) = (g * group + rr / t_q, rr % t_q);
            out[i * c + h * d..i * c + (h + 1) * d].copy_from_slice(row);
        }
    }
}

/// `panel[j·32 + l] ← exp(scale·(s − max_l))` for keys `j < seen[l]` of column `l`
/// (0 for the rest; `panel` holds `max(seen)` rows), the column sums into `sums`.
/// The rows every column sees go through `isa`'s vector exponential.
fn softmax_columns(
    isa: Isa,
    panel: &mut [f32],
    seen: &[usize; NR],
    scale: f32,
    sums: &mut [f32; NR],
) {
    let jmax = panel.len() / NR;
    let jmin = seen.iter().copied().min().unwrap_or(0);
    let mut mx = [f32::NEG_INFINITY; NR];
    for row in panel[..jmin * NR].chunks_exact(NR) {
        mx.iter_mut().zip(row).for_each(|(m, &x)| *m = m.max(x));
    }
    for (l, m) in mx.iter_mut().enumerate() {
        for j in jmin..seen[l] {
            *m = m.max(panel[j * NR + l]);
        }
    }
    *sums = [0.0; NR];
    // Blocks of `SUM_KEYS` rows, each block's sums added to the total.
    for full in panel[..jmin * NR].chunks_mut(SUM_KEYS * NR) {
        let mut part = [0.0f32; NR];
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx512Vnni` is only selected where AVX-512 F (and AVX2, FMA,
            // F16C) were detected at run time.
            Isa::Avx512Vnni => unsafe {
                crate::x86::exp_columns_avx512(full, &mx, scale, &mut part)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx2` is only selected where AVX2, FMA and F16C were
            // detected.
            Isa::Avx2 => unsafe { crate::x86::exp_columns_avx2(full, &mx, scale, &mut part) },
            _ => {
                for row in full.chunks_exact_mut(NR) {
                    for (l, x) in row.iter_mut().enumerate() {
                        *x = (scale * (*x - mx[l])).exp();
                        part[l] += *x;
                    }
                }
            }
        }
        sums.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    for l in 0..NR {
        for j in jmin..jmax {
            let x = &mut panel[j * NR + l];
            if j < seen[l] {
                *x = (scale * (*x - mx[l])).exp();
                sums[l] += *x;
            } else {
                *x = 0.0;
            }
        }
    }
}

/// `K_g` in micro-panels of `mr` keys, `[d][mr]` each, into `kk` (`kpad·d` values;
/// the padding keys are left as they are: their scores are never read).
fn pack_keys(k: Heads<'_>, g: usize, d: usize, mr: usize, kk: &mut [f32]) {
    for j in 0..k.rows {
        let row = &k.data[g * k.head_stride + j * k.row_stride..][..d];
        let dst = &mut kk[(j / mr) * d * mr + j % mr..];
        for (e, &x) in row.iter().enumerate() {
            dst[e * mr] = x;
        }
    }
}

/// `V_gᵀ` in micro-panels of `mr` of its `d` columns, `[kpad][mr]` each, into `vt`
/// (the padding columns are left as they are: their outputs are dropped).
fn pack_values(v: Heads<'_>, g: usize, d: usize, mr: usize, kpad: usize, vt: &mut [f32]) {
    let at: Vec<usize> = (0..d).map(|e| (e / mr) * kpad * mr + e % mr).collect();
    for j in 0..v.rows {
        let row = &v.data[g * v.head_stride + j * v.row_stride..][..d];
        for (&x, &a) in row.iter().zip(&at) {
            vt[a + j * mr] = x;
        }
    }
}
