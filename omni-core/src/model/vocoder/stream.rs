//! Chunked streaming synthesis: [`VocoderStream`] takes units as the speech decoder
//! emits them and returns PCM as soon as a chunk of at least Ω units
//! ([`StreamConfig::chunk_units`]) has arrived.
//!
//! # How chunk boundaries are handled
//!
//! **[`ChunkBoundary::Independent`]** (LLaMA-Omni's way, `gradio_web_server.py`): once
//! `Ω` or more new units are pending, all of them are vocoded on their own and the
//! PCM is returned; the chunks' waveforms are simply concatenated, and [`VocoderStream::flush`]
//! vocodes what is left. Each chunk is synthesised as if it were a whole utterance:
//! the duration predictor and every convolution see zero padding at both chunk
//! edges, so the durations of the 2 units on each side of a boundary can differ from
//! the whole-utterance ones and the waveform has a discontinuity (a click) at each seam.
//!
//! **[`ChunkBoundary::Overlap`]** (omni's default), with parameters
//! `C = left_context_units`, `L = lookahead_units`, `H = holdback_samples`,
//! `X = crossfade_samples`:
//! 1. *Window.* A chunk is vocoded together with the last `C` units already committed
//!    (left context) and the `L` units held back from the previous chunk:
//!    `window = context(C) ++ held(L) ++ new units`.
//! 2. *Durations.* The context units keep the durations they were given (so the
//!    timeline already played does not move); the other units get the durations
//!    predicted over the whole window. The predictor sees 2 units either side, so
//!    with `C ≥ 2` and `L ≥ 2` every duration equals the whole-utterance one.
//! 3. *Commit.* All units of the window but the last `L` are committed; the last `L`
//!    are held (their durations lack right context) and re-vocoded with the next
//!    chunk. Let `P` be the sample where the committed units end.
//! 4. *Emit.* The window's PCM is returned from where the previous call stopped up to
//!    `P − H`: the last `H` samples before `P` (and everything after `P`) are held
//!    back, because near its right edge the window lacks right context.
//! 5. *Seam.* The next window recomputes those held samples with full left context;
//!    its first `min(X, H)` samples are cross-faded (raised cosine) from the previous
//!    window's held samples into the new ones, then the new window continues alone.
//!    There is no jump in the waveform, and the seam sits in audio that both windows
//!    computed with context on both sides.
//! 6. *Flush.* [`VocoderStream::flush`] vocodes the held and pending units with the
//!    context as the final window and returns everything up to the end.
//!
//! Cost: each window vocodes `C + L` extra units (compute ×(1 + (C+L)/Ω)). Latency:
//! the first PCM comes as soon as the first Ω units do (as in the reference), but each
//! call returns `L` units + `H` samples less audio, which arrive with the next call
//! (a player stalls only if the next chunk takes longer than the audio it holds).
//! The total length is the whole-utterance length.
//!
//! Why that much hold-back: ResBlock1 with kernel 11 and dilations 1/3/5 after the
//! first ×5 upsampling alone reaches ±12 unit frames, so the generator's receptive
//! field is about ±20 frames (±400 ms); its effective reach (where the error falls
//! below -40 dB) is about 150-200 ms. The seam error is set by the right context of
//! the old window at the seam (`L` units + `H`) and the left context of the new one
//! (`C` units − `H`). `tests/vocoder.rs` measures both modes against whole-utterance
//! synthesis (`overlap_parameter_sweep` prints the trade-off table).

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::f32::consts::PI;

use super::code_hifigan::CodeHiFiGan;
use crate::streaming::Streaming;
use crate::{Error, Result};

/// Parameters of [`ChunkBoundary::Overlap`] (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlapParams {
    /// Committed units vocoded again as left context (`C`).
    pub left_context_units: usize,
    /// Units held back at the end of each chunk until the next one (`L`); 2 makes
    /// every duration equal to the whole-utterance one.
    pub lookahead_units: usize,
    /// Samples before the commit point held back and recomputed with the next chunk (`H`).
    pub holdback_samples: usize,
    /// Cross-fade length at each seam (`X ≤ H`).
    pub crossfade_samples: usize,
}

