//! The generation worker: one thread per session, answering committed turns
//! one at a time, streaming text, units and audio events as they are made.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use super::dialogue::Dialogue;
use super::events::{ErrorCode, Event, InterruptReason, Timings, NO_TOKEN};
use super::queue::EventQueue;
use super::SessionOptions;
use crate::audio::{N_SAMPLES, SAMPLE_RATE};
use crate::bundle::Omni;
use crate::llama::generate::Generation;
use crate::pipeline::speech_embeddings;
use crate::speech_decoder::UnitStream;
use crate::vocoder::stream::{StreamConfig, VocoderStream};
use crate::Result;

pub(crate) enum Command {
    Turn { turn: u32, audio: Vec<f32>, ended_at: Instant },
    Reset,
}

/// Flags shared with the session handle.
#[derive(Default)]
pub(crate) struct Flags {
    /// Stop the answer being generated.
    pub cancel: AtomicBool,
    /// Why it was stopped (true: barge-in).
    pub barge_in: AtomicBool,
    /// A turn is being answered.
    pub busy: AtomicBool,
    /// The worker died; the session is unusable.
    pub failed: AtomicBool,
}

/// Sends events and reads the cancel flags.
pub(crate) struct Emitter {
    pub queue: Arc<EventQueue>,
    pub flags: Arc<Flags>,
}

impl Emitter {
    fn cancelled(&self) -> bool {
        self.flags.cancel.load(Ordering::SeqCst)
    }

    /// Sends a generation-side event, waiting while the queue is full (unless
    /// the answer is cancelled meanwhile: then it returns false).
    fn emit(&self, e: Event) -> bool {
        let flags = self.flags.clone();
        self.queue.push_wait(e, &move || flags.cancel.load(Ordering::SeqCst))
    }

    fn reason(&self) -> InterruptReason {
        if self.flags.barge_in.load(Ordering::SeqCst) {
            InterruptReason::BargeIn
        } else {
            InterruptReason::Cancel
        }
    }
}

pub(crate) struct Worker {
    pub omni: Arc<Omni>,
    pub opts: SessionOptions,
    pub out: Emitter,
    pub dialogue: Dialogue,
}

