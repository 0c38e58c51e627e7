//! `out[m, n] = x[m, k] · W[n, k]ᵀ` on AMX tiles, at f32 precision: each f32 (and
//! f16) operand is split into bf16 parts, `v = v_h + v_m + v_l` exactly
//! ([`crate::amx::split3`]), and the GEMM sums the part products that matter:
//!
//! - f32 x, f32 W: `(h,h) (h,m) (m,h) (h,l) (l,h) (m,m)` — the dropped `(m,l)`,
//!   `(l,m)`, `(l,l)` are below 2^-23 of `|x|·|w|` (each part is at most 2^-8 of the
//!   one before), about one f32 rounding per product;
//! - f16 W (two parts: f16 has 11 significant bits) and f32 x (omni's f16 runs on
//!   the CPU keep f32 activations): five products, the dropped `(l,m)` below 2^-26;
//! - f16 W and f16-valued x (the third part is zero, checked per call): all four
//!   products, exact.
//!
//! Every product of two bf16 is exact in f32 and `tdpbf16ps` adds in f32, so the
//! result is an f32 GEMM with another summation order (tested against an f64
//! reference). Non-finite inputs give non-finite outputs (NaN where the AVX-512
//! path gives ±inf: inf × 0 in the pairs with a zero part).
//!
//! Loops: x split once per call into three planes of bf16, packed per 32 rows ×
//! 32 columns (one 2 KiB A block per step), a block of `k` ([`KC`] columns) for all
//! rows in one contiguous range; the weight's panels of 32 output columns split
//! into contiguous ranges, one per thread, taken [`GROUP`] panels at a time (the
//! group's strip of `out`, over all rows of x, held as contiguous 32 × 32 blocks —
//! `out`'s own row stride, a multiple of 4 KiB, would put a tile's rows in a few
//! cache sets). For each block of `k`: the group's panels are packed (for each
//! part: `[kc/2][32][2]`, the pair layout of the B tile — rows split and transposed
//! as 32-bit pairs, [`crate::amx::pack_panel_f32`]) into L2, then for every 32 rows
//! of x the 32 × 32 register blocks of [`crate::amx::block_32x32`] run over the
//! group's panels (the row block's planes read into L2 once, the next row block's
//! prefetched a part per panel; the weights packed next prefetched a part per row
//! block). The strip goes into `out` when the group is done. Each weight is split
//! and packed once per call, whatever the number of rows.
//!
//! Tried (`examples/amx_probe.rs`): packing the next panel between the tiles' blocks
//! of the current one (a software pipeline; the tiles did not overlap it: slower),
//! the tiles storing into `out` directly (C loads and stores 16 % of the tiles'
//! time), one panel at a time over all rows (the order before this one: x's planes
//! of 1500 rows do not stay in L2 across panels; chunks of rows that did repacked
//! the weight per chunk: 1250 × 4096 → 11008 f32 299 → 238 ms, f16 260 → 205 ms,
//! variants interleaved in one process), prefetching the next row block's `out`
//! blocks (no change).

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::amx::{self, TileConfig};
use crate::panel_gemm::{check_nt, with_buf, OutPtr, Rows};

/// Output columns per weight panel and rows of x per block (two tiles each way).
const NB: usize = 32;
/// Columns of `k` per packed block (a multiple of 32). `examples/amx_probe.rs`
/// (Intel Xeon, 2 threads, 2026-12-01; separate runs, the machine's noise ±5 %),
/// ms at 1500 × 1280 → 5120 / 1250 × 4096 → 11008, f32 weights: 128 (16 panels
/// per group) 54.4 / 290, 256 (16) 52.7 / 267, 512 (8) 47.2 / 241; f16 weights,
/// variants interleaved in one process: 512 42.1 / 205, 256 (16) 43.8 / 237, and the
/// loop order before (128 columns) 47.4 / 260.
const KC: usize = 512;
/// Weight panels packed per block of `k` and passed over by every row block of x
/// (f32 weights: 8 × 96 KiB in L2): each row block's x planes are read into L2
/// once per group. Same probe, f32 1250 × 4096 → 11008, interleaved: 8 / 12 / 16
/// panels 238 / 252 / 296 ms (6 panels, a separate run: 272).
const GROUP: usize = 8;

thread_local! {
    /// x's bf16 planes, per calling thread.
    static X_PLANES: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A task's strip of `out` (a group's 32 × 32 blocks over all rows of x).
    static STRIP: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// A task's packed group of weight panels.
    static PANELS: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The part pairs `(x part, weight part)` summed for `px` parts of x and `pw` of W.
