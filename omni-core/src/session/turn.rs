//! One turn, as a pipeline: user input → speech embeddings → prompt → prefill
//! ([`TurnRun::prepare`], which may run speculatively before the endpoint) →
//! tokens → units → audio ([`TurnRun::answer`]).
//!
//! The answer's trace ([`AnswerTrace`]) maps the audio the app played back to
//! the units and tokens it carried, so the history keeps what was heard.

use std::time::Instant;

use burn::tensor::Tensor;

use super::dialogue::{Dialogue, Snapshot, UserTurn};
use super::events::{ErrorCode, Event, InterruptReason, Timings, NO_TOKEN};
use super::shared::Shared;
use super::worker::{turn_error, Emitter};
use super::SessionOptions;
use crate::audio::{N_SAMPLES, SAMPLE_RATE};
use crate::bundle::Omni;
use crate::model::llama::generate::Generation;
use crate::model::speech_decoder::UnitStream;
use crate::model::vocoder::stream::VocoderStream;
use crate::pipeline::speech_embeddings;
use crate::streaming::Streaming;
use crate::Result;

/// What the user gave in a turn.
pub(crate) enum UserInput {
    /// 16 kHz audio.
    Speech(Vec<f32>),
    /// Typed text.
    Text(String),
}

/// Milliseconds since `t`.
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Times one stage: `let t = Stopwatch::start(); …; total += t.ms();`.
struct Stopwatch(Instant);

impl Stopwatch {
    fn start() -> Self {
        Stopwatch(Instant::now())
    }
    fn ms(&self) -> f64 {
        ms(self.0)
    }
}

/// A turn encoded and prefilled, waiting to be answered.
pub(crate) struct Prepared {
    /// Final-normed hidden state of the prompt's last position.
    last: Tensor<2>,
    /// Cache length when the answer starts.
    answer_start: usize,
    audio_ms: u64,
    warnings: Vec<String>,
    encode_ms: f64,
    prefill_ms: f64,
    speech_end: Instant,
    speculative: bool,
}

/// How the answer's audio maps back to its tokens.
pub(crate) struct AnswerTrace {
    turn: u32,
    /// Units produced up to and including each token.
    units_after_token: Vec<usize>,
    /// Sample offset where each vocoded unit ends.
    unit_ends: Vec<usize>,
    /// Samples sent to the app.
    samples_sent: u64,
}

impl AnswerTrace {
    /// Answer tokens whose audio lies within the first `played` samples: the
    /// longest prefix of tokens whose units have all been played (none when
    /// nothing was played).
    pub fn tokens_heard(&self, played: u64) -> usize {
        let units = self
            .unit_ends
            .iter()
            .take_while(|&&e| e as u64 <= played)
            .count();
        if units == 0 {
            return 0;
        }
        self.units_after_token
            .iter()
            .take_while(|&&u| u <= units)
            .count()
    }

    /// Cuts the history's copy of this answer to what the app played: its
    /// `played()` report, or without one every sample sent.
    pub fn apply_played(&self, shared: &Shared, dialogue: &mut Dialogue) {
        let played = shared
            .played(self.turn)
            .unwrap_or(self.samples_sent)
            .min(self.samples_sent);
        let all_vocoded =
            self.units_after_token.last().copied().unwrap_or(0) <= self.unit_ends.len();
        if played >= self.samples_sent && all_vocoded {
            return;
        }
        dialogue.truncate_answer(self.tokens_heard(played));
    }
}

/// The stages of one turn over a shared model.
pub(crate) struct TurnRun<'a> {
    omni: &'a Omni,
    opts: &'a SessionOptions,
    out: &'a Emitter,
}

impl<'a> TurnRun<'a> {
    pub fn new(omni: &'a Omni, opts: &'a SessionOptions, out: &'a Emitter) -> Self {
        TurnRun { omni, opts, out }
    }

    /// A committed turn cancelled before it started: its only event.
    pub fn not_started(&mut self, turn: u32) {
        let reason = self.out.reason(turn);
        self.out.finish(
            turn,
            Event::Interrupted {
                turn,
                reason,
                text: String::new(),
            },
        );
    }

