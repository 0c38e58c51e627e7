//! The session engine: push audio (or text), pull events.
//!
//! A [`Session`] is one conversation over a shared [`Omni`]. Audio is pushed
//! from any thread (f32 or i16, any rate, any chunk size); a worker thread
//! answers each turn, streaming [`Event`]s: text deltas, units and audio chunks
//! interleaved, so audio for the first units arrives before the text is done.
//! Pull them with [`Session::next_event`]. The event queue is bounded: a
//! consumer that stops pulling pauses generation.
//!
//! Turns end in one of two ways ([`EndpointOptions::enabled`]):
//! - **explicit** (files, push-to-talk): [`Session::end_turn`]; the turn is
//!   every sample pushed since the last turn, as the reference encodes a file;
//! - **live** (microphones): the voice detector ends the turn on trailing
//!   silence. The encoder, adaptor and prefill start speculatively when the
//!   speech ends and are thrown away if it resumes; a question the user goes
//!   on with shortly after the endpoint, before any answer was played, is one
//!   question (the pending answer is dropped, [`InterruptReason::Resumed`]).
//!
//! A turn may also be typed text ([`Session::push_text`]).
//!
//! Every committed turn ends with exactly one of `TurnDone`, `Interrupted` or
//! `Error`. Barge-in: speech heard while an answer is pending cancels it (when
//! [`SessionOptions::barge_in`] is on) and becomes the next turn;
//! [`Session::cancel`] stops answers on request. The history keeps of an
//! answer only what the app reports as played ([`Session::played`]; without
//! reports, every sample it was sent).

mod dialogue;
pub mod events;
mod input;
mod queue;
mod shared;
mod turn;
mod turn_audio;
mod worker;

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use dialogue::{History, HistoryTurn};
pub use events::{ErrorCode, Event, InterruptReason, Timings, NO_TOKEN};
pub use input::EndpointOptions;

use crate::bundle::Omni;
use crate::model::llama::generate::GenerationParams;
use crate::model::llama::prompt::{DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_MESSAGE};
use crate::model::llama::sampling::SamplingParams;
use crate::model::vocoder::stream::StreamConfig;
use crate::{Error, Result};
use dialogue::Dialogue;
use input::{Input, InputAction};
use queue::EventQueue;
use shared::Shared;
use turn::UserInput;
use worker::{Command, Emitter, Worker};

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Text generation (max tokens, sampling and its seed, stop ids).
    pub generation: GenerationParams,
    /// Audio chunking: units in the first chunk (small: time to first audio), in
    /// later chunks (Ω), and how chunks are joined (see [`crate::model::vocoder::stream`]).
    pub vocoder: StreamConfig,
    /// End of turn: live (voice detector) or explicit (`end_turn`).
    pub endpoint: EndpointOptions,
    /// Speech during an answer cancels it and starts the next turn.
    pub barge_in: bool,
    pub system_prompt: String,
    /// The user message around the speech (`<speech>` marks where it goes,
    /// exactly once); the reference's:
    /// `"<speech>\nPlease directly answer the questions in the user's speech."`
    pub user_message: String,
    /// Context positions kept (oldest turns are dropped beyond it).
    pub max_context: usize,
    /// Generation-side events buffered before generation pauses.
    pub event_capacity: usize,
}

impl SessionOptions {
    /// Defaults for a model: greedy decoding (the reference), its stop ids,
    /// 256 new tokens, a 10-unit first chunk then Ω = 40, live endpointing
    /// (speculative start, 1.5 s resume grace) and barge-in on.
    pub fn for_model(omni: &Omni) -> Self {
        SessionOptions {
            generation: GenerationParams {
                max_new_tokens: 256,
                sampling: SamplingParams::default(),
                stop_ids: omni.config.llm.eos_ids(),
            },
            vocoder: StreamConfig::smooth(40).with_first_chunk(10),
            endpoint: EndpointOptions::default(),
            barge_in: true,
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_string(),
            user_message: DEFAULT_USER_MESSAGE.to_string(),
            max_context: omni.config.llm.max_position_embeddings.min(8192),
            event_capacity: 256,
        }
    }

