//! `out[m, n] = x[m, k] · W[n, k]ᵀ` for long inputs (prompts, Whisper's 1500
//! frames) with f32 or f16 weights stored `[out, in]` (PyTorch's layout): omni's own
//! GEMM in BLIS's loop order (Van Zee & van de Geijn, "BLIS: A Framework for Rapidly
//! Instantiating BLAS Functionality", 2015; the layout of `bli_gemm_ker_var2`):
//!
//! - x is packed once into micro-panels of `MR` rows (`[kc][MR]` per block of
//!   [`KC`] columns of `k`, zero-padded rows);
//! - the weight's panels of [`NR`] = 32 output columns are split into one
//!   contiguous range per thread (disjoint columns of `out`); a task takes its
//!   panels a group of [`GROUP_BYTES`] at a time and, for each block of `KC`
//!   columns, packs the group (`[kc][32]` per panel: a transpose, and for f16
//!   weights the conversion to f32 in the same pass, so an f16 GEMM reads its 2-byte
//!   weights once and never holds an f32 copy of the matrix). The group's strip of
//!   `out` (340 rows × 256 columns: 340 KiB) stays in L2 over all blocks of `k`
//!   instead of travelling to L3 and back per block;
//! - for each micro-panel of x (in L1 while it is used) and each panel of the
//!   group (64-byte aligned): the register-tile kernel (`MR × 32` accumulators,
//!   one broadcast of x and two (AVX-512) weight vectors per step of `k`) adds
//!   into `out`.
//!
//! The weight is read from memory once per call. Kernels: AVX-512 `MR = 14` (28 zmm
//! accumulators), AVX2 `MR = 3` (12 ymm), portable `MR = 4` (x86.rs /
//! portable.rs). Against the `gemm` crate (the f32 GEMM burn-flex calls), which
//! packs both operands per call in its own layout, measured in
//! `examples/gemm_probe.rs`: faster up to a few hundred rows of x, slower at
//! Whisper's 1500 (see `PANEL_GEMM_MAX_ROWS`).

use std::cell::RefCell;

use rayon::prelude::*;

use crate::Isa;

/// Output columns per packed weight panel (two AVX-512 / four AVX2 vectors).
pub(crate) const NR: usize = 32;
/// Columns of `k` per packed block (a panel of 512 × 32 f32 is 64 KiB): fewer
/// passes of the tiles over `out`. `gemm_probe`, m = 340, 2 threads, 2048 → 8192 /
/// 8192 → 2048: KC 256 359–378 / 327–349 GFLOP/s, KC 512 367–390 / 337–369.
pub(crate) const KC: usize = 512;

/// Bytes of weight panels packed per group (8 panels of 512 × 32 f32): the group,
/// its strip of `out` and x's block stay in L2 (2 MiB per core on the Xeon).
/// Single-thread m = 340, 2048 → 8192 / 8192 → 2048 (`gemm_probe`, 2026-12-01,
/// KC 256): 1 MiB groups with the blocks of `k` outermost 164–179 GFLOP/s, 256 KiB
/// groups outermost 170–181 (the `gemm` crate: 167–168); with 64-byte-aligned
/// panels and KC 512: 184–191 / 179–188.
const GROUP_BYTES: usize = 512 << 10;

/// Weight panels per group of `kc` columns.
fn group_panels(kc: usize) -> usize {
    (GROUP_BYTES / (NR * kc * 4)).max(1)
}

/// Fills `out` with row `r`'s weights in columns `k0..k0 + out.len()` as f32.
pub(crate) type RowRange<'a> = &'a (dyn Fn(usize, usize, &mut [f32]) + Sync);

/// The weight's storage.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    F32(&'a [f32]),
    /// f16 bits.
    F16(&'a [u16]),
    /// Blocks (q8_0 / q4_0) dequantized to f32 while they are packed, rows `n`.
    Dequant(RowRange<'a>),
}

/// Asserts the shapes of `out[m, n] = x[m, k] · Wᵀ` (panics on a mismatch) and does
/// the empty products (`m` or `n` zero: nothing; `k` zero: zeros). Returns whether a
/// product is left to compute.
pub(crate) fn check_nt(
    w: &Rows<'_>,
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) -> bool {
    let len = match w {
        Rows::F32(w) => w.len(),
        Rows::F16(w) => w.len(),
        Rows::Dequant(_) => n * k,
    };
    assert!(len == n * k && x.len() == m * k && out.len() == m * n);
    if k == 0 {
        out.fill(0.0);
    }
    m > 0 && n > 0 && k > 0
}

impl Rows<'_> {
    /// Row `r`'s weights in columns `k0..k0 + out.len()` as f32 (`k` columns per row;
    /// f16 converted with `isa`).
    pub(crate) fn read(&self, isa: Isa, k: usize, r: usize, k0: usize, out: &mut [f32]) {
        let s = r * k + k0;
        match self {
            Rows::F32(w) => out.copy_from_slice(&w[s..s + out.len()]),
            Rows::F16(w) => crate::f16_to_f32(isa, &w[s..s + out.len()], out),
            Rows::Dequant(row) => row(r, k0, out),
        }
    }
}

