//! The input side of a session: validation, the turn buffer, and endpointing.
//!
//! Endpointing uses the `earshot` crate: a small neural voice-activity
//! detector in pure Rust (16 ms frames at 16 kHz, ~8 KiB per instance, no
//! model download, thousands of times faster than real time). We chose it over
//! an energy threshold because it ignores steady noise and over Silero/TEN
//! because those need ONNX Runtime. Speech starts after `min_speech_ms` of
//! voiced frames and ends after `trailing_silence_ms` of unvoiced ones.
//!
//! Audio at any rate is accepted. The turn keeps the caller's samples at their
//! own rate and resamples them to 16 kHz once, at the end of the turn, with a
//! sinc resampler (`audio::resample`); the detector meanwhile hears a cheap
//! linear-interpolated 16 kHz copy, which is enough to find speech.

use crate::audio::{resample, SAMPLE_RATE};
use crate::{Error, Result};

/// Endpointing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointOptions {
    /// End turns automatically when the user stops speaking.
    pub enabled: bool,
    /// Voice probability above which a 16 ms frame counts as speech.
    pub threshold: f32,
    /// Voiced time needed to declare speech started.
    pub min_speech_ms: u32,
    /// Unvoiced time after speech that ends the turn.
    pub trailing_silence_ms: u32,
    /// Audio kept before the detected speech start.
    pub pre_roll_ms: u32,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions { enabled: true, threshold: 0.5, min_speech_ms: 128, trailing_silence_ms: 640, pre_roll_ms: 320 }
    }
}

/// What a push of audio caused.
#[derive(Debug)]
pub(crate) enum InputAction {
    SpeechStarted { at_ms: u64 },
    /// Speech ended: the turn's audio at 16 kHz.
    Endpoint { at_ms: u64, audio: Vec<f32> },
}

const FRAME: usize = 256; // 16 ms at 16 kHz, earshot's frame
const FRAME_MS: u32 = 16;
/// While no speech is heard, only this much audio is kept (beyond the pre-roll).
const IDLE_KEEP_S: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VadState {
    Idle { voiced_ms: u32, run_start: u64 },
    Speech { silence_ms: u32 },
}

pub(crate) struct Input {
    pub opts: EndpointOptions,
    detector: Box<earshot::Detector>,
    /// Sample rate of `raw`.
    rate: u32,
    /// This turn's audio at `rate`, not yet resampled.
    raw: Vec<f32>,
    /// This turn's audio from earlier pushes at another rate, already at 16 kHz.
    prefix16k: Vec<f32>,
    /// Linear resampler for the detector: fractional read position in `raw` terms.
    lin_pos: f64,
    lin_prev: f32,
    vad_buf: Vec<f32>,
    /// 16 kHz samples the detector has seen since the session started.
    timeline: u64,
    state: VadState,
    /// Whether the detector heard speech in the current turn.
    pub heard_speech: bool,
}

/// Rejects NaN/inf samples and unusable rates.
pub(crate) fn validate(samples: &[f32], sample_rate: u32) -> Result<()> {
    if sample_rate < 1000 || sample_rate > 384_000 {
        return Err(Error::Audio(format!("sample rate {sample_rate} Hz is outside 1000..=384000 Hz")));
    }
    if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::Audio(format!("sample {i} is not finite ({})", samples[i])));
    }
    Ok(())
}

impl Input {
    pub fn new(opts: EndpointOptions) -> Self {
        Input {
            opts,
            detector: earshot::Detector::default_boxed(),
            rate: SAMPLE_RATE,
            raw: Vec::new(),
            prefix16k: Vec::new(),
            lin_pos: 0.0,
            lin_prev: 0.0,
            vad_buf: Vec::new(),
            timeline: 0,
            state: VadState::Idle { voiced_ms: 0, run_start: 0 },
            heard_speech: false,
        }
    }

    fn ms(samples16k: u64) -> u64 {
        samples16k * 1000 / SAMPLE_RATE as u64
    }

    /// Samples of this turn, in 16 kHz terms.
    fn turn_len16k(&self) -> usize {
        self.prefix16k.len() + (self.raw.len() as u64 * SAMPLE_RATE as u64 / self.rate as u64) as usize
    }

    /// Drops the oldest turn audio so that `keep16k` (16 kHz samples) remain.
    fn keep_tail(&mut self, keep16k: usize) {
        let total = self.turn_len16k();
        if total <= keep16k {
            return;
        }
        let mut drop16k = total - keep16k;
        let from_prefix = drop16k.min(self.prefix16k.len());
        self.prefix16k.drain(..from_prefix);
        drop16k -= from_prefix;
        let drop_raw = ((drop16k as u64 * self.rate as u64) / SAMPLE_RATE as u64) as usize;
        let drop_raw = drop_raw.min(self.raw.len());
        self.raw.drain(..drop_raw);
    }