impl Default for OverlapParams {
    /// Balanced: `C = 12` units, `L = 2` units, `H = 1920` samples (120 ms at 16 kHz),
    /// `X = 320` samples (20 ms). About 40 dB SNR against whole-utterance synthesis in
    /// `tests/vocoder.rs`; each chunk returns 2 units + 120 ms less audio than it could.
    fn default() -> Self {
        OverlapParams {
            left_context_units: 12,
            lookahead_units: 2,
            holdback_samples: 1920,
            crossfade_samples: 320,
        }
    }
}

impl OverlapParams {
    /// Smallest hold-back that keeps the durations exact: `C = 8`, `L = 2`,
    /// `H = X = 320` samples (20 ms). Audible seams are gone, but the samples near
    /// each seam are computed with little right context (about 18-25 dB SNR).
    pub fn low_latency() -> Self {
        OverlapParams {
            left_context_units: 8,
            lookahead_units: 2,
            holdback_samples: 320,
            crossfade_samples: 320,
        }
    }

    /// Context on both sides covering the generator's receptive field: `C = 16`,
    /// `L = 2`, `H = 3200` samples (200 ms), `X = 320`: within 55-65 dB of
    /// whole-utterance synthesis.
    pub fn high_quality() -> Self {
        OverlapParams {
            left_context_units: 16,
            lookahead_units: 2,
            holdback_samples: 3200,
            crossfade_samples: 320,
        }
    }
}

/// How consecutive chunks are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkBoundary {
    /// Each chunk vocoded alone, waveforms concatenated (LLaMA-Omni).
    Independent,
    /// Left context, held-back tail and cross-fade (omni).
    Overlap(OverlapParams),
}

/// Streaming settings: the one place chunk sizes are set (sessions take theirs from
/// here too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Units of the first chunk of an utterance: small, for time to first audio.
    pub first_chunk_units: usize,
    /// Ω: after the first chunk, vocode once at least this many new units are pending
    /// (LLaMA-Omni's demo: 40).
    pub chunk_units: usize,
    pub boundary: ChunkBoundary,
}

impl StreamConfig {
    /// The reference's behaviour: independent chunks of ≥ `chunk_units` units, the
    /// first one too.
    pub fn reference(chunk_units: usize) -> Self {
        StreamConfig {
            first_chunk_units: chunk_units,
            chunk_units,
            boundary: ChunkBoundary::Independent,
        }
    }

    /// omni's default: [`ChunkBoundary::Overlap`] with [`OverlapParams::default`],
    /// every chunk of Ω = `chunk_units` (see [`with_first_chunk`](Self::with_first_chunk)).
    pub fn smooth(chunk_units: usize) -> Self {
        StreamConfig {
            first_chunk_units: chunk_units,
            chunk_units,
            boundary: ChunkBoundary::Overlap(OverlapParams::default()),
        }
    }

    /// The same with a first chunk of `units` units.
    pub fn with_first_chunk(self, units: usize) -> Self {
        StreamConfig {
            first_chunk_units: units,
            ..self
        }
    }
}

/// Incremental unit-to-PCM synthesis. `V` is anything that lends a [`CodeHiFiGan`]
/// (`&CodeHiFiGan`, `Arc<CodeHiFiGan>`, or the vocoder itself).
pub struct VocoderStream<V: Borrow<CodeHiFiGan>> {
    vocoder: V,
    config: StreamConfig,
    hop: usize,
    /// Units received and not vocoded yet.
    pending: Vec<u32>,
    /// Overlap: units vocoded but not committed (the last `L` of the previous window).
    held: Vec<u32>,
    /// Overlap: the last `C` committed units with their durations.
    context: VecDeque<(u32, usize)>,
    /// Overlap: PCM of the previous window from where emission stopped to the commit point.
    tail: Vec<f32>,
    units_in: usize,
    samples_out: usize,
    /// Sample offset (in the stream's output) where each committed unit ends.
    unit_ends: Vec<usize>,
    /// Chunks vocoded in this utterance (the first one has its own size).
    windows: usize,
}