thread_local! {
    /// x packed into micro-panels, per calling thread.
    static PACKED_X: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// A task's packed group of weight panels (one block of `KC` columns).
    static PANELS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Rows of f16 weights converted to f32 before their transpose.
    static ROWS_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the thread's buffer `key` grown to `len` values, or with a fresh
/// buffer if this thread's is in use (a rayon worker that steals another GEMM while
/// it waits inside one). The slice starts on a 64-byte boundary: the tiles load
/// whole 64-byte vectors from it, and a vector that straddles two cache lines costs
/// two loads (`gemm_probe`, m = 340, 2048 → 8192, 2 threads: 16-byte-aligned
/// panels 333–354 GFLOP/s, 64-byte-aligned 359–378).
pub(crate) fn with_buf<T: Copy + Default, R>(
    key: &'static std::thread::LocalKey<RefCell<Vec<T>>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let pad = 64 / std::mem::size_of::<T>();
    let aligned = |buf: &mut Vec<T>| -> std::ops::Range<usize> {
        if buf.len() < len + pad {
            buf.resize(len + pad, T::default());
        }
        let off = buf.as_ptr().align_offset(64).min(pad);
        off..off + len
    };
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let r = aligned(&mut buf);
            f(&mut buf[r])
        }
        Err(_) => {
            let mut buf = Vec::new();
            let r = aligned(&mut buf);
            f(&mut buf[r])
        }
    })
}

/// Rows of x per register tile of `isa`'s kernel.
pub(crate) fn mr(isa: Isa) -> usize {
    match isa {
        Isa::Avx512Vnni => 14,
        Isa::Avx2 => 3,
        Isa::Portable => crate::portable::GEMM_MR,
    }
}

/// `c[i·ldc + j] (+)= Σ_kk a[kk·MR + i] · b[kk·32 + j]` for `i < MR`, `j < 32`:
/// `isa`'s register-tile kernel (`accumulate`: add to `c`, else overwrite).
///
/// # Safety
/// `c + i·ldc + j` must be valid for reads and writes for `i < MR`, `j < 32`, and
/// not accessed by anyone else during the call; `isa` must be available.
pub(crate) unsafe fn tile_raw(
    isa: Isa,
    a: &[f32],
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller's contract (`isa` available: AVX-512 F was detected; the
        // tile of `c` is valid and exclusive).
        Isa::Avx512Vnni => unsafe { crate::x86::gemm_tile_avx512(a, b, c, ldc, accumulate) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above (AVX2, FMA, F16C).
        Isa::Avx2 => unsafe { crate::x86::gemm_tile_avx2(a, b, c, ldc, accumulate) },
        _ => {
            for (i, acc) in crate::portable::gemm_tile(a, b).iter().enumerate() {
                // SAFETY: row i < MR of the tile: 32 f32 valid and exclusive (the
                // contract).
                let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), NR) };
                for (o, &v) in row.iter_mut().zip(acc) {
                    *o = if accumulate { *o + v } else { v };
                }
            }
        }
    }
}