enum Outcome {
    Done,
    Interrupted(InterruptReason),
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Worker {
    pub fn run(mut self, rx: Receiver<Command>) {
        while let Ok(cmd) = rx.recv() {
            match cmd {
                Command::Reset => self.dialogue.reset(),
                Command::Turn { turn, audio, ended_at } => {
                    self.out.flags.busy.store(true, Ordering::SeqCst);
                    if let Err(e) = self.turn(turn, audio, ended_at) {
                        self.out.flags.cancel.store(false, Ordering::SeqCst);
                        self.out.queue.push_now(Event::Error {
                            code: ErrorCode::Model,
                            message: e.to_string(),
                            recoverable: true,
                        });
                    }
                    self.out.flags.busy.store(false, Ordering::SeqCst);
                }
            }
        }
    }

    fn turn(&mut self, turn: u32, audio: Vec<f32>, ended_at: Instant) -> Result<()> {
        let omni = self.omni.clone();
        let out = &self.out;
        // A barge-in or cancel that came between turns does not stop this one.
        out.flags.cancel.store(false, Ordering::SeqCst);
        out.flags.barge_in.store(false, Ordering::SeqCst);
        let audio_ms = (audio.len() as u64 * 1000) / SAMPLE_RATE as u64;
        out.emit(Event::TurnStarted { turn, audio_ms });
        if audio.len() > N_SAMPLES {
            out.emit(Event::Warning {
                message: format!(
                    "turn audio is {:.1} s, longer than Whisper's 30 s window: it is encoded in {} consecutive 30 s \
                     windows (the reference would cut it at 30 s)",
                    audio.len() as f64 / SAMPLE_RATE as f64,
                    audio.len().div_ceil(N_SAMPLES)
                ),
            });
        }
        let mut timings = Timings::default();
        let speech = speech_embeddings(&omni, &audio)?;
        timings.encode_ms = speech.elapsed_ms;

        let g = self.opts.generation.clone();
        let prompt = self.dialogue.next_prompt(&omni.tokenizer, speech.embeds, g.max_new_tokens)?;
        if prompt.rebuilt {
            out.emit(Event::Warning {
                message: format!(
                    "context limit of {} positions reached: dropped the {} oldest turn(s) and rebuilt the history",
                    self.opts.max_context, prompt.dropped_turns
                ),
            });
        }
        let embeds = omni.llm.splice_speech(&prompt.ids, &prompt.speech)?;
        let t_prefill = Instant::now();
        let mut gen = Generation::start(&omni.llm, &mut self.dialogue.cache, embeds, g)?;
        timings.prefill_ms = ms(t_prefill);

        let mut text_stream = omni.tokenizer.text_stream(true);
        let mut units = UnitStream::new(&omni.speech_generator);
        let mut voc = VocoderStream::new(&omni.vocoder, StreamConfig { chunk_units: 1, ..self.opts.vocoder })?;
        let mut unvoiced: Vec<u32> = Vec::new();
        let mut chunk_target = self.opts.first_chunk_units.max(1);
        let mut seq = 0u32;
        let mut text = String::new();
        let mut tokens = Vec::new();
        let t_decode = Instant::now();
        let mut audio_samples = 0usize;
        let mut decode_ms = 0f64;

        let mut send_audio = |pcm: Vec<f32>, seq: &mut u32, timings: &mut Timings| -> bool {
            if pcm.is_empty() {
                return true;
            }
            if timings.first_audio_ms.is_none() {
                timings.first_audio_ms = Some(ms(ended_at));
            }
            audio_samples += pcm.len();
            let e = Event::Audio { turn, seq: *seq, pcm, sample_rate: SAMPLE_RATE };
            *seq += 1;
            out.emit(e)
        };

        let mut outcome = Outcome::Done;
        loop {
            if out.cancelled() {
                outcome = Outcome::Interrupted(out.reason());
                break;
            }
            let t_step = Instant::now();
            let Some(step) = gen.next_step()? else { break };
            decode_ms += ms(t_step);
            tokens.push(step.token);
            let delta = text_stream.push(step.token)?;
            // One event per token (the text may be empty: a special token, or
            // bytes of a character that the next token completes).
            if timings.first_text_ms.is_none() && !delta.is_empty() {
                timings.first_text_ms = Some(ms(ended_at));
            }
            text.push_str(&delta);
            out.emit(Event::TextDelta { turn, text: delta, token: step.token });
            let t_sd = Instant::now();
            let new_units = units.push(&omni.speech_generator, step.hidden)?;
            timings.speech_decoder_ms += ms(t_sd);
            if !new_units.is_empty() {
                unvoiced.extend(&new_units);
                timings.units += new_units.len();
                out.emit(Event::Units { turn, units: new_units });
            }
            if unvoiced.len() >= chunk_target && !out.cancelled() {
                let t_v = Instant::now();
                let pcm = voc.push(&unvoiced)?;
                let v_ms = ms(t_v);
                timings.vocoder_ms += v_ms;
                if timings.first_audio_ms.is_none() && !pcm.is_empty() {
                    timings.tokens_to_first_audio = tokens.len();
                    timings.speech_decoder_ms_to_first_audio = timings.speech_decoder_ms;
                    timings.vocoder_ms_first_chunk = v_ms;
                    timings.decode_ms_to_first_audio = decode_ms;
                }
                unvoiced.clear();
                chunk_target = self.opts.chunk_units.max(1);
                send_audio(pcm, &mut seq, &mut timings);
            }
        }
        // Text the stream held back (a trailing space, a partial word): flushed
        // without a token of its own.
        let rest = text_stream.finish()?;
        if !rest.is_empty() {
            text.push_str(&rest);
            out.emit(Event::TextDelta { turn, text: rest, token: NO_TOKEN });
        }
        let unfed = gen.unfed_token();
        let produced = gen.produced();
        drop(gen);
        timings.tokens = produced;
        let decode_s = t_decode.elapsed().as_secs_f64();
        timings.tokens_per_s = if decode_s > 0.0 { produced as f64 / decode_s } else { 0.0 };

        let last = match outcome {
            Outcome::Interrupted(reason) => Event::Interrupted { turn, reason, text },
            Outcome::Done => {
                let t_v = Instant::now();
                let mut pcm = if unvoiced.is_empty() { Vec::new() } else { voc.push(&unvoiced)? };
                pcm.extend(voc.flush()?);
                timings.vocoder_ms += ms(t_v);
                send_audio(pcm, &mut seq, &mut timings);
                timings.total_ms = ms(ended_at);
                timings.audio_s = audio_samples as f64 / SAMPLE_RATE as f64;
                timings.real_time_factor =
                    if timings.audio_s > 0.0 { timings.total_ms / 1e3 / timings.audio_s } else { 0.0 };
                Event::TurnDone { turn, text, timings }
            }
        };
        self.dialogue.finish_turn(tokens, unfed);
        // Not busy before the last event: a user who sees it and speaks again
        // starts the next turn, not a barge-in.
        out.flags.cancel.store(false, Ordering::SeqCst);
        out.flags.barge_in.store(false, Ordering::SeqCst);
        out.flags.busy.store(false, Ordering::SeqCst);
        out.queue.push_now(last);
        Ok(())
    }
}