    /// Takes the turn's audio at 16 kHz and starts a new turn.
    pub fn take_turn(&mut self) -> Result<Vec<f32>> {
        let mut out = std::mem::take(&mut self.prefix16k);
        let raw = std::mem::take(&mut self.raw);
        if !raw.is_empty() {
            out.extend(resample(&raw, self.rate, SAMPLE_RATE)?);
        }
        // Speech still going on (endpointing off, or an explicit end of turn
        // mid-speech) counts for the next turn: the detector will not report
        // a new onset for it.
        self.heard_speech = matches!(self.state, VadState::Speech { .. });
        Ok(out)
    }

    /// Forgets the current turn's audio and the detector state.
    pub fn reset(&mut self) {
        self.raw.clear();
        self.prefix16k.clear();
        self.vad_buf.clear();
        self.detector.reset();
        self.state = VadState::Idle { voiced_ms: 0, run_start: self.timeline };
        self.heard_speech = false;
    }

    /// Adds audio; returns what the endpointer concluded.
    pub fn push(&mut self, samples: &[f32], sample_rate: u32) -> Result<Vec<InputAction>> {
        validate(samples, sample_rate)?;
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        if sample_rate != self.rate {
            if !self.raw.is_empty() {
                let raw = std::mem::take(&mut self.raw);
                let conv = resample(&raw, self.rate, SAMPLE_RATE)?;
                self.prefix16k.extend(conv);
            }
            self.rate = sample_rate;
            self.lin_pos = 0.0;
        }
        self.raw.extend_from_slice(samples);
        self.feed_detector(samples);
        let mut actions = Vec::new();
        let frames = self.vad_buf.len() / FRAME;
        for f in 0..frames {
            let frame = &self.vad_buf[f * FRAME..(f + 1) * FRAME];
            let score = self.detector.predict_f32(frame);
            self.timeline += FRAME as u64;
            self.step(score >= self.opts.threshold, &mut actions)?;
        }
        self.vad_buf.drain(..frames * FRAME);
        if self.opts.enabled {
            if let VadState::Idle { .. } = self.state {
                let keep = (self.opts.pre_roll_ms as usize * SAMPLE_RATE as usize / 1000) + IDLE_KEEP_S * SAMPLE_RATE as usize;
                self.keep_tail(keep);
            }
        }
        Ok(actions)
    }

    /// Linear interpolation of the new samples to 16 kHz for the detector.
    fn feed_detector(&mut self, samples: &[f32]) {
        if self.rate == SAMPLE_RATE {
            self.vad_buf.extend_from_slice(samples);
            return;
        }
        let step = self.rate as f64 / SAMPLE_RATE as f64;
        // lin_pos is relative to the start of `samples`, with index -1 = lin_prev.
        let n = samples.len() as f64;
        while self.lin_pos < n - 1.0 + 1e-9 {
            let i = self.lin_pos.floor();
            let frac = (self.lin_pos - i) as f32;
            let a = if i < 0.0 { self.lin_prev } else { samples[i as usize] };
            let b = samples[((i + 1.0).max(0.0) as usize).min(samples.len() - 1)];
            self.vad_buf.push(a + (b - a) * frac);
            self.lin_pos += step;
        }
        self.lin_pos -= n;
        self.lin_prev = samples[samples.len() - 1];
    }

    fn step(&mut self, voiced: bool, actions: &mut Vec<InputAction>) -> Result<()> {
        match self.state {
            VadState::Idle { voiced_ms, run_start } => {
                if voiced {
                    let start = if voiced_ms == 0 { self.timeline - FRAME as u64 } else { run_start };
                    let v = voiced_ms + FRAME_MS;
                    if v >= self.opts.min_speech_ms {
                        self.state = VadState::Speech { silence_ms: 0 };
                        self.heard_speech = true;
                        if self.opts.enabled {
                            // Keep only the pre-roll before the speech start.
                            let since_start = (self.timeline - start) as usize;
                            let pre = self.opts.pre_roll_ms as usize * SAMPLE_RATE as usize / 1000;
                            self.keep_tail(since_start + pre + self.vad_buf.len());
                        }
                        actions.push(InputAction::SpeechStarted { at_ms: Self::ms(start) });
                    } else {
                        self.state = VadState::Idle { voiced_ms: v, run_start: start };
                    }
                } else {
                    self.state = VadState::Idle { voiced_ms: 0, run_start: self.timeline };
                }
            }
            VadState::Speech { silence_ms } => {
                let s = if voiced { 0 } else { silence_ms + FRAME_MS };
                if s >= self.opts.trailing_silence_ms && self.opts.enabled {
                    self.state = VadState::Idle { voiced_ms: 0, run_start: self.timeline };
                    let at_ms = Self::ms(self.timeline);
                    let audio = self.take_turn()?;
                    actions.push(InputAction::Endpoint { at_ms, audio });
                } else if s >= self.opts.trailing_silence_ms {
                    // Endpointing off: speech ended, the caller ends the turn.
                    self.state = VadState::Idle { voiced_ms: 0, run_start: self.timeline };
                } else {
                    self.state = VadState::Speech { silence_ms: s };
                }
            }
        }
        Ok(())
    }
}
