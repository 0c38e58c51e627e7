//! Unmasked multi-head attention (the Whisper encoder's, openai-whisper
//! `MultiHeadAttention.qkv_attention`) on AMX tiles at f32 precision, opt-in
//! ([`crate::AMX_ATTENTION_ENV`]): both
//! products, `S = Q_h·K_gᵀ` and `P·V_g`, as [`crate::amx::block_32x32`] blocks on
//! bf16 parts of every operand (three per f32, the six part products above 2^-23:
//! the same precision as `amx_gemm`), the softmax in between on an f32 row block.
//!
//! One rayon task per head. The task packs its kv head's keys as B panels of 32
//! keys (`[d/2][32][2]` per part) and its values transposed as B panels of 32 of
//! the `d` columns over all keys, once; then, per 32 query rows: the rows split
//! into A planes ([`crate::amx::split_block_a`]), the scores block `[32, t_k]` on
//! the tiles (in L2), the softmax numerators `exp(scale·(s − max))` and their sums
//! computed and split into A planes in one pass
//! ([`crate::amx::softmax_split_block_a`], the same `exp` as
//! [`crate::attention::softmax_row`]), `[32, d]` of output on the tiles, divided
//! by the sums. Of `[t_q, t_k]` only one block of 32 rows is ever held (the `gemm`
//! path writes and reads a 384-row block of scores per task).

use rayon::prelude::*;

use crate::amx::{self, TileConfig};
use crate::attention::Heads;
use crate::panel_gemm::with_buf;

/// Rows (queries) per block and keys / output columns per panel.
const NB: usize = 32;