    /// The same for files and push-to-talk: explicit turns (`end_turn`).
    pub fn explicit_turns(omni: &Omni) -> Self {
        let mut o = Self::for_model(omni);
        o.endpoint.enabled = false;
        o
    }

    /// Checks every option against the model, naming the field at fault.
    fn validate(&self, omni: &Omni) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        let model_max = omni.config.llm.max_position_embeddings;
        if self.vocoder.first_chunk_units == 0 || self.vocoder.chunk_units == 0 {
            return bad("first_chunk_units and chunk_units must be at least 1".into());
        }
        if self.generation.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1".into());
        }
        if self.max_context == 0 || self.max_context > model_max {
            return bad(format!(
                "max_context {} must be in 1..={model_max} (the model's context)",
                self.max_context
            ));
        }
        if self.event_capacity == 0 || self.event_capacity > 1 << 20 {
            return bad(format!(
                "event_capacity {} must be in 1..=1048576",
                self.event_capacity
            ));
        }
        if self.system_prompt.contains("<speech>") {
            return bad("system_prompt must not contain <speech>".into());
        }
        if self.user_message.matches("<speech>").count() != 1 {
            return bad("user_message must contain <speech> exactly once".into());
        }
        if self.endpoint.max_turn_s == 0 {
            return bad("max_turn_s must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.endpoint.threshold) {
            return bad(format!(
                "vad_threshold {} must be in [0, 1]",
                self.endpoint.threshold
            ));
        }
        Ok(())
    }
}

struct InputSide {
    input: Input,
    /// The turn committed by the last endpoint, while it may still continue.
    resumable_turn: Option<u32>,
}

/// One conversation. `Session` is `Send + Sync`: `push_audio` may be called
/// from an audio thread while another thread pulls events.
pub struct Session {
    input: Mutex<InputSide>,
    tx: Mutex<Option<Sender<Command>>>,
    out: Arc<EventQueue>,
    shared: Arc<Shared>,
    history: Arc<Mutex<History>>,
    worker: Option<JoinHandle<()>>,
    barge_in: bool,
    max_new_tokens: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session")
    }
}