impl<V: Borrow<CodeHiFiGan>> VocoderStream<V> {
    /// A new stream. Overlap mode needs a vocoder whose stages upsample exactly
    /// (every published one: 320 samples per frame) and `X ≤ H`.
    pub fn new(vocoder: V, config: StreamConfig) -> Result<Self> {
        if config.chunk_units == 0 || config.first_chunk_units == 0 {
            return Err(Error::InvalidInput(
                "the streaming chunk sizes (first_chunk_units, chunk_units) must be at least 1 unit"
                    .into(),
            ));
        }
        let hop = vocoder.borrow().samples_per_frame();
        let hop = match (config.boundary, hop) {
            (ChunkBoundary::Overlap(p), Some(h)) => {
                if p.crossfade_samples > p.holdback_samples {
                    return Err(Error::InvalidInput(format!(
                        "cross-fade of {} samples is longer than the {} held-back samples it fades over",
                        p.crossfade_samples, p.holdback_samples
                    )));
                }
                h
            }
            (ChunkBoundary::Overlap(_), None) => {
                return Err(Error::InvalidInput(
                    "overlap streaming needs a vocoder whose upsampling stages multiply lengths exactly \
                     ((kernel - rate) even); use ChunkBoundary::Independent"
                        .into(),
                ))
            }
            (ChunkBoundary::Independent, h) => h.unwrap_or(0),
        };
        Ok(VocoderStream {
            vocoder,
            config,
            hop,
            pending: Vec::new(),
            held: Vec::new(),
            context: VecDeque::new(),
            tail: Vec::new(),
            units_in: 0,
            samples_out: 0,
            unit_ends: Vec::new(),
            windows: 0,
        })
    }

    /// The vocoder.
    pub fn vocoder(&self) -> &CodeHiFiGan {
        self.vocoder.borrow()
    }

    /// The settings.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Units pushed so far.
    pub fn units_pushed(&self) -> usize {
        self.units_in
    }

    /// Samples returned so far.
    pub fn samples_emitted(&self) -> usize {
        self.samples_out
    }

    /// Where each unit vocoded so far ends in the stream's output, in samples
    /// (in pushing order): maps played samples back to units.
    pub fn unit_ends(&self) -> &[usize] {
        &self.unit_ends
    }

    /// Records the durations (frames) of newly committed units.
    fn commit_durations(&mut self, durations: &[usize]) {
        let mut acc = self.unit_ends.last().copied().unwrap_or(0);
        for &d in durations {
            acc += d * self.hop.max(1);
            self.unit_ends.push(acc);
        }
    }

    /// Vocodes `units` alone (independent chunks) and records their durations.
    fn vocode_alone(&mut self, units: &[u32]) -> Result<Vec<f32>> {
        let (wav, dur) = self.vocoder.borrow().synthesize_parts(units, &[])?;
        if self.hop == 0 && !dur.is_empty() {
            self.hop = wav.len() / dur.iter().sum::<usize>().max(1);
        }
        self.commit_durations(&dur);
        Ok(wav)
    }

    /// One overlap window (module docs, steps 1-5); `last` commits and emits everything.
    fn vocode_window(&mut self, p: OverlapParams, last: bool) -> Result<Vec<f32>> {
        let hop = self.hop;
        let ctx_n = self.context.len();
        let mut units: Vec<u32> = self.context.iter().map(|&(u, _)| u).collect();
        let forced: Vec<usize> = self.context.iter().map(|&(_, d)| d).collect();
        units.extend_from_slice(&self.held);
        units.extend_from_slice(&self.pending);
        let (wav, dur) = self.vocoder.borrow().synthesize_parts(&units, &forced)?;

        // Sample offset of the end of each unit in the window.
        let mut ends = Vec::with_capacity(dur.len());
        let mut acc = 0usize;
        for &d in &dur {
            acc += d * hop;
            ends.push(acc);
        }
        if acc != wav.len() {
            return Err(Error::InvalidInput(format!(
                "the vocoder gave {} samples for {} frames of {hop}: cannot place chunk seams",
                wav.len(),
                acc / hop.max(1)
            )));
        }
        let start_of = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
        let ctx_samples = start_of(ctx_n);
        let fresh = units.len() - ctx_n;
        let n_commit = if last {
            fresh
        } else {
            fresh.saturating_sub(p.lookahead_units)
        };
        let commit_end = start_of(ctx_n + n_commit);

        // Where emission resumes: the previous window stopped `tail.len()` samples
        // before its commit point, which is this window's `ctx_samples`.
        let resume = ctx_samples.saturating_sub(self.tail.len());
        let mut out = Vec::new();
        let mut from = resume;
        if ctx_samples < self.tail.len() {
            // Not enough context to overlap (C = 0): play the old tail as is.
            out.extend_from_slice(&self.tail);
            from = ctx_samples;
        } else if !self.tail.is_empty() {
            let x = p.crossfade_samples.min(self.tail.len());
            for (j, &old) in self.tail[..x].iter().enumerate() {
                let w = 0.5 - 0.5 * (PI * (j as f32 + 0.5) / x as f32).cos();
                out.push(old * (1.0 - w) + wav[resume + j] * w);
            }
            from = resume + x;
        }

        // Where emission stops: H before the commit point, but not before the start
        // of the next window's context nor before what this call has already covered.
        let end = if last {
            wav.len()
        } else {
            let next_ctx_first = (ctx_n + n_commit).saturating_sub(p.left_context_units);
            let next_ctx_start = start_of(next_ctx_first);
            commit_end
                .saturating_sub(p.holdback_samples)
                .max(next_ctx_start)
                .max(from)
        };
        if end > from {
            out.extend_from_slice(&wav[from..end]);
        }
        self.tail = if last {
            Vec::new()
        } else {
            wav[end..commit_end].to_vec()
        };

        // Bookkeeping: committed units join the context, the rest is held.
        self.commit_durations(&dur[ctx_n..ctx_n + n_commit]);
        for i in ctx_n..ctx_n + n_commit {
            self.context.push_back((units[i], dur[i]));
        }
        while self.context.len() > p.left_context_units {
            self.context.pop_front();
        }
        self.held = units[ctx_n + n_commit..].to_vec();
        self.pending.clear();
        Ok(out)
    }
}

