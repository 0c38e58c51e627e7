//! Direct 1-D convolutions on host f32 buffers (batch 1, channels first `[C, T]`):
//! [`Conv1d`] mirrors `torch.nn.functional.conv1d` (stride 1, dilation, zero padding)
//! and [`ConvTranspose1d`] mirrors `torch.nn.functional.conv_transpose1d` (stride,
//! padding, no output padding, no dilation), as HiFi-GAN uses them.
//!
//! No im2col: a tile of `OB` output channels × `TW` output samples is accumulated in
//! registers over every (input channel, tap) pair, reading the zero-padded input rows
//! directly (`y[o, t] += w[o, i, j] · x[i, t + j·d]`). The weights are packed once, at
//! construction, as `[c_out / OB][c_in][k][OB]`, so that a tile reads them sequentially.
//! Tiles are spread over rayon's threads by groups of `OB` output channels and by time
//! ranges.
//!
//! On AVX-512, layers with at least 32 output channels run a second, wide tile instead
//! (`x86::conv_tile_wide_avx512`: 14 output samples × 32 output channels, weights
//! repacked on first use as 64-byte-aligned lanes of 32 channels), and layers of 16
//! output channels its 28 × 16 variant: the samples of x are broadcast (4-byte loads)
//! and the weights loaded aligned, where the 4 × 96 tile loads 64-byte vectors of x at
//! every tap offset, most of them split across two cache lines. The tiles transpose
//! their accumulators in registers (two 16 × 16 transposes) so that each output row is
//! written contiguously. The padded input is a per-thread buffer reused between calls.
//! `examples/conv_probe.rs` (Intel Xeon, 2 threads, 2026-12-01), the ResBlocks of the
//! five stages, 4 × 96 → wide: 256 ch 27.9 → 21.2–23.9 ms, 128 ch 26.4 → 21.2–22.6,
//! 64 ch 34.6 → 24.9–26.4, 32 ch 17.2 → 15.8–16.3, 16 ch 12.2–12.7 → 11.0–11.8
//! (28 × 16), all 118 → ≈ 100 ms; the vocoder row of `omni_bench`, interleaved runs:
//! 131–140 ms (4 × 96) → 113–115 (wide tiles) → 102–106 (+ the reused input buffer and
//! ResBlocks without copies, `omni-core`'s `vocoder::host`).
//! On AVX2 (no AVX-512), layers of 16 output channels or more run the same kind of
//! wide tile with 16 channels × 6 samples in 12 ymm accumulators
//! (`x86::conv_tile_wide_avx2`): the vocoder row of `omni_bench` with
//! `OMNI_KERNELS=avx2`, interleaved runs, Intel Xeon, 2026-12-02: 201–208 ms (4 × 16
//! tiles) → 177–182 ms.

//! The transposed convolution is split into its `stride` polyphase components: output
//! sample `t` with `(t + padding) mod stride = r` only sees the taps `j ≡ r (mod stride)`,
//! so each phase is a stride-1 convolution of the input with `ceil(k / stride)` taps
//! (reversed), whose outputs land every `stride` samples.
//!
//! A leaky ReLU of the input (`F.leaky_relu(x, slope)`) is applied while the padded copy
//! of the input is made, and a residual can be added while storing, so HiFi-GAN's
//! `x = conv2(lrelu(conv1(lrelu(x)))) + x` needs no separate passes.

use std::cell::RefCell;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::Isa;

/// Output channels per tile.
pub(crate) const OB: usize = 4;
/// Output samples per tile (six 16-lane vectors on AVX-512: 24 accumulators; six
/// tiles of 16 on AVX2).
pub(crate) const TW: usize = 96;
/// Output samples per tile of the wide AVX-512 kernel (`x86::conv_tile_wide_avx512`:
/// 14 samples × 32 output channels).
pub(crate) const TM: usize = 14;
/// Output channels per tile of the wide kernel, which runs for `c_out ≥ WIDE` (and
/// its 16-channel variant, 2·`TM` samples × 16 channels, for `c_out ≤ 16`).
const WIDE: usize = 32;
/// Output samples per tile of the wide AVX2 kernel (`x86::conv_tile_wide_avx2`: 6
/// samples × 16 output channels, for every layer of 16 output channels or more).
pub(crate) const TM_AVX2: usize = 6;

/// `N` weights (one tap of one input channel for `N` output channels), 64-byte
/// aligned: aligned AVX-512 loads.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Lanes<const N: usize>(pub(crate) [f32; N]);

