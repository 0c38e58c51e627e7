//! The input side of a session: validation, the turn buffer, and endpointing.
//!
//! Endpointing uses the `earshot` crate: a small neural voice-activity
//! detector in pure Rust (16 ms frames at 16 kHz, ~8 KiB per instance, no
//! model download, thousands of times faster than real time). We chose it over
//! an energy threshold because it ignores steady noise and over Silero/TEN
//! because those need ONNX Runtime. Speech starts after `min_speech_ms` of
//! voiced frames and ends after `trailing_silence_ms` of unvoiced ones.
//!
//! Two modes ([`EndpointOptions::enabled`]):
//! - **Explicit** (off; files, push-to-talk): the caller ends turns, and a
//!   turn is every sample pushed since the last one, untrimmed, as the
//!   reference encodes a whole file. The detector only says whether the turn
//!   holds speech (and drives barge-in).
//! - **Live** (on; microphones): a turn is the audio from `pre_roll_ms` before
//!   the speech start to the end of the last voiced frame. At the first
//!   unvoiced frame the turn's audio is handed out for a speculative start
//!   ([`InputAction::Paused`]); speech resuming before the endpoint withdraws
//!   it; the endpoint commits it. After an endpoint the turn's audio is kept
//!   for `resume_grace_ms`: speech that starts within it may continue the
//!   question ([`InputAction::SpeechStarted::resumable`]).
//!
//! The detector hears a cheap linear-interpolated 16 kHz copy of the input;
//! the turn keeps the caller's samples ([`TurnAudio`]).

use std::time::Instant;

use super::turn_audio::TurnAudio;
use crate::audio::SAMPLE_RATE;
use crate::{Error, Result};

/// Endpointing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointOptions {
    /// Live mode: end turns automatically when the user stops speaking. Off:
    /// explicit mode, only `end_turn` ends a turn (files, push-to-talk).
    pub enabled: bool,
    /// Voice probability above which a 16 ms frame counts as speech.
    pub threshold: f32,
    /// Voiced time needed to declare speech started.
    pub min_speech_ms: u32,
    /// Unvoiced time after speech that ends the turn.
    pub trailing_silence_ms: u32,
    /// Audio kept before the detected speech start.
    pub pre_roll_ms: u32,
    /// Live mode: speech that starts within this time after an endpoint,
    /// before any of the answer was played, continues the same question (the
    /// pending answer is dropped). 0 turns it off.
    pub resume_grace_ms: u32,
    /// Live mode: start the encoder, adaptor and prefill when the speech
    /// ends instead of when the endpoint fires.
    pub speculative: bool,
    /// Silence after which the speculative start begins (the turn's audio
    /// still ends at the last voiced frame). A little silence filters the gaps
    /// between words, each of which would otherwise start (and throw away) an
    /// encoder + prefill that a large model cannot stop halfway.
    pub speculative_after_ms: u32,
    /// Longest turn accepted, in seconds of audio; a push past it is refused
    /// with an error (end the turn first).
    pub max_turn_s: u32,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            enabled: true,
            threshold: 0.5,
            min_speech_ms: 128,
            trailing_silence_ms: 640,
            pre_roll_ms: 320,
            resume_grace_ms: 1500,
            speculative: true,
            speculative_after_ms: 160,
            max_turn_s: 1200,
        }
    }
}

/// What a push of audio caused, in order.
#[derive(Debug)]
pub(crate) enum InputAction {
    /// Speech started at `at_ms`. `resumable`: it started within the grace
    /// window of the last endpoint; the sink answers whether the question
    /// continues (true) or this is a new turn (false).
    SpeechStarted { at_ms: u64, resumable: bool },
    /// Live mode: the speech just ended (first unvoiced frame): the turn's
    /// audio so far, for a speculative start.
    Paused {
        audio: Vec<f32>,
        speech_end: Instant,
    },
    /// Live mode: speech came back before the endpoint: the paused audio is stale.
    Unpaused,
    /// Live mode: the endpoint fired. `audio` is the turn's audio, or None if
    /// it is exactly the last `Paused` audio. `speech_end` is when the last
    /// voiced frame was heard.
    Endpoint {
        at_ms: u64,
        audio: Option<Vec<f32>>,
        speech_end: Instant,
    },
}

const FRAME: usize = 256; // 16 ms at 16 kHz, earshot's frame
const FRAME_MS: u32 = 16;
/// While no speech is heard (live mode), only this much audio is kept beyond the pre-roll.
const IDLE_KEEP_S: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VadState {
    Idle {
        voiced_ms: u32,
        run_start: u64,
    },
    /// `speech_end`: timeline position where the current silence run started.
    Speech {
        silence_ms: u32,
        speech_end: Option<u64>,
    },
}

/// The last endpoint, while its question may still continue.
#[derive(Debug, Clone, Copy)]
struct Resumable {
    /// Timeline position where the committed turn's audio ended.
    committed_end: u64,
    /// Speech starting at or before this position may continue it.
    until: u64,
}