impl<V: Borrow<CodeHiFiGan>> Streaming for VocoderStream<V> {
    /// Units.
    type Input<'a> = &'a [u32];
    /// PCM at the vocoder's rate.
    type Output = Vec<f32>;

    /// Adds new units; returns the PCM that is ready (empty until the first chunk's
    /// units, then Ω units, are pending).
    /// An empty chunk or an out-of-range unit is an error and leaves the stream as it was.
    fn push(&mut self, units: &[u32]) -> Result<Vec<f32>> {
        if units.is_empty() {
            return Err(Error::InvalidInput(
                "empty unit chunk pushed to the vocoder stream".into(),
            ));
        }
        let n = self.vocoder.borrow().config.num_embeddings;
        if let Some(bad) = units.iter().find(|&&u| u as usize >= n) {
            return Err(Error::InvalidInput(format!(
                "unit {bad} is out of range: the vocoder has {n} units (0..={})",
                n - 1
            )));
        }
        self.pending.extend_from_slice(units);
        self.units_in += units.len();
        let target = if self.windows == 0 {
            self.config.first_chunk_units
        } else {
            self.config.chunk_units
        };
        if self.pending.len() < target {
            return Ok(Vec::new());
        }
        let out = match self.config.boundary {
            ChunkBoundary::Independent => {
                let units = std::mem::take(&mut self.pending);
                self.vocode_alone(&units)?
            }
            ChunkBoundary::Overlap(p) => {
                if self.held.len() + self.pending.len() <= p.lookahead_units {
                    return Ok(Vec::new());
                }
                self.vocode_window(p, false)?
            }
        };
        self.windows += 1;
        self.samples_out += out.len();
        Ok(out)
    }

    /// Vocodes whatever is pending or held and returns the rest of the audio.
    /// The stream is then empty and can take a new utterance (with no context).
    fn flush(&mut self) -> Result<Vec<f32>> {
        let out = match self.config.boundary {
            ChunkBoundary::Independent => {
                if self.pending.is_empty() {
                    Vec::new()
                } else {
                    let units = std::mem::take(&mut self.pending);
                    self.vocode_alone(&units)?
                }
            }
            ChunkBoundary::Overlap(p) => {
                if self.pending.is_empty() && self.held.is_empty() {
                    // The held samples are the true end of the last window.
                    std::mem::take(&mut self.tail)
                } else {
                    self.vocode_window(p, true)?
                }
            }
        };
        self.context.clear();
        self.held.clear();
        self.tail.clear();
        self.windows = 0;
        self.samples_out += out.len();
        Ok(out)
    }

    /// Drops pending, held and context units and zeroes the counters.
    fn reset(&mut self) {
        self.pending.clear();
        self.held.clear();
        self.context.clear();
        self.tail.clear();
        self.windows = 0;
        self.units_in = 0;
        self.samples_out = 0;
        self.unit_ends.clear();
    }
}