/// Weights of a stride-1 convolution packed for the tile kernels.
#[derive(Debug, Clone)]
struct Packed {
    c_out: usize,
    c_in: usize,
    k: usize,
    /// `[ceil(c_out / OB)][c_in][k][OB]`, zero for the channels past `c_out`.
    w: Vec<f32>,
    /// For the wide AVX-512 tiles, packed on their first use: `[ceil(c_out / N)][c_in][k]`
    /// lanes of N = 32 (or 16) output channels (zero past `c_out`).
    wide: OnceLock<Vec<Lanes<32>>>,
    wide16: OnceLock<Vec<Lanes<16>>>,
}

impl Packed {
    /// Packs `tap(o, i, j)` for `o < c_out`, `i < c_in`, `j < k`.
    fn new(c_out: usize, c_in: usize, k: usize, tap: impl Fn(usize, usize, usize) -> f32) -> Self {
        let nb = c_out.div_ceil(OB);
        let mut w = vec![0f32; nb * c_in * k * OB];
        for (b, blk) in w.chunks_exact_mut(c_in * k * OB).enumerate() {
            for i in 0..c_in {
                for j in 0..k {
                    for l in 0..OB {
                        let o = b * OB + l;
                        if o < c_out {
                            blk[(i * k + j) * OB + l] = tap(o, i, j);
                        }
                    }
                }
            }
        }
        Packed {
            c_out,
            c_in,
            k,
            w,
            wide: OnceLock::new(),
            wide16: OnceLock::new(),
        }
    }

    fn block(&self, b: usize) -> &[f32] {
        let n = self.c_in * self.k * OB;
        &self.w[b * n..(b + 1) * n]
    }

    /// Group `g`'s lanes (output channels `N·g..N·g + N`) for a wide tile, from `cell`
    /// (packed on first use).
    fn lanes<'a, const N: usize>(
        &'a self,
        cell: &'a OnceLock<Vec<Lanes<N>>>,
        g: usize,
    ) -> &'a [Lanes<N>] {
        let (c_in, k) = (self.c_in, self.k);
        let lanes = cell.get_or_init(|| {
            let mut v = vec![Lanes([0.0; N]); self.c_out.div_ceil(N) * c_in * k];
            for (n, lane) in v.iter_mut().enumerate() {
                let (g, ij) = (n / (c_in * k), n % (c_in * k));
                for (l, dst) in lane.0.iter_mut().enumerate() {
                    let o = g * N + l;
                    if o < self.c_out {
                        // Output channel o sits in `w` as lane o % OB of block o / OB.
                        *dst = self.w[(o / OB * c_in * k + ij) * OB + o % OB];
                    }
                }
            }
            v
        });
        &lanes[g * c_in * k..(g + 1) * c_in * k]
    }
}

thread_local! {
    /// The calling thread's padded input, kept between calls: a fresh zeroed buffer
    /// per convolution (1.6 MB at every one of HiFi-GAN's last three stages) cost its
    /// page faults and zeroing each time.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the zero-padded input of a stride-1 convolution: `c_in` rows of `lp`
/// samples, `left` zeros, the input (through the optional leaky ReLU), zeros up to
/// `lp`. The buffer is the thread's own, reused (a fresh one when the thread's is
/// in use: a rayon worker that runs another convolution while it waits in one).
fn with_padded_input<R>(
    x: &[f32],
    c_in: usize,
    t_in: usize,
    left: usize,
    lp: usize,
    slope: Option<f32>,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    assert_eq!(x.len(), c_in * t_in, "input is not [c_in, t_in]");
    let fill = |xp: &mut Vec<f32>| {
        xp.resize(c_in * lp, 0.0);
        let work = |(row, src): (&mut [f32], &[f32])| {
            let (pad_l, rest) = row.split_at_mut(left);
            let (dst, pad_r) = rest.split_at_mut(t_in);
            pad_l.fill(0.0);
            pad_r.fill(0.0);
            match slope {
                // F.leaky_relu: x if x >= 0 else slope · x.
                Some(a) => dst
                    .iter_mut()
                    .zip(src)
                    .for_each(|(d, &v)| *d = if v >= 0.0 { v } else { v * a }),
                None => dst.copy_from_slice(src),
            }
        };
        let xp = &mut xp[..c_in * lp];
        if c_in * t_in >= 1 << 15 {
            xp.par_chunks_mut(lp).zip(x.par_chunks(t_in)).for_each(work);
        } else {
            xp.chunks_mut(lp).zip(x.chunks(t_in)).for_each(work);
        }
    };
    PADDED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut xp) => {
            fill(&mut xp);
            f(&xp[..c_in * lp])
        }
        Err(_) => {
            let mut xp = Vec::new();
            fill(&mut xp);
            f(&xp)
        }
    })
}