pub(crate) struct Input {
    pub opts: EndpointOptions,
    detector: Box<earshot::Detector>,
    /// Rate of the last push (for the detector's interpolation).
    rate: u32,
    audio: TurnAudio,
    /// Timeline position where the current turn's audio starts.
    turn_start: u64,
    /// Linear resampler for the detector: fractional read position in input terms.
    lin_pos: f64,
    lin_prev: f32,
    vad_buf: Vec<f32>,
    /// 16 kHz samples fed to the detector since the session started.
    fed: u64,
    /// Timeline position of the end of the last scored frame.
    timeline: u64,
    state: VadState,
    /// When the current silence run started (wall clock).
    speech_end_at: Option<Instant>,
    /// Whether a `Paused` is outstanding for the current silence run.
    paused_sent: bool,
    resumable: Option<Resumable>,
    /// Whether the detector heard speech in the current turn.
    pub heard_speech: bool,
}

/// Rejects NaN/inf samples and unusable rates.
pub(crate) fn validate(samples: &[f32], sample_rate: u32) -> Result<()> {
    if !(1000..=384_000).contains(&sample_rate) {
        return Err(Error::Audio(format!(
            "sample rate {sample_rate} Hz is outside 1000..=384000 Hz"
        )));
    }
    if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::Audio(format!(
            "sample {i} is not finite ({})",
            samples[i]
        )));
    }
    Ok(())
}

fn ms(samples16k: u64) -> u64 {
    samples16k * 1000 / SAMPLE_RATE as u64
}

fn samples16k(ms: u32) -> u64 {
    ms as u64 * SAMPLE_RATE as u64 / 1000
}

impl Input {
    pub fn new(opts: EndpointOptions) -> Self {
        Input {
            opts,
            detector: earshot::Detector::default_boxed(),
            rate: SAMPLE_RATE,
            audio: TurnAudio::default(),
            turn_start: 0,
            lin_pos: 0.0,
            lin_prev: 0.0,
            vad_buf: Vec::new(),
            fed: 0,
            timeline: 0,
            state: VadState::Idle {
                voiced_ms: 0,
                run_start: 0,
            },
            speech_end_at: None,
            paused_sent: false,
            resumable: None,
            heard_speech: false,
        }
    }

    fn drop_before(&mut self, pos: u64) {
        if pos > self.turn_start {
            self.audio.drop_before(pos);
            self.turn_start = pos;
        }
    }

    /// Forgets the audio of the last committed turn (its question can no
    /// longer continue).
    fn close_resumable(&mut self) {
        if let Some(r) = self.resumable.take() {
            self.drop_before(r.committed_end);
        }
    }

    /// Takes everything pushed since the last turn, at 16 kHz, and starts a
    /// new turn (explicit end of turn).
    pub fn take_turn(&mut self) -> Result<Vec<f32>> {
        self.close_resumable();
        let out = self.audio.extract(self.turn_start, u64::MAX)?;
        self.audio.clear();
        self.turn_start = self.fed;
        // Speech still going on (an explicit end of turn mid-speech) counts
        // for the next turn: the detector will not report a new onset for it.
        self.heard_speech = matches!(self.state, VadState::Speech { .. });
        self.paused_sent = false;
        Ok(out)
    }

    /// Forgets the current turn's audio and the detector state.
    pub fn reset(&mut self) {
        self.audio.clear();
        self.turn_start = self.fed;
        self.vad_buf.clear();
        self.timeline = self.fed;
        self.detector.reset();
        self.state = VadState::Idle {
            voiced_ms: 0,
            run_start: self.timeline,
        };
        self.heard_speech = false;
        self.paused_sent = false;
        self.resumable = None;
        self.speech_end_at = None;
    }