/// `dst[kk·32 + j] = src[j·stride + kk]` for `kk < kc`, `j < rows` (zeros for
/// `rows ≤ j < 32`): full panels in 16 × 16 (AVX-512) or 8 × 8 (AVX2) register
/// transposes. The AVX2 one: `llm_probe` with `OMNI_KERNELS=avx2`, Intel Xeon,
/// 2026-12-02, old/new binaries interleaved, 1B prompt f32 4.20–4.54 → 3.60–3.77 s,
/// f16 (converted while packing) 4.35–4.60 → 3.46–3.85 s (the scalar packing loop had
/// been 11 % of the prompt's samples, against 50 % for the register tile).
pub(crate) fn transpose_panel(
    isa: Isa,
    src: &[f32],
    stride: usize,
    rows: usize,
    kc: usize,
    dst: &mut [f32],
) {
    debug_assert_eq!(dst.len(), kc * NR);
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512Vnni && rows == NR && kc.is_multiple_of(16) {
        // SAFETY: as in `tile`: AVX-512 F was detected.
        return unsafe { crate::x86::transpose_panel_avx512(src, stride, kc, dst) };
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx2 && rows == NR && kc.is_multiple_of(8) {
        // SAFETY: as in `tile`: AVX2, FMA and F16C were detected.
        return unsafe { crate::x86::transpose_panel_avx2(src, stride, kc, dst) };
    }
    let _ = isa;
    for (j, col) in (0..NR).map(|j| (j, j < rows)) {
        if col {
            let s = &src[j * stride..j * stride + kc];
            for (kk, &v) in s.iter().enumerate() {
                dst[kk * NR + j] = v;
            }
        } else {
            for kk in 0..kc {
                dst[kk * NR + j] = 0.0;
            }
        }
    }
}

/// Packs panel `p` (weight rows `32p..32p + 32`, columns `k0..k0 + kc`) into `dst`.
#[allow(clippy::too_many_arguments)]
fn pack_w(
    isa: Isa,
    w: Rows<'_>,
    n: usize,
    k: usize,
    p: usize,
    k0: usize,
    kc: usize,
    dst: &mut [f32],
) {
    let r0 = p * NR;
    let rows = NR.min(n - r0);
    match w {
        Rows::F32(w) => {
            let end = (r0 + rows - 1) * k + k0 + kc;
            transpose_panel(isa, &w[r0 * k + k0..end], k, rows, kc, dst)
        }
        #[cfg(target_arch = "x86_64")]
        Rows::F16(w) if isa == Isa::Avx512Vnni && rows == NR && kc.is_multiple_of(16) => {
            let end = (r0 + rows - 1) * k + k0 + kc;
            // SAFETY: as in `tile_raw`: `isa` is available (AVX-512 F, F16C).
            unsafe { crate::x86::transpose_panel_f16_avx512(&w[r0 * k + k0..end], k, kc, dst) }
        }
        #[cfg(target_arch = "x86_64")]
        Rows::F16(w) if isa == Isa::Avx2 && rows == NR && kc.is_multiple_of(8) => {
            let end = (r0 + rows - 1) * k + k0 + kc;
            // SAFETY: as in `tile_raw`: `isa` is available (AVX2, F16C).
            unsafe { crate::x86::transpose_panel_f16_avx2(&w[r0 * k + k0..end], k, kc, dst) }
        }
        Rows::F16(_) | Rows::Dequant(_) => with_buf(&ROWS_F32, rows * kc, |tmp| {
            for (j, t) in tmp.chunks_exact_mut(kc).enumerate() {
                w.read(isa, k, r0 + j, k0, t);
            }
            transpose_panel(isa, tmp, kc, rows, kc, dst)
        }),
    }
}

/// Packs rows `0..rows` of `x` (row stride `k`), columns `k0..k0 + kc`, into
/// micro-panels of `mr` rows: panel `q`'s `[kc][mr]` at `q·kc·mr` (zeros past `rows`).
fn pack_x(x: &[f32], k: usize, rows: usize, k0: usize, kc: usize, mr: usize, dst: &mut [f32]) {
    for (q, panel) in dst.chunks_exact_mut(kc * mr).enumerate() {
        for i in 0..mr {
            let r = q * mr + i;
            if r < rows {
                let s = &x[r * k + k0..r * k + k0 + kc];
                for (kk, &v) in s.iter().enumerate() {
                    panel[kk * mr + i] = v;
                }
            } else {
                for kk in 0..kc {
                    panel[kk * mr + i] = 0.0;
                }
            }
        }
    }
}

/// `out`'s base pointer, shared by the column tasks of [`gemm_nt`] (each writes
/// only its own columns).
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub(crate) *mut f32);
// SAFETY: the pointer is only dereferenced inside `gemm_nt`'s parallel region, while
// `out` is mutably borrowed by it, and the tasks write disjoint columns.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The address `off` values past the base (computed without dereferencing).
    pub(crate) fn at(self, off: usize) -> *mut f32 {
        self.0.wrapping_add(off)
    }
}

/// One register tile of `out`: rows `r0..r0 + rows`, columns `c0..c0 + cols`
/// (`rows ≤ MR`, `cols ≤ NR`).
struct Tile {
    r0: usize,
    c0: usize,
    rows: usize,
    cols: usize,
}