/// One tile: `acc[l][u] = Σ_i Σ_j w[i][j][l] · xp[i · lp + m0 + u + j·d]`.
fn tile(
    isa: Isa,
    xp: &[f32],
    lp: usize,
    p: &Packed,
    w: &[f32],
    d: usize,
    m0: usize,
) -> [[f32; TW]; OB] {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: every public entry asserts `isa.is_available()`: AVX2 and FMA were
        // detected at run time.
        Isa::Avx2 => unsafe { crate::x86::conv_tile(xp, lp, p.c_in, p.k, d, w, m0) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above; `Avx512Vnni` is only available where AVX-512 F was
        // detected too.
        Isa::Avx512Vnni => unsafe { crate::x86::conv_tile_avx512(xp, lp, p.c_in, p.k, d, w, m0) },
        _ => tile_portable(xp, lp, p.c_in, p.k, d, w, m0),
    }
}

/// Scalar reference of [`tile`] (plain Rust; the compiler vectorizes what it can).
pub(crate) fn tile_portable(
    xp: &[f32],
    lp: usize,
    c_in: usize,
    k: usize,
    d: usize,
    w: &[f32],
    m0: usize,
) -> [[f32; TW]; OB] {
    let mut acc = [[0f32; TW]; OB];
    let span = TW + d * (k - 1);
    for i in 0..c_in {
        let row = &xp[i * lp + m0..i * lp + m0 + span];
        for j in 0..k {
            let xs = &row[j * d..j * d + TW];
            let wj = &w[(i * k + j) * OB..(i * k + j + 1) * OB];
            for (a, &wv) in acc.iter_mut().zip(wj) {
                for (s, &xv) in a.iter_mut().zip(xs) {
                    *s += wv * xv;
                }
            }
        }
    }
    acc
}

/// One convolution pass over a padded input: one or more stride-1 phases, phase `r`'s
/// position `m` landing on output sample `m · stride + offset_r` (kept if in `0..t_out`).
struct Pass<'a> {
    phases: &'a [Packed],
    /// `offset_r = r − padding` for a transposed convolution, 0 for a plain one.
    offset0: isize,
    stride: usize,
    dilation: usize,
    /// Positions `0..n_m` of every phase are computed.
    n_m: usize,
    xp: &'a [f32],
    lp: usize,
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
}

/// `ceil(a / b)` for a possibly negative `a` and `b > 0`.
fn div_ceil_i(a: isize, b: usize) -> isize {
    a.div_euclid(b as isize) + (a.rem_euclid(b as isize) != 0) as isize
}

/// The tasks of a pass: (group `b` of `ob` output channels, first output sample
/// `t_lo`, the group's rows of `out` over the task's samples). Enough tasks of
/// whole tiles (`tile` positions) to balance rayon's threads.
type Task<'o> = (usize, usize, Vec<&'o mut [f32]>);

fn tasks<'o>(out: &'o mut [f32], t_out: usize, ob: usize, step: usize) -> Vec<Task<'o>> {
    let groups = (out.len() / t_out).div_ceil(ob);
    let want = 8 * rayon::current_num_threads();
    let chunks = want.div_ceil(groups).max(1);
    let tt = t_out.div_ceil(chunks).max(8 * step).div_ceil(step) * step;
    let mut tasks = Vec::with_capacity(groups * t_out.div_ceil(tt));
    for (b, grp) in out.chunks_mut(ob * t_out).enumerate() {
        let mut rows: Vec<_> = grp.chunks_mut(t_out).map(|r| r.chunks_mut(tt)).collect();
        for c in 0..t_out.div_ceil(tt) {
            let parts: Vec<&mut [f32]> = rows.iter_mut().filter_map(|it| it.next()).collect();
            tasks.push((b, c * tt, parts));
        }
    }
    tasks
}

/// The positions `m_lo..m_hi` of phase `r` whose outputs land in `t_lo..t_hi`, and
/// that phase's offset.
fn phase_range(pass: &Pass, r: usize, t_lo: usize, t_hi: usize) -> (usize, usize, isize) {
    let off = pass.offset0 + r as isize;
    let m_lo = div_ceil_i(t_lo as isize - off, pass.stride).max(0) as usize;
    let m_hi = (div_ceil_i(t_hi as isize - off, pass.stride).max(0) as usize).min(pass.n_m);
    (m_lo, m_hi, off)
}