pub(crate) fn pairs(px: usize, pw: usize) -> Vec<(usize, usize)> {
    (0..px)
        .flat_map(|i| (0..pw).map(move |j| (i, j)))
        .filter(|&(i, j)| i + j <= 2)
        .collect()
}

/// Weight parts of a storage format: f16 has 11 significant bits (two bf16).
fn weight_parts(w: &Rows<'_>) -> usize {
    match w {
        Rows::F16(_) => 2,
        Rows::F32(_) | Rows::Dequant(_) => 3,
    }
}

/// The weight bytes of the next panel to pack, fetched into cache while the tiles
/// work on the current one: read in place as short rows (32 rows of `kc` values),
/// they would otherwise be fetched at memory latency during the packing, with the
/// tiles idle.
struct NextPanel {
    /// First byte of the panel's first row segment.
    base: *const u8,
    /// Bytes between rows.
    stride: usize,
    /// Cache lines per row segment.
    lines: usize,
    rows: usize,
}

impl NextPanel {
    /// Panel `p`, columns `k0..k0 + kc`, of f32 / f16 weights (None for q8_0/q4_0:
    /// their blocks are read through the dequantizing closure).
    fn new(w: Rows<'_>, n: usize, k: usize, p: usize, k0: usize, kc: usize) -> Option<Self> {
        let (base, size): (*const u8, usize) = match w {
            Rows::F32(w) => (w.as_ptr().cast(), 4),
            Rows::F16(w) => (w.as_ptr().cast(), 2),
            Rows::Dequant(_) => return None,
        };
        let cols = kc.min(k.saturating_sub(k0));
        (p * NB < n && cols > 0).then(|| NextPanel {
            base: base.wrapping_add((p * NB * k + k0) * size),
            stride: k * size,
            lines: (cols * size).div_ceil(64),
            rows: NB.min(n - p * NB),
        })
    }

    /// Prefetches part `i` of `parts` of the panel's lines.
    fn prefetch(&self, i: usize, parts: usize) {
        let total = self.rows * self.lines;
        let (a, b) = (i * total / parts, (i + 1) * total / parts);
        for l in a..b {
            let (r, c) = (l / self.lines, l % self.lines);
            amx::prefetch(self.base.wrapping_add(r * self.stride + 64 * c));
        }
    }
}

/// Packs panel `p` (weight rows `32p..`, columns `k0..k0 + kc` of `k`, zeros past
/// `n` / `k`) into `dst`: `pw` planes of `[kc/2][32][2]` bf16. Whole panels of f32 /
/// f16 weights are read in place; the others (the last rows or columns, q8_0/q4_0
/// blocks) through a zero-padded f32 copy.
#[allow(clippy::too_many_arguments)]
fn pack_panel(
    w: Rows<'_>,
    n: usize,
    k: usize,
    p: usize,
    k0: usize,
    kc: usize,
    dst: &mut [u16],
    tmp: &mut Vec<f32>,
) {
    let pw = weight_parts(&w);
    let r0 = p * NB;
    let rows = NB.min(n - r0);
    let cols = kc.min(k.saturating_sub(k0));
    let whole = rows == NB && cols == kc;
    let at = r0 * k + k0;
    match w {
        Rows::F32(w) if whole => {
            // SAFETY: AVX-512 F/BW/BF16, checked by `amx::available`.
            unsafe { amx::pack_panel_f32(&w[at..], k, kc, pw, dst) }
        }
        Rows::F16(w) if whole => {
            // SAFETY: as above.
            unsafe { amx::pack_panel_f16(&w[at..], k, kc, pw, dst) }
        }
        _ => {
            tmp.clear();
            tmp.resize(NB * kc, 0.0);
            for (r, t) in tmp.chunks_exact_mut(kc).take(rows).enumerate() {
                w.read(crate::Isa::Avx512Vnni, k, r0 + r, k0, &mut t[..cols]);
            }
            // SAFETY: as above.
            unsafe { amx::pack_panel_f32(tmp, kc, kc, pw, dst) }
        }
    }
}