impl Tile {
    /// Adds (or with `accumulate` false, writes) `a · b` into the tile of `out`
    /// (row stride `n`): in place when it is whole, else through `scratch`.
    ///
    /// # Safety
    /// The tile's elements of `out` must be valid and written by no one else
    /// during the call; `isa` must be available.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        &self,
        isa: Isa,
        a: &[f32],
        b: &[f32],
        out: OutPtr,
        n: usize,
        accumulate: bool,
        scratch: &mut [f32],
    ) {
        let mr = scratch.len() / NR;
        let at = |i: usize| out.at((self.r0 + i) * n + self.c0);
        if self.rows == mr && self.cols == NR {
            // SAFETY: the whole tile: the caller's contract.
            return unsafe { tile_raw(isa, a, b, at(0), n, accumulate) };
        }
        for i in 0..self.rows {
            // SAFETY: row i of the tile, `cols` values: the caller's contract.
            let o = unsafe { std::slice::from_raw_parts(at(i), self.cols) };
            scratch[i * NR..i * NR + self.cols].copy_from_slice(o);
        }
        // SAFETY: `scratch` holds mr rows of NR, exclusively borrowed.
        unsafe { tile_raw(isa, a, b, scratch.as_mut_ptr(), NR, accumulate) };
        for i in 0..self.rows {
            // SAFETY: as above.
            let o = unsafe { std::slice::from_raw_parts_mut(at(i), self.cols) };
            o.copy_from_slice(&scratch[i * NR..i * NR + self.cols]);
        }
    }
}

/// `out[m, n] = x[m, k] · Wᵀ` for `W` `[n, k]` (see the module doc). Threads:
/// rayon's current pool. Panics if `isa` is not available.
pub(crate) fn gemm_nt(
    isa: Isa,
    w: Rows<'_>,
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) {
    assert!(
        isa.is_available(),
        "kernels {isa:?} are not available on this CPU"
    );
    if !check_nt(&w, n, k, x, m, out) {
        return;
    }
    let mr = mr(isa);
    let padded = m.div_ceil(mr) * mr;
    let panels = n.div_ceil(NR);
    let blocks: Vec<(usize, usize)> = (0..k).step_by(KC).map(|k0| (k0, KC.min(k - k0))).collect();
    // One task per thread, each a contiguous range of weight panels (disjoint
    // columns of `out`): the weight is read and packed once in all.
    let tasks = rayon::current_num_threads().clamp(1, panels);
    let out_ptr = OutPtr(out.as_mut_ptr());
    with_buf(&PACKED_X, padded * k, |px| {
        // x in micro-panels, block after block of `KC` columns (block `b` at
        // `padded·k0`).
        let mut rest = &mut px[..];
        let mut parts = Vec::with_capacity(blocks.len());
        for &(k0, kc) in &blocks {
            let (part, tail) = rest.split_at_mut(padded * kc);
            parts.push((k0, kc, part));
            rest = tail;
        }
        parts
            .par_iter_mut()
            .for_each(|(k0, kc, part)| pack_x(x, k, m, *k0, *kc, mr, part));
        let px = &*px;
        (0..tasks).into_par_iter().for_each(|t| {
            let (p0, p1) = (t * panels / tasks, (t + 1) * panels / tasks);
            let gp = group_panels(KC.min(k));
            with_buf(&PANELS, gp.min(p1 - p0) * NR * KC.min(k), |packed| {
                let mut scratch = vec![0.0f32; mr * NR];
                for g0 in (p0..p1).step_by(gp) {
                    let g1 = (g0 + gp).min(p1);
                    for &(k0, kc) in &blocks {
                        let xb = &px[padded * k0..padded * (k0 + kc)];
                        for (p, dst) in (g0..g1).zip(packed.chunks_exact_mut(NR * kc)) {
                            pack_w(isa, w, n, k, p, k0, kc, dst);
                        }
                        for q in 0..padded / mr {
                            let a = &xb[q * kc * mr..(q + 1) * kc * mr];
                            for p in g0..g1 {
                                let b = &packed[(p - g0) * NR * kc..(p - g0 + 1) * NR * kc];
                                let tile = Tile {
                                    r0: q * mr,
                                    c0: p * NR,
                                    rows: mr.min(m - q * mr),
                                    cols: NR.min(n - p * NR),
                                };
                                // SAFETY: the tile's rows (< m) and columns (in this
                                // task's panels p0..p1, which no other task writes) of
                                // `out`, which this call borrows for the whole
                                // parallel region.
                                unsafe { tile.run(isa, a, b, out_ptr, n, k0 > 0, &mut scratch) };
                            }
                        }
                    }
                }
            })
        });
    })
}