/// Runs `pass` into `out` (`[c_out, t_out]`): `bias + Σ taps (+ residual)`. Tasks are
/// (group of `OB` output channels, range of output samples), spread over rayon's threads;
/// each owns its slices of the output rows. On AVX-512 with 16 or at least 32 output
/// channels, and on AVX2 with at least 16, a wide tile runs instead ([`run_wide`]).
fn run(isa: Isa, pass: &Pass, c_out: usize, t_out: usize, out: &mut [f32]) {
    if t_out == 0 || c_out == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if (isa == Isa::Avx512Vnni && (c_out >= WIDE || c_out == WIDE / 2))
        || (isa == Isa::Avx2 && c_out >= WIDE / 2)
    {
        return run_wide(isa, pass, c_out, t_out, out);
    }
    let tasks = tasks(out, t_out, OB, TW * pass.stride);
    tasks.into_par_iter().for_each(|(b, t_lo, mut parts)| {
        let t_hi = t_lo + parts[0].len();
        for (r, p) in pass.phases.iter().enumerate() {
            let w = p.block(b);
            let (m_lo, m_hi, off) = phase_range(pass, r, t_lo, t_hi);
            for m0 in (m_lo..m_hi).step_by(TW) {
                let acc = tile(isa, pass.xp, pass.lp, p, w, pass.dilation, m0);
                let n = TW.min(m_hi - m0);
                for (l, (a, row)) in acc.iter().zip(parts.iter_mut()).enumerate() {
                    let o = b * OB + l;
                    let bias = pass.bias[o];
                    if pass.stride == 1 && off == 0 {
                        // Contiguous: t = m, a vectorizable row update.
                        let dst = &mut row[m0 - t_lo..m0 - t_lo + n];
                        match pass.residual {
                            Some(res) => {
                                let r = &res[o * t_out + m0..o * t_out + m0 + n];
                                for ((d, &v), &rv) in dst.iter_mut().zip(&a[..n]).zip(r) {
                                    *d = v + bias + rv;
                                }
                            }
                            None => {
                                for (d, &v) in dst.iter_mut().zip(&a[..n]) {
                                    *d = v + bias;
                                }
                            }
                        }
                        continue;
                    }
                    for (u, &v) in a[..n].iter().enumerate() {
                        // t_lo ≤ t < t_hi by the choice of m_lo, m_hi.
                        let t = ((m0 + u) * pass.stride) as isize + off;
                        let t = t as usize;
                        let res = pass.residual.map_or(0.0, |res| res[o * t_out + t]);
                        row[t - t_lo] = v + bias + res;
                    }
                }
            }
        }
    });
}