/// `out[m, n] = x[m, k] · Wᵀ` for `W` `[n, k]` on AMX tiles (see the module doc).
/// Threads: rayon's current pool. Panics unless [`amx::available`].
pub(crate) fn gemm_nt(w: Rows<'_>, n: usize, k: usize, x: &[f32], m: usize, out: &mut [f32]) {
    assert!(amx::available(), "AMX is not available in this process");
    if !check_nt(&w, n, k, x, m, out) {
        return;
    }
    let kp = k.next_multiple_of(32);
    let mp = m.next_multiple_of(NB);
    let pw = weight_parts(&w);
    let third = AtomicBool::new(false);
    with_buf(&X_PLANES, 3 * mp * kp, |xp| {
        // Block of `k` kb (columns k0 = kb·KC.., kc of them), rows 32·tb.., part p,
        // columns k0 + 32·s..: 32 × 32 bf16 at 3·mp·k0 + (3·tb + p)·32·kc + s·1024
        // (a 2 KiB block per step). A block of `k`'s planes for all rows is one
        // contiguous range: row blocks a power of two apart would share L2 sets
        // (the layout before, `p·mp·kp + (tb·kp/32 + s)·1024`: the tiles ran at
        // half speed).
        xp.par_chunks_mut(3 * mp * KC)
            .enumerate()
            .for_each(|(kb, blk)| {
                let k0 = kb * KC;
                let kc = blk.len() / (3 * mp);
                blk.par_chunks_exact_mut(3 * NB * kc)
                    .enumerate()
                    .for_each(|(tb, dst)| {
                        let rows = NB.min(m - tb * NB);
                        let cols = kc.min(k - k0);
                        let any = if cols == kc {
                            // SAFETY: only called after `amx::available()`, which
                            // checked AVX-512 F, BW, BF16.
                            unsafe { amx::split_block_a(&x[tb * NB * k + k0..], k, rows, kc, dst) }
                        } else {
                            // The last block of `k` past k's end: zero-padded rows.
                            let mut pad = vec![0.0f32; rows * kc];
                            for (r, p) in pad.chunks_exact_mut(kc).enumerate() {
                                p[..cols].copy_from_slice(&x[(tb * NB + r) * k + k0..][..cols]);
                            }
                            // SAFETY: as above.
                            unsafe { amx::split_block_a(&pad, kc, rows, kc, dst) }
                        };
                        if any {
                            third.store(true, Ordering::Relaxed);
                        }
                    });
            });
        let px = if third.load(Ordering::Relaxed) { 3 } else { 2 };
        let pairs = pairs(px, pw);
        let xp = &*xp;
        let panels = n.div_ceil(NB);
        let tasks = rayon::current_num_threads().clamp(1, panels);
        let out_ptr = OutPtr(out.as_mut_ptr());
        let ntb = mp / NB;
        let panel_len = pw * KC.min(kp) * NB;
        (0..tasks).into_par_iter().for_each(|t| {
            let (q0, q1) = (t * panels / tasks, (t + 1) * panels / tasks);
            let cfg = TileConfig::new();
            // SAFETY: `amx::available()` (asserted above).
            unsafe { cfg.load() };
            let mut row = Vec::new();
            let gmax = GROUP.min(q1 - q0);
            // The group's strip of `out` as contiguous 32 × 32 blocks ([tb][panel]):
            // the tiles load and store 64-byte rows without `out`'s row stride (a
            // multiple of 4 KiB puts a tile's rows in few cache sets). Kept per
            // thread between calls (a fresh megabyte per call costs the kernel's
            // zeroing of its pages); every block is written at k0 = 0 before it is
            // read.
            with_buf(&STRIP, ntb * gmax * NB * NB, |strip| {
                let block = |i: usize| i * NB * NB..(i + 1) * NB * NB;
                with_buf(&PANELS, gmax * panel_len, |packed| {
                    for g0 in (q0..q1).step_by(GROUP) {
                        let g1 = (g0 + GROUP).min(q1);
                        for k0 in (0..kp).step_by(KC) {
                            let kc = KC.min(kp - k0);
                            let len = pw * kc * NB;
                            for p in g0..g1 {
                                let dst = &mut packed[(p - g0) * panel_len..][..len];
                                pack_panel(w, n, k, p, k0, kc, dst, &mut row);
                            }
                            // The weights packed next: this group's next block of
                            // `k`, or the next group's first.
                            let next: Vec<NextPanel> = if k0 + KC < kp {
                                let kc = KC.min(kp - k0 - KC);
                                (g0..g1)
                                    .filter_map(|p| NextPanel::new(w, n, k, p, k0 + KC, kc))
                                    .collect()
                            } else {
                                let kc = KC.min(kp);
                                (g1..(g1 + GROUP).min(q1))
                                    .filter_map(|p| NextPanel::new(w, n, k, p, 0, kc))
                                    .collect()
                            };
                            let packed = &*packed;
                            let b = |p: usize| -> [*const u8; 3] {
                                let panel = &packed[(p - g0) * panel_len..][..len];
                                std::array::from_fn(|j| panel[(j % pw) * kc * NB..].as_ptr().cast())
                            };
                            for tb in 0..ntb {
                                for nx in &next {
                                    nx.prefetch(tb, ntb);
                                }
                                let at = 3 * mp * k0 + 3 * tb * NB * kc;
                                let a: [*const u8; 3] =
                                    std::array::from_fn(|i| xp[at + i * NB * kc..].as_ptr().cast());
                                // The next row block's planes, into L2 a part per panel.
                                let a_next = xp.get(at + 3 * NB * kc..at + 6 * NB * kc);
                                for p in g0..g1 {
                                    if let Some(a_next) = a_next {
                                        let lines = a_next.len() * 2 / 64;
                                        let (g, i) = (g1 - g0, p - g0);
                                        for l in i * lines / g..(i + 1) * lines / g {
                                            amx::prefetch(a_next[l * 32..].as_ptr().cast());
                                        }
                                    }
                                    let c = &mut strip[block(tb * gmax + p - g0)];
                                    // SAFETY: the configuration is loaded on this thread;
                                    // A: row block tb's planes of this block of `k`
                                    // (kc/32 steps of 2 KiB); B: panel p's planes
                                    // (`kc/2` rows of 32 pairs); C: a 4 KiB block of
                                    // the strip, exclusively borrowed.
                                    unsafe {
                                        let c = c.as_mut_ptr().cast();
                                        amx::block_32x32(
                                            a,
                                            b(p),
                                            kc / 32,
                                            &pairs,
                                            c,
                                            4 * NB,
                                            k0 > 0,
                                        )
                                    };
                                }
                            }
                        }
                        for tb in 0..ntb {
                            let rows = NB.min(m - tb * NB);
                            for p in g0..g1 {
                                let cols = NB.min(n - p * NB);
                                let c = &strip[block(tb * gmax + p - g0)];
                                for i in 0..rows {
                                    let at = out_ptr.at((tb * NB + i) * n + p * NB);
                                    // SAFETY: row tb·32 + i < m of `out`, columns p·32..
                                    // in this task's panels (no other task writes them),
                                    // while `out` is borrowed by this call.
                                    let o = unsafe { std::slice::from_raw_parts_mut(at, cols) };
                                    o.copy_from_slice(&c[i * NB..i * NB + cols]);
                                }
                            }
                        }
                    }
                });
            });
            // SAFETY: as `load`.
            unsafe { TileConfig::release() };
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    /// The f64 product and Σ|x|·|w| per output (the error scale).
    fn reference(w: &[f32], n: usize, k: usize, x: &[f32], m: usize) -> (Vec<f64>, Vec<f64>) {
        let mut r = vec![0.0; m * n];
        let mut s = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for kk in 0..k {
                    let (a, b) = (x[i * k + kk] as f64, w[j * k + kk] as f64);
                    r[i * n + j] += a * b;
                    s[i * n + j] += (a * b).abs();
                }
            }
        }
        (r, s)
    }

    /// f32 operands: each output within 2^-20 of Σ|x·w| of the f64 product (the
    /// dropped part products are ≤ 2^-23 of each product, f32 sums of k ≤ 1100
    /// terms add ≤ ~k·2^-24 in the worst case; 2^-20 leaves room for neither to be
    /// loose, while a dropped (h,m) pair or a wrong tile would be off by ≥ 2^-9);
    /// f16 weights with f16-exact x: the same bound. Shapes cover partial blocks of
    /// rows and columns, `k` not a multiple of 32 and several blocks of `k`.
    #[test]
    fn amx_gemm_matches_the_f64_product_within_f32_rounding() {
        if !amx::available() {
            eprintln!("no AMX on this CPU: amx_gemm not exercised");
            return;
        }
        for &(m, n, k) in &[
            (1, 1, 1),
            (32, 32, 32),
            (33, 70, 1100),
            (95, 64, 64),
            (40, 33, 530),
            (64, 96, 2048),
        ] {
            let mut g = lcg((m * 1000 + n * 10 + k) as u64);
            let x: Vec<f32> = (0..m * k).map(|_| g()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| g() * 0.1).collect();
            let (r, s) = reference(&w, n, k, &x, m);
            let mut out = vec![f32::NAN; m * n];
            gemm_nt(Rows::F32(&w), n, k, &x, m, &mut out);
            for i in 0..m * n {
                assert!(
                    ((out[i] as f64) - r[i]).abs() <= s[i] * 2f64.powi(-20) + 1e-30,
                    "f32 m{m} n{n} k{k} [{i}]: {} vs {}",
                    out[i],
                    r[i]
                );
            }
            // f16 weights, x rounded to f16 (the third parts are zero: four products, exact).
            let wh: Vec<u16> = w
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            let wf: Vec<f32> = wh
                .iter()
                .map(|&b| half::f16::from_bits(b).to_f32())
                .collect();
            let xf: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            let (r, s) = reference(&wf, n, k, &xf, m);
            gemm_nt(Rows::F16(&wh), n, k, &xf, m, &mut out);
            for i in 0..m * n {
                assert!(
                    ((out[i] as f64) - r[i]).abs() <= s[i] * 2f64.powi(-20) + 1e-30,
                    "f16 m{m} n{n} k{k} [{i}]: {} vs {}",
                    out[i],
                    r[i]
                );
            }
        }
    }

    /// A long input (700 rows: 22 row blocks, the last partial), several groups of
    /// panels per thread (560 outputs: 18 panels, the last half full) and three
    /// blocks of `k` (1100: 512 + 512 + 76 zero-padded to 96) — the loops the small
    /// shapes above do not reach — match the f64 product within f32 rounding, f32
    /// and f16 weights (a panel packed into the wrong slot of its group, a row
    /// block's planes read at another block's offset, or a block of `k` dropped
    /// would not).
    #[test]
    fn long_inputs_over_groups_and_blocks_of_k_match_the_f64_product() {
        if !amx::available() {
            eprintln!("no AMX on this CPU: amx_gemm not exercised");
            return;
        }
        let (m, n, k) = (700usize, 560usize, 1100usize);
        let mut g = lcg(11);
        let x: Vec<f32> = (0..m * k).map(|_| g()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| g() * 0.1).collect();
        for f in [crate::Format::F32, crate::Format::F16] {
            let wm = crate::WeightMatrix::from_f32(f, n, k, &w);
            let (r, s) = reference(&wm.dequantize(), n, k, &x, m);
            let mut out = vec![f32::NAN; m * n];
            wm.matmul_amx(&x, m, &mut out);
            for i in 0..m * n {
                assert!(
                    ((out[i] as f64) - r[i]).abs() <= s[i] * 2f64.powi(-20) + 1e-30,
                    "{f:?} [{}, {}]: {} vs {}",
                    i / n,
                    i % n,
                    out[i],
                    r[i]
                );
            }
        }
    }

    /// A NaN in x makes its row of `out` NaN, an inf in W its column non-finite,
    /// and nothing else changes.
    #[test]
    fn non_finite_inputs_reach_exactly_their_row_and_column() {
        if !amx::available() {
            eprintln!("no AMX on this CPU: amx_gemm not exercised");
            return;
        }
        let (m, n, k) = (40, 40, 64);
        let mut g = lcg(7);
        let mut x: Vec<f32> = (0..m * k).map(|_| g()).collect();
        let mut w: Vec<f32> = (0..n * k).map(|_| g()).collect();
        x[5 * k + 3] = f32::NAN;
        w[9 * k + 60] = f32::INFINITY;
        let mut out = vec![0.0; m * n];
        gemm_nt(Rows::F32(&w), n, k, &x, m, &mut out);
        for i in 0..m {
            for j in 0..n {
                let v = out[i * n + j];
                assert_eq!(v.is_finite(), i != 5 && j != 9, "out[{i}][{j}] = {v}");
            }
        }
    }

    /// Rows read through the dequantizing closure (q8_0 / q4_0 weights) go through
    /// the zero-padded copy: the same parts, the same sums, bit for bit, as the same
    /// values read in place.
    #[test]
    fn rows_through_the_closure_equal_rows_in_place() {
        if !amx::available() {
            eprintln!("no AMX on this CPU: amx_gemm not exercised");
            return;
        }
        let (m, n, k) = (45, 70, 1088);
        let mut g = lcg(11);
        let x: Vec<f32> = (0..m * k).map(|_| g()).collect();
        let w: Vec<f32> = (0..n * k).map(|_| g()).collect();
        let row = |r: usize, k0: usize, out: &mut [f32]| {
            out.copy_from_slice(&w[r * k + k0..][..out.len()])
        };
        let (mut a, mut b) = (vec![0.0; m * n], vec![0.0; m * n]);
        gemm_nt(Rows::F32(&w), n, k, &x, m, &mut a);
        gemm_nt(Rows::Dequant(&row), n, k, &x, m, &mut b);
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
    }

    #[test]
    fn part_pairs_keep_the_products_above_2_pow_minus_16() {
        assert_eq!(
            pairs(3, 3),
            vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]
        );
        assert_eq!(pairs(2, 2), vec![(0, 0), (0, 1), (1, 0), (1, 1)]);
        assert_eq!(pairs(3, 2), vec![(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]);
    }
}