thread_local! {
    /// A task's packed keys and values and its A planes (bf16 bits).
    static PACKED: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A task's transposed values, scores block, output block and a zero-padded panel.
    static ROWS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `attention_heads` takes the tiles for unmasked attention: opted in
/// ([`crate::AMX_ATTENTION_ENV`]), AMX selected and a head width of whole 32-column steps (Whisper's 64; the LLM's causal
/// prompts keep the `gemm` path). `examples/whisper_probe.rs`, the attention of
/// one large-v3 block (1500 × 1500 frames, 20 heads of 64), Intel Xeon, 2
/// threads, 2026-12-01, ms: the `gemm` path 50.0–55.3, this one 38.9–42.2 (phases
/// summed over both threads: packing 6, scores 21–28, softmax + split 28–35,
/// `P·V` 18–24; with the softmax written back as f32 and split in a second pass,
/// 44–50).
pub(crate) fn applies(d: usize) -> bool {
    std::env::var(crate::AMX_ATTENTION_ENV).is_ok_and(|v| v == "1")
        && crate::amx_selected()
        && d > 0
        && d.is_multiple_of(NB)
        && d <= 512
}

/// The three planes of `buf`, `stride` bf16 apart, as the tiles' base pointers.
fn planes(buf: &[u16], stride: usize) -> [*const u8; 3] {
    std::array::from_fn(|i| buf[i * stride..].as_ptr().cast())
}

/// `out[t_q, heads·d]` = per head `h`, `softmax(q_h·k_gᵀ / √d)·v_g` over every key
/// (`g = h / (heads / kv_heads)`). Callers: `attention_heads` after its checks and
/// [`applies`].
pub(crate) fn attention(q: Heads<'_>, k: Heads<'_>, v: Heads<'_>, d: usize, out: &mut [f32]) {
    let (heads, t_q, t_k) = (q.heads, q.rows, k.rows);
    let c = heads * d;
    let group = heads / k.heads;
    let scale = 1.0 / (d as f32).sqrt();
    let tkp = t_k.next_multiple_of(NB);
    // The scores block's row stride: never a multiple of 4 KiB (a C tile's 16 rows
    // would share a few cache sets).
    let ss = tkp + NB / 2;
    let (kpanels, dpanels) = (tkp / NB, d / NB);
    let (k_len, v_len) = (3 * d * NB, 3 * tkp * NB);
    let pairs = crate::amx_gemm::pairs(3, 3);
    let per_head: Vec<Vec<f32>> = (0..heads)
        .into_par_iter()
        .map(|h| {
            let g = h / group;
            let mut o_h = vec![0.0f32; t_q * d];
            let u16_len = kpanels * k_len + dpanels * v_len + 3 * NB * d + 3 * NB * tkp;
            let f32_len = d * tkp + NB * ss + NB * d + NB * d;
            with_buf(&PACKED, u16_len, |u| {
                with_buf(&ROWS, f32_len, |f| {
                    let (kpack, u) = u.split_at_mut(kpanels * k_len);
                    let (vpack, u) = u.split_at_mut(dpanels * v_len);
                    let (qa, u) = u.split_at_mut(3 * NB * d);
                    let pa = u;
                    let (vt, f) = f.split_at_mut(d * tkp);
                    let (s, f) = f.split_at_mut(NB * ss);
                    let (o, panel) = f.split_at_mut(NB * d);
                    // Keys: panels of 32 rows of `d`, zero rows past t_k.
                    for p in 0..kpanels {
                        panel.fill(0.0);
                        for r in 0..NB.min(t_k - p * NB) {
                            let j = p * NB + r;
                            panel[r * d..(r + 1) * d].copy_from_slice(
                                &k.data[g * k.head_stride + j * k.row_stride..][..d],
                            );
                        }
                        // SAFETY: AVX-512 F/BW/BF16 (`applies` → `amx::available`).
                        unsafe {
                            amx::pack_panel_f32(panel, d, d, 3, &mut kpack[p * k_len..][..k_len])
                        };
                    }
                    // Values transposed, `[d, tkp]`, zero past t_k: panels of 32 columns.
                    for j in 0..t_k {
                        let src = &v.data[g * v.head_stride + j * v.row_stride..][..d];
                        for (e, &x) in src.iter().enumerate() {
                            vt[e * tkp + j] = x;
                        }
                    }
                    for row in vt.chunks_exact_mut(tkp) {
                        row[t_k..].fill(0.0);
                    }
                    for p in 0..dpanels {
                        // SAFETY: as above.
                        unsafe {
                            amx::pack_panel_f32(
                                &vt[p * NB * tkp..],
                                tkp,
                                tkp,
                                3,
                                &mut vpack[p * v_len..][..v_len],
                            )
                        };
                    }
                    let cfg = TileConfig::new();
                    // SAFETY: `amx::available()` (`applies`).
                    unsafe { cfg.load() };
                    for i0 in (0..t_q).step_by(NB) {
                        let rows = NB.min(t_q - i0);
                        let q_block = &q.data[h * q.head_stride + i0 * q.row_stride..];
                        // SAFETY: AVX-512 F/BW/BF16 (`applies` → `amx::available`).
                        unsafe { amx::split_block_a(q_block, q.row_stride, rows, d, qa) };
                        for p in 0..kpanels {
                            // SAFETY: the configuration is loaded on this thread; A: the
                            // row block's planes (d/32 steps); B: key panel p's planes;
                            // C: 32 rows of 32 columns p·32.. of `s` (row stride ss).
                            unsafe {
                                let c = s[p * NB..].as_mut_ptr().cast();
                                let b = planes(&kpack[p * k_len..], d * NB);
                                amx::block_32x32(
                                    planes(qa, NB * d),
                                    b,
                                    d / NB,
                                    &pairs,
                                    c,
                                    ss * 4,
                                    false,
                                )
                            };
                        }
                        let mut sums = [1.0f32; NB];
                        // SAFETY: as above.
                        unsafe {
                            amx::softmax_split_block_a(s, ss, rows, t_k, tkp, scale, pa, &mut sums)
                        };
                        for p in 0..dpanels {
                            // SAFETY: as above; A: the probabilities' planes (tkp/32
                            // steps); B: value panel p; C: columns p·32.. of `o`.
                            unsafe {
                                let c = o[p * NB..].as_mut_ptr().cast();
                                let b = planes(&vpack[p * v_len..], tkp * NB);
                                amx::block_32x32(
                                    planes(pa, NB * tkp),
                                    b,
                                    tkp / NB,
                                    &pairs,
                                    c,
                                    d * 4,
                                    false,
                                )
                            };
                        }
                        for (r, sum) in sums.iter().enumerate().take(rows) {
                            let inv = 1.0 / sum;
                            let dst = &mut o_h[(i0 + r) * d..(i0 + r + 1) * d];
                            for (y, &x) in dst.iter_mut().zip(&o[r * d..(r + 1) * d]) {
                                *y = x * inv;
                            }
                        }
                    }
                    // SAFETY: as `load`.
                    unsafe { TileConfig::release() };
                })
            });
            o_h
        })
        .collect();
    for (h, o_h) in per_head.iter().enumerate() {
        for (i, row) in o_h.chunks_exact(d).enumerate() {
            out[i * c + h * d..i * c + (h + 1) * d].copy_from_slice(row);
        }
    }
}