impl Session {
    /// Starts a session (and its worker thread) over a shared model. Options
    /// that cannot work are refused here with [`Error::InvalidInput`] naming
    /// the field, not at the first turn.
    pub fn new(omni: Arc<Omni>, opts: SessionOptions) -> Result<Session> {
        opts.validate(&omni)?;
        let queue = Arc::new(EventQueue::new(opts.event_capacity));
        let shared = Arc::new(Shared::default());
        let history = Arc::new(Mutex::new(History::default()));
        let dialogue = Dialogue::new(
            &omni.tokenizer,
            omni.llm.new_cache(),
            &opts.system_prompt,
            &opts.user_message,
            opts.max_context,
            history.clone(),
        )?;
        // The smallest spoken turn (one 30 s window) must fit with its answer.
        let window = omni.encoder.config.n_audio_ctx / omni.adaptor.k.max(1);
        let need =
            dialogue.fixed_positions(&omni.tokenizer)? + window + opts.generation.max_new_tokens;
        if need > opts.max_context {
            return Err(Error::InvalidInput(format!(
                "max_new_tokens {} plus a prompt of {} positions (system prompt, user message, one 30 s speech \
                 window) does not fit max_context {}",
                opts.generation.max_new_tokens,
                need - opts.generation.max_new_tokens,
                opts.max_context
            )));
        }
        let (tx, rx) = channel();
        let barge_in = opts.barge_in;
        let endpoint = opts.endpoint;
        let max_new_tokens = opts.generation.max_new_tokens;
        let worker = Worker {
            omni,
            opts,
            out: Emitter {
                queue: queue.clone(),
                shared: shared.clone(),
            },
            dialogue,
        };
        let wshared = shared.clone();
        let wqueue = queue.clone();
        let handle = std::thread::Builder::new()
            .name("omni-session".into())
            .spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run(rx)));
                if r.is_err() {
                    log::error!("the session worker panicked; the session is failed");
                    wshared
                        .failed
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    wqueue.push_now(Event::Error {
                        code: ErrorCode::Internal,
                        message: "the session worker panicked; create a new session".into(),
                        recoverable: false,
                    });
                }
            })
            .map_err(|e| Error::SessionFailed(format!("cannot start the session thread: {e}")))?;
        Ok(Session {
            input: Mutex::new(InputSide {
                input: Input::new(endpoint),
                resumable_turn: None,
            }),
            tx: Mutex::new(Some(tx)),
            out: queue,
            shared,
            history,
            worker: Some(handle),
            barge_in,
            max_new_tokens,
        })
    }

    fn check_alive(&self) -> Result<()> {
        if self.shared.failed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::SessionFailed(
                "the session worker panicked; create a new session".into(),
            ));
        }
        Ok(())
    }

    fn send(&self, cmd: Command) -> Result<()> {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref() {
            Some(tx) => tx
                .send(cmd)
                .map_err(|_| Error::SessionFailed("the session worker has stopped".into())),
            None => Err(Error::SessionFailed("the session is closed".into())),
        }
    }

    /// Pushes mono f32 samples in [-1, 1] at `sample_rate` Hz. Any chunk
    /// size and rate (1000..=384000 Hz); an empty push is a no-op. NaN/inf
    /// samples or a bad rate are rejected and nothing is kept.
    pub fn push_audio(&self, samples: &[f32], sample_rate: u32) -> Result<()> {
        self.check_alive()?;
        let mut guard = self.input.lock().unwrap_or_else(|p| p.into_inner());
        let side = &mut *guard;
        let resumable_turn = &mut side.resumable_turn;
        let mut sink = |a: InputAction| -> Result<bool> {
            match a {
                InputAction::SpeechStarted { at_ms, resumable } => {
                    self.out.push_input(Event::SpeechStarted { at_ms });
                    if resumable {
                        if let Some(turn) = resumable_turn.take() {
                            if self.try_resume(turn) {
                                return Ok(true);
                            }
                        }
                    }
                    *resumable_turn = None;
                    if self.barge_in {
                        self.shared.cancel_all(InterruptReason::BargeIn);
                    }
                    Ok(false)
                }
                InputAction::Paused { audio, speech_end } => {
                    self.send(Command::Prepare { audio, speech_end })?;
                    Ok(false)
                }
                InputAction::Unpaused => {
                    self.send(Command::Discard)?;
                    Ok(false)
                }
                InputAction::Endpoint {
                    at_ms,
                    audio,
                    speech_end,
                } => {
                    self.out.push_input(Event::SpeechEnded { at_ms });
                    let turn = self.shared.commit();
                    *resumable_turn = Some(turn);
                    let committed_at = Instant::now();
                    match audio {
                        None => self.send(Command::Commit { turn, committed_at })?,
                        Some(a) => self.send(Command::Turn {
                            turn,
                            input: UserInput::Speech(a),
                            speech_end,
                            committed_at,
                        })?,
                    }
                    Ok(false)
                }
            }
        };
        side.input.push(samples, sample_rate, &mut sink)
    }

    /// Drops the pending answer of `turn` so its question can continue, if
    /// none of it was played and it is the only turn pending.
    fn try_resume(&self, turn: u32) -> bool {
        let s = &self.shared;
        // Only the last committed turn, not yet finished, with every earlier one finished.
        if s.committed() != turn || s.finished() + 1 != turn {
            return false;
        }
        if s.played(turn).unwrap_or(0) > 0 || self.out_audio_sent(turn) {
            return false;
        }
        s.cancel_upto(turn, InterruptReason::Resumed);
        let seen = self.out.discard_turn(turn);
        if seen {
            // The consumer saw the turn begin: tell it the turn ended here.
            self.out.undiscard(turn);
        }
        true
    }

    /// Whether audio of `turn` was generated (without `played` reports every
    /// generated sample counts as played).
    fn out_audio_sent(&self, turn: u32) -> bool {
        self.shared.played(turn).is_none() && self.shared.audio_generated(turn)
    }

    /// Pushes 16-bit PCM (scaled by 1/32768, as the reference loads audio).
    pub fn push_audio_i16(&self, samples: &[i16], sample_rate: u32) -> Result<()> {
        let f: Vec<f32> = samples
            .iter()
            .map(|&s| crate::audio::i16_to_f32(s))
            .collect();
        self.push_audio(&f, sample_rate)
    }

    /// Ends the user's turn now: the turn is every sample pushed since the
    /// last turn (nothing trimmed). A turn without audio, or in which the voice
    /// detector heard no speech, gives an [`ErrorCode::NoSpeech`] error event
    /// and is dropped.
    pub fn end_turn(&self) -> Result<()> {
        self.check_alive()?;
        let mut side = self.input.lock().unwrap_or_else(|p| p.into_inner());
        side.resumable_turn = None;
        let heard = side.input.heard_speech;
        let audio = side.input.take_turn()?;
        if audio.is_empty() || !heard {
            self.out.push_now(Event::Error {
                code: ErrorCode::NoSpeech,
                message: if audio.is_empty() {
                    "end of turn without audio".into()
                } else {
                    format!(
                        "no speech was heard in this turn ({:.2} s of audio without voice)",
                        audio.len() as f64 / crate::audio::SAMPLE_RATE as f64
                    )
                },
                recoverable: true,
            });
            return Ok(());
        }
        let turn = self.shared.commit();
        let now = Instant::now();
        self.send(Command::Turn {
            turn,
            input: UserInput::Speech(audio),
            speech_end: now,
            committed_at: now,
        })
    }

    /// A typed user turn: answered with text and speech like a spoken one, in
    /// the same history (the llama_3 template with `text` as the user message).
    /// Audio pushed so far stays for the next spoken turn.
    pub fn push_text(&self, text: &str) -> Result<()> {
        self.check_alive()?;
        if text.trim().is_empty() {
            return Err(Error::InvalidInput("push_text: the text is empty".into()));
        }
        self.input
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .resumable_turn = None;
        let turn = self.shared.commit();
        let now = Instant::now();
        self.send(Command::Turn {
            turn,
            input: UserInput::Text(text.to_string()),
            speech_end: now,
            committed_at: now,
        })
    }

    /// Tells the session that the app has played the first `samples` samples
    /// of `turn`'s answer audio (cumulative; call as playback advances). When
    /// the answer is interrupted, or the next turn starts before it was all
    /// played, the history keeps only the tokens whose audio was played
    /// (none if nothing was). Without calls, every sample sent counts as played.
    pub fn played(&self, turn: u32, samples: u64) {
        self.shared.set_played(turn, samples);
    }

    /// Stops every committed answer: the one being generated and those still
    /// waiting (each ends with `Interrupted { reason: Cancel }`). A no-op when
    /// none is pending. Does not wait.
    pub fn cancel(&self) {
        self.shared.cancel_all(InterruptReason::Cancel);
    }

    /// Whether a committed turn has not had its last event yet (true from
    /// `end_turn` / the endpoint / `push_text` on).
    pub fn is_busy(&self) -> bool {
        self.shared.busy()
    }

    /// Forgets the conversation: cancels every committed answer (as
    /// [`Session::cancel`]), drops the input audio not yet in a turn, and clears
    /// the history. Events already queued stay to be pulled.
    pub fn reset(&self) -> Result<()> {
        self.shared.cancel_all(InterruptReason::Cancel);
        let mut side = self.input.lock().unwrap_or_else(|p| p.into_inner());
        side.input.reset();
        side.resumable_turn = None;
        self.send(Command::Reset)
    }

    /// What the model's context holds now: the turns (answers as kept) and
    /// the prompt ids.
    pub fn history(&self) -> History {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The most tokens one answer may have.
    pub fn max_new_tokens(&self) -> usize {
        self.max_new_tokens
    }

    /// The next event, waiting up to `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.out.pop(timeout)
    }

    /// Events waiting to be pulled.
    pub fn pending_events(&self) -> usize {
        self.out.len()
    }
}

impl Drop for Session {
    /// Cancels every committed turn, drops queued events and joins the worker
    /// (it stops at the model step in flight).
    fn drop(&mut self) {
        self.shared.cancel_upto(u32::MAX, InterruptReason::Cancel);
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.out.clear();
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
        self.out.clear();
    }
}