/// [`run`] with a wide tile: on AVX-512 `x86::conv_tile_wide_avx512` ([`TM`] positions
/// × 32 output channels) or, for 16 output channels, `x86::conv_tile_wide16_avx512`
/// (2·`TM` × 16); on AVX2 `x86::conv_tile_wide_avx2` ([`TM_AVX2`] × 16): tasks of one
/// group of output channels × a range of output samples.
#[cfg(target_arch = "x86_64")]
fn run_wide(isa: Isa, pass: &Pass, c_out: usize, t_out: usize, out: &mut [f32]) {
    let (ob, tm) = if isa == Isa::Avx2 {
        (WIDE / 2, TM_AVX2)
    } else if c_out >= WIDE {
        (WIDE, TM)
    } else {
        (WIDE / 2, 2 * TM)
    };
    let tasks = tasks(out, t_out, ob, tm * pass.stride);
    tasks.into_par_iter().for_each(|(g, t_lo, mut parts)| {
        let t_hi = t_lo + parts[0].len();
        let mut acc = [[0f32; 32]; 32];
        for (r, p) in pass.phases.iter().enumerate() {
            let (m_lo, m_hi, off) = phase_range(pass, r, t_lo, t_hi);
            let (xp, lp, d) = (pass.xp, pass.lp, pass.dilation);
            for m0 in (m_lo..m_hi).step_by(tm) {
                // SAFETY: `run` is only called behind `isa.is_available()` (every public
                // entry asserts it) and takes this path for `Avx512Vnni` (AVX-512 F,
                // AVX2, FMA and F16C were detected at run time) or `Avx2` (AVX2 and FMA
                // were), each calling only its own kernels.
                unsafe {
                    if isa == Isa::Avx2 {
                        let w = p.lanes(&p.wide16, g);
                        crate::x86::conv_tile_wide_avx2(xp, lp, p.c_in, p.k, d, w, m0, &mut acc)
                    } else if ob == WIDE {
                        let w = p.lanes(&p.wide, g);
                        crate::x86::conv_tile_wide_avx512(xp, lp, p.c_in, p.k, d, w, m0, &mut acc)
                    } else {
                        let w = p.lanes(&p.wide16, g);
                        crate::x86::conv_tile_wide16_avx512(xp, lp, p.c_in, p.k, d, w, m0, &mut acc)
                    }
                };
                let n = tm.min(m_hi - m0);
                for (l, row) in parts.iter_mut().enumerate() {
                    let o = g * ob + l;
                    let bias = pass.bias[o];
                    let a = &acc[l][..n];
                    if pass.stride == 1 && off == 0 {
                        // Contiguous: t = m.
                        let dst = &mut row[m0 - t_lo..m0 - t_lo + n];
                        match pass.residual {
                            Some(res) => {
                                let r = &res[o * t_out + m0..o * t_out + m0 + n];
                                for ((d, &v), &rv) in dst.iter_mut().zip(a).zip(r) {
                                    *d = v + bias + rv;
                                }
                            }
                            None => {
                                for (d, &v) in dst.iter_mut().zip(a) {
                                    *d = v + bias;
                                }
                            }
                        }
                        continue;
                    }
                    for (u, &v) in a.iter().enumerate() {
                        // t_lo ≤ t < t_hi by the choice of m_lo, m_hi.
                        let t = (((m0 + u) * pass.stride) as isize + off) as usize;
                        let res = pass.residual.map_or(0.0, |res| res[o * t_out + t]);
                        row[t - t_lo] = v + bias + res;
                    }
                }
            }
        }
    });
}

/// Padded row length for positions `0..n_m` and a receptive span of `span` samples
/// (tap reach + `TW`): every tile, starting at any `m0 < n_m`, reads inside the row.
fn padded_len(n_m: usize, span: usize) -> usize {
    n_m + span
}

/// `torch.nn.functional.conv1d(x, weight, bias, stride=1, padding, dilation)` for one
/// batch item, weights packed once.
#[derive(Debug, Clone)]
pub struct Conv1d {
    packed: Packed,
    bias: Vec<f32>,
    dilation: usize,
    padding: usize,
}

impl Conv1d {
    /// `weight` is `[c_out, c_in, k]` (PyTorch's layout), `bias` `[c_out]`.
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        c_out: usize,
        c_in: usize,
        k: usize,
        dilation: usize,
        padding: usize,
    ) -> Self {
        assert_eq!(
            weight.len(),
            c_out * c_in * k,
            "weight is not [c_out, c_in, k]"
        );
        assert_eq!(bias.len(), c_out, "bias is not [c_out]");
        assert!(k >= 1 && dilation >= 1, "kernel and dilation must be >= 1");
        let packed = Packed::new(c_out, c_in, k, |o, i, j| weight[(o * c_in + i) * k + j]);
        Conv1d {
            packed,
            bias: bias.to_vec(),
            dilation,
            padding,
        }
    }

    /// `(c_out, c_in, k)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.packed.c_out, self.packed.c_in, self.packed.k)
    }

    /// Output length for `t_in` input samples: `t_in + 2·padding − dilation·(k − 1)`.
    pub fn out_len(&self, t_in: usize) -> usize {
        (t_in + 2 * self.padding).saturating_sub(self.dilation * (self.packed.k - 1))
    }

    /// `y = conv1d(leaky_relu(x, slope) or x) (+ residual)`; `x` is `[c_in, t_in]`,
    /// `residual` and the result `[c_out, out_len(t_in)]`. [`Isa::selected`] kernels.
    pub fn forward(
        &self,
        x: &[f32],
        t_in: usize,
        slope: Option<f32>,
        residual: Option<&[f32]>,
    ) -> Vec<f32> {
        self.forward_with(Isa::selected(), x, t_in, slope, residual)
    }

    /// [`forward`](Self::forward) with an explicit instruction set.
    pub fn forward_with(
        &self,
        isa: Isa,
        x: &[f32],
        t_in: usize,
        slope: Option<f32>,
        residual: Option<&[f32]>,
    ) -> Vec<f32> {
        assert!(
            isa.is_available(),
            "{} kernels are not available on this CPU",
            isa.name()
        );
        let p = &self.packed;
        let t_out = self.out_len(t_in);
        if let Some(r) = residual {
            assert_eq!(r.len(), p.c_out * t_out, "residual is not [c_out, t_out]");
        }
        let span = self.dilation * (p.k - 1) + TW;
        let lp = padded_len(t_out, span).max(self.padding + t_in);
        let mut out = vec![0f32; p.c_out * t_out];
        with_padded_input(x, p.c_in, t_in, self.padding, lp, slope, |xp| {
            let pass = Pass {
                phases: std::slice::from_ref(p),
                offset0: 0,
                stride: 1,
                dilation: self.dilation,
                n_m: t_out,
                xp,
                lp,
                bias: &self.bias,
                residual,
            };
            run(isa, &pass, p.c_out, t_out, &mut out);
        });
        out
    }
}