    /// Adds audio; reports what the endpointer concluded to `sink`, in order
    /// (its answer matters only for a resumable `SpeechStarted`).
    pub fn push(
        &mut self,
        samples: &[f32],
        sample_rate: u32,
        sink: &mut dyn FnMut(InputAction) -> Result<bool>,
    ) -> Result<()> {
        validate(samples, sample_rate)?;
        if samples.is_empty() {
            return Ok(());
        }
        let max_raw = self.opts.max_turn_s as u64 * sample_rate as u64;
        if (self.audio.raw_len() + samples.len()) as u64 > max_raw {
            return Err(Error::InvalidInput(format!(
                "the turn would hold more than max_turn_s = {} s of audio: end the turn first (nothing was kept)",
                self.opts.max_turn_s
            )));
        }
        if sample_rate != self.rate {
            self.rate = sample_rate;
            self.lin_pos = 0.0;
        }
        self.audio.push(sample_rate, self.fed, samples);
        let before = self.vad_buf.len();
        self.feed_detector(samples);
        self.fed += (self.vad_buf.len() - before) as u64;
        let frames = self.vad_buf.len() / FRAME;
        for f in 0..frames {
            let frame = &self.vad_buf[f * FRAME..(f + 1) * FRAME];
            let score = self.detector.predict_f32(frame);
            self.timeline += FRAME as u64;
            self.step(score >= self.opts.threshold, sink)?;
        }
        self.vad_buf.drain(..frames * FRAME);
        // A huge push must not keep its detector copy's memory.
        if self.vad_buf.capacity() > 64 * FRAME {
            self.vad_buf.shrink_to(4 * FRAME);
        }
        if self.opts.enabled {
            if let Some(r) = self.resumable {
                if self.timeline > r.until && matches!(self.state, VadState::Idle { .. }) {
                    self.close_resumable();
                }
            }
            if self.resumable.is_none() {
                if let VadState::Idle { .. } = self.state {
                    let keep = samples16k(self.opts.pre_roll_ms) + IDLE_KEEP_S * SAMPLE_RATE as u64;
                    self.drop_before(self.fed.saturating_sub(keep));
                }
            }
        }
        Ok(())
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
            let a = if i < 0.0 {
                self.lin_prev
            } else {
                samples[i as usize]
            };
            let b = samples[((i + 1.0).max(0.0) as usize).min(samples.len() - 1)];
            self.vad_buf.push(a + (b - a) * frac);
            self.lin_pos += step;
        }
        self.lin_pos -= n;
        self.lin_prev = samples[samples.len() - 1];
    }

    fn step(
        &mut self,
        voiced: bool,
        sink: &mut dyn FnMut(InputAction) -> Result<bool>,
    ) -> Result<()> {
        let frame_start = self.timeline - FRAME as u64;
        match self.state {
            VadState::Idle {
                voiced_ms,
                run_start,
            } => {
                if !voiced {
                    self.state = VadState::Idle {
                        voiced_ms: 0,
                        run_start: self.timeline,
                    };
                    return Ok(());
                }
                let start = if voiced_ms == 0 {
                    frame_start
                } else {
                    run_start
                };
                let v = voiced_ms + FRAME_MS;
                if v < self.opts.min_speech_ms {
                    self.state = VadState::Idle {
                        voiced_ms: v,
                        run_start: start,
                    };
                    return Ok(());
                }
                self.state = VadState::Speech {
                    silence_ms: 0,
                    speech_end: None,
                };
                self.heard_speech = true;
                let resumable =
                    self.opts.enabled && self.resumable.is_some_and(|r| start <= r.until);
                let resumed = sink(InputAction::SpeechStarted {
                    at_ms: ms(start),
                    resumable,
                })?;
                if resumable && resumed {
                    // The question goes on: the turn keeps all of its audio.
                    self.resumable = None;
                } else if self.opts.enabled {
                    self.close_resumable();
                    // Keep only the pre-roll before the speech start.
                    self.drop_before(start.saturating_sub(samples16k(self.opts.pre_roll_ms)));
                }
            }
            VadState::Speech {
                silence_ms,
                speech_end,
            } => {
                if voiced {
                    if self.paused_sent {
                        self.paused_sent = false;
                        sink(InputAction::Unpaused)?;
                    }
                    self.speech_end_at = None;
                    self.state = VadState::Speech {
                        silence_ms: 0,
                        speech_end: None,
                    };
                    return Ok(());
                }
                let end = speech_end.unwrap_or(frame_start);
                if speech_end.is_none() {
                    self.speech_end_at = Some(Instant::now());
                }
                let s = silence_ms + FRAME_MS;
                let speculate_at = self
                    .opts
                    .speculative_after_ms
                    .max(FRAME_MS)
                    .min(self.opts.trailing_silence_ms);
                if self.opts.enabled
                    && self.opts.speculative
                    && !self.paused_sent
                    && s >= speculate_at
                {
                    let audio = self.audio.extract(self.turn_start, end)?;
                    if !audio.is_empty() {
                        self.paused_sent = true;
                        let speech_end = self.speech_end_at.unwrap_or_else(Instant::now);
                        sink(InputAction::Paused { audio, speech_end })?;
                    }
                }
                if s < self.opts.trailing_silence_ms {
                    self.state = VadState::Speech {
                        silence_ms: s,
                        speech_end: Some(end),
                    };
                    return Ok(());
                }
                self.state = VadState::Idle {
                    voiced_ms: 0,
                    run_start: self.timeline,
                };
                if !self.opts.enabled {
                    // Explicit mode: speech ended, the caller ends the turn.
                    return Ok(());
                }
                let audio = if self.paused_sent {
                    None
                } else {
                    Some(self.audio.extract(self.turn_start, end)?)
                };
                self.paused_sent = false;
                self.heard_speech = false;
                let speech_end = self.speech_end_at.take().unwrap_or_else(Instant::now);
                self.resumable = Some(Resumable {
                    committed_end: end,
                    until: self.timeline + samples16k(self.opts.resume_grace_ms),
                });
                if self.opts.resume_grace_ms == 0 {
                    self.close_resumable();
                }
                sink(InputAction::Endpoint {
                    at_ms: ms(end),
                    audio,
                    speech_end,
                })?;
            }
        }
        Ok(())
    }
}