    /// Speech embeddings, prompt and prefill.
    /// A speculative prepare (`stale` given) stops after the encoder when
    /// `stale()` says it was withdrawn meanwhile (the speech went on), before
    /// the prompt and the prefill touch the dialogue.
    pub fn prepare(
        &mut self,
        dialogue: &mut Dialogue,
        input: UserInput,
        speech_end: Instant,
        stale: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<Prepared> {
        let speculative = stale.is_some();
        let omni = self.omni;
        let mut warnings = Vec::new();
        let t = Stopwatch::start();
        let (user, audio_ms) = match input {
            UserInput::Speech(audio) => {
                if audio.len() > N_SAMPLES {
                    warnings.push(format!(
                        "turn audio is {:.1} s, longer than Whisper's 30 s window: it is encoded in {} consecutive \
                         30 s windows (the reference would cut it at 30 s)",
                        audio.len() as f64 / SAMPLE_RATE as f64,
                        audio.len().div_ceil(N_SAMPLES)
                    ));
                }
                let audio_ms = (audio.len() as u64 * 1000) / SAMPLE_RATE as u64;
                (
                    UserTurn::Speech(Box::new(speech_embeddings(omni, &audio)?.embeds)),
                    audio_ms,
                )
            }
            UserInput::Text(text) => (UserTurn::Text(text), 0),
        };
        let encode_ms = t.ms();
        if let Some(stale) = stale {
            if stale() {
                return Err(crate::Error::InvalidInput(
                    "speculative start withdrawn".into(),
                ));
            }
        }
        let g = &self.opts.generation;
        let prompt = dialogue.next_prompt(&omni.tokenizer, user, g.max_new_tokens)?;
        if prompt.rebuilt && prompt.dropped_turns > 0 {
            warnings.push(format!(
                "context limit of {} positions reached: dropped the {} oldest turn(s) and rebuilt the history",
                self.opts.max_context, prompt.dropped_turns
            ));
        }
        let embeds = omni.llm.splice_speech(&prompt.ids, &prompt.speech)?;
        let t = Stopwatch::start();
        let last = Generation::prefill(&omni.llm, &mut dialogue.cache, embeds)?;
        let prefill_ms = t.ms();
        Ok(Prepared {
            last,
            answer_start: dialogue.cache.len(),
            audio_ms,
            warnings,
            encode_ms,
            prefill_ms,
            speech_end,
            speculative,
        })
    }

    /// Generates and streams the answer of a prepared turn; returns its trace
    /// (None if it failed or never started).
    /// `snap` is the dialogue before `prepare`: a turn whose question continued
    /// ([`InterruptReason::Resumed`]) is rolled back to it.
    pub fn answer(
        &mut self,
        dialogue: &mut Dialogue,
        snap: Snapshot,
        turn: u32,
        prepared: Result<Prepared>,
        committed_at: Instant,
    ) -> Option<AnswerTrace> {
        let p = match prepared {
            Ok(p) => p,
            Err(e) => {
                // A turn that failed is not in the history.
                dialogue.rollback(snap);
                let code = if matches!(e, crate::Error::Audio(_) | crate::Error::InvalidInput(_)) {
                    ErrorCode::InvalidInput
                } else {
                    ErrorCode::Model
                };
                turn_error(self.out, turn, code, e.to_string());
                return None;
            }
        };
        if self.out.cancelled(turn) {
            self.not_started(turn);
            if self.out.reason(turn) == InterruptReason::Resumed {
                dialogue.rollback(snap);
            } else {
                // The prompt is in the cache with no answer: close it.
                dialogue.finish_turn(Vec::new(), None, p.answer_start);
            }
            return None;
        }
        match self.generate(dialogue, snap.clone(), turn, p, committed_at) {
            Ok(trace) => trace,
            Err(e) => {
                dialogue.rollback(snap);
                turn_error(self.out, turn, ErrorCode::Model, e.to_string());
                None
            }
        }
    }

    fn generate(
        &mut self,
        dialogue: &mut Dialogue,
        snap: Snapshot,
        turn: u32,
        p: Prepared,
        committed_at: Instant,
    ) -> Result<Option<AnswerTrace>> {
        let omni = self.omni;
        let out = self.out;
        let ended = p.speech_end;
        let mut timings = Timings {
            endpoint_wait_ms: committed_at.saturating_duration_since(ended).as_secs_f64() * 1e3,
            speculative: p.speculative,
            encode_ms: p.encode_ms,
            prefill_ms: p.prefill_ms,
            ..Timings::default()
        };
        out.emit(
            turn,
            Event::TurnStarted {
                turn,
                audio_ms: p.audio_ms,
            },
        );
        for message in p.warnings {
            log::warn!("turn {turn}: {message}");
            out.emit(turn, Event::Warning { message });
        }
        let rate = omni.vocoder.sample_rate();
        let mut gen = Generation::from_prefill(
            &omni.llm,
            &mut dialogue.cache,
            p.last,
            self.opts.generation.clone(),
        );
        let mut text_stream = omni.tokenizer.text_stream(true);
        let mut units = UnitStream::new(&omni.speech_generator);
        let mut voc = VocoderStream::new(&omni.vocoder, self.opts.vocoder)?;
        let mut seq = 0u32;
        let mut text = String::new();
        let mut tokens = Vec::new();
        let mut units_after_token = Vec::new();
        let t_decode = Instant::now();
        let mut samples_sent = 0u64;
        let mut decode_ms = 0f64;
        let mut interrupted: Option<InterruptReason> = None;

        let send_audio = |pcm: Vec<f32>, seq: &mut u32, timings: &mut Timings, sent: &mut u64| {
            if pcm.is_empty() {
                return;
            }
            if timings.first_audio_ms.is_none() {
                timings.first_audio_ms = Some(ms(ended));
            }
            *sent += pcm.len() as u64;
            out.shared.mark_audio(turn);
            let e = Event::Audio {
                turn,
                seq: *seq,
                pcm,
                sample_rate: rate,
            };
            *seq += 1;
            out.emit(turn, e);
        };

        loop {
            if out.cancelled(turn) {
                interrupted = Some(out.reason(turn));
                break;
            }
            let t = Stopwatch::start();
            let Some(step) = gen.next_step()? else { break };
            decode_ms += t.ms();
            tokens.push(step.token);
            let delta = text_stream.push(step.token)?;
            // One event per token (the text may be empty: a special token, or
            // bytes of a character that the next token completes).
            if timings.first_text_ms.is_none() && !delta.is_empty() {
                timings.first_text_ms = Some(ms(ended));
            }
            text.push_str(&delta);
            out.emit(
                turn,
                Event::TextDelta {
                    turn,
                    text: delta,
                    token: step.token,
                },
            );
            let t = Stopwatch::start();
            let new_units = units.push(step.hidden)?;
            timings.speech_decoder_ms += t.ms();
            timings.units += new_units.len();
            units_after_token.push(timings.units);
            if new_units.is_empty() {
                continue;
            }
            out.emit(
                turn,
                Event::Units {
                    turn,
                    units: new_units.clone(),
                },
            );
            if !out.cancelled(turn) {
                let t = Stopwatch::start();
                let pcm = voc.push(&new_units)?;
                let v_ms = t.ms();
                timings.vocoder_ms += v_ms;
                if timings.first_audio_ms.is_none() && !pcm.is_empty() {
                    timings.tokens_to_first_audio = tokens.len();
                    timings.speech_decoder_ms_to_first_audio = timings.speech_decoder_ms;
                    timings.vocoder_ms_first_chunk = v_ms;
                    timings.decode_ms_to_first_audio = decode_ms;
                }
                send_audio(pcm, &mut seq, &mut timings, &mut samples_sent);
            }
        }
        // Text the stream held back (a trailing space, a partial word): flushed
        // without a token of its own (NO_TOKEN).
        let rest = text_stream.flush()?;
        if !rest.is_empty() {
            text.push_str(&rest);
            out.emit(
                turn,
                Event::TextDelta {
                    turn,
                    text: rest,
                    token: NO_TOKEN,
                },
            );
        }
        let unfed = gen.unfed_token();
        let produced = gen.produced();
        drop(gen);
        timings.tokens = produced;
        let decode_s = t_decode.elapsed().as_secs_f64();
        timings.tokens_per_s = if decode_s > 0.0 {
            produced as f64 / decode_s
        } else {
            0.0
        };

        let last = match interrupted {
            Some(reason) => Event::Interrupted { turn, reason, text },
            None => {
                let t = Stopwatch::start();
                let pcm = voc.flush()?;
                timings.vocoder_ms += t.ms();
                send_audio(pcm, &mut seq, &mut timings, &mut samples_sent);
                timings.total_ms = ms(ended);
                timings.audio_s = samples_sent as f64 / rate as f64;
                timings.real_time_factor = if timings.audio_s > 0.0 {
                    timings.total_ms / 1e3 / timings.audio_s
                } else {
                    0.0
                };
                Event::TurnDone {
                    turn,
                    text,
                    timings,
                }
            }
        };
        if interrupted == Some(InterruptReason::Resumed) {
            // The question goes on in the next turn: this one never happened.
            dialogue.rollback(snap);
            out.finish(turn, last);
            return Ok(None);
        }
        dialogue.finish_turn(tokens, unfed, p.answer_start);
        let trace = AnswerTrace {
            turn,
            units_after_token,
            unit_ends: voc.unit_ends().to_vec(),
            samples_sent,
        };
        out.finish(turn, last);
        Ok(Some(trace))
    }
}

#[cfg(test)]
mod tests {
    use super::AnswerTrace;

    fn trace() -> AnswerTrace {
        // Tokens 0..4 produce 0, 2, 0, 1 units; units end at 100, 250, 300.
        AnswerTrace {
            turn: 1,
            units_after_token: vec![0, 2, 2, 3],
            unit_ends: vec![100, 250, 300],
            samples_sent: 300,
        }
    }

    #[test]
    fn nothing_played_keeps_no_token() {
        assert_eq!(trace().tokens_heard(0), 0);
        assert_eq!(trace().tokens_heard(99), 0);
    }

    #[test]
    fn a_token_is_kept_once_all_of_its_units_were_played() {
        // One unit played: token 0 (no units of its own) only.
        assert_eq!(trace().tokens_heard(100), 1);
        // Two units: tokens 0..=2 (token 2 adds none).
        assert_eq!(trace().tokens_heard(299), 3);
        assert_eq!(trace().tokens_heard(300), 4);
    }
}