/// `torch.nn.functional.conv_transpose1d(x, weight, bias, stride, padding)` (no output
/// padding, groups 1, dilation 1) for one batch item, as `stride` polyphase
/// convolutions with weights packed once.
#[derive(Debug, Clone)]
pub struct ConvTranspose1d {
    /// Phase `r`: taps `j = r + (q_taps − 1 − q)·stride` at position `q` (zero if `j ≥ k`).
    phases: Vec<Packed>,
    bias: Vec<f32>,
    c_out: usize,
    c_in: usize,
    k: usize,
    stride: usize,
    padding: usize,
}

impl ConvTranspose1d {
    /// `weight` is `[c_in, c_out, k]` (PyTorch's transposed layout), `bias` `[c_out]`.
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        assert_eq!(
            weight.len(),
            c_in * c_out * k,
            "weight is not [c_in, c_out, k]"
        );
        assert_eq!(bias.len(), c_out, "bias is not [c_out]");
        assert!(k >= 1 && stride >= 1, "kernel and stride must be >= 1");
        let q_taps = k.div_ceil(stride);
        let phases = (0..stride)
            .map(|r| {
                Packed::new(c_out, c_in, q_taps, |o, i, q| {
                    let j = r + (q_taps - 1 - q) * stride;
                    if j < k {
                        weight[(i * c_out + o) * k + j]
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        ConvTranspose1d {
            phases,
            bias: bias.to_vec(),
            c_out,
            c_in,
            k,
            stride,
            padding,
        }
    }

    /// Output length: `(t_in − 1)·stride − 2·padding + k`.
    pub fn out_len(&self, t_in: usize) -> usize {
        ((t_in.max(1) - 1) * self.stride + self.k).saturating_sub(2 * self.padding)
    }

    /// `y = conv_transpose1d(leaky_relu(x, slope) or x)`; `x` is `[c_in, t_in]`, the
    /// result `[c_out, out_len(t_in)]`. [`Isa::selected`] kernels.
    pub fn forward(&self, x: &[f32], t_in: usize, slope: Option<f32>) -> Vec<f32> {
        self.forward_with(Isa::selected(), x, t_in, slope)
    }

    /// [`forward`](Self::forward) with an explicit instruction set.
    pub fn forward_with(&self, isa: Isa, x: &[f32], t_in: usize, slope: Option<f32>) -> Vec<f32> {
        assert!(
            isa.is_available(),
            "{} kernels are not available on this CPU",
            isa.name()
        );
        let q_taps = self.k.div_ceil(self.stride);
        let t_out = self.out_len(t_in);
        // Phase r, position m: output t = m·stride + r − padding, reading
        // x[m − (q_taps − 1) + q] for q < q_taps, i.e. the input padded by q_taps − 1.
        let n_m = t_in + q_taps - 1;
        let lp = padded_len(n_m, q_taps + TW).max(q_taps - 1 + t_in);
        let mut out = vec![0f32; self.c_out * t_out];
        if t_out == 0 || t_in == 0 {
            assert_eq!(x.len(), self.c_in * t_in, "input is not [c_in, t_in]");
            return out;
        }
        with_padded_input(x, self.c_in, t_in, q_taps - 1, lp, slope, |xp| {
            let pass = Pass {
                phases: &self.phases,
                offset0: -(self.padding as isize),
                stride: self.stride,
                dilation: 1,
                n_m,
                xp,
                lp,
                bias: &self.bias,
                residual: None,
            };
            run(isa, &pass, self.c_out, t_out, &mut out);
        });
        out
    }
}
