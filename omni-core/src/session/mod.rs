//! The session engine: push audio, pull events.
//!
//! A [`Session`] is one conversation over a shared [`Omni`]. Audio is pushed
//! from any thread (f32 or i16, any rate, any chunk size); an endpointer ends
//! turns on trailing silence (or call [`Session::end_turn`]); a worker thread
//! answers each turn, streaming [`Event`]s: text deltas, units and audio chunks
//! interleaved, so audio for the first units arrives before the text is done.
//! Pull them with [`Session::next_event`]. The event queue is bounded: a
//! consumer that stops pulling pauses generation.
//!
//! Barge-in: speech heard while an answer is being generated cancels it (when
//! [`SessionOptions::barge_in`] is on) and becomes the next turn;
//! [`Session::cancel`] stops an answer on request. Either way the part of the
//! answer already generated stays in the history, closed with `<|eot_id|>`.

mod dialogue;
pub mod events;
mod input;
mod queue;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use events::{ErrorCode, Event, InterruptReason, Timings, NO_TOKEN};
pub use input::EndpointOptions;

use crate::bundle::Omni;
use crate::llama::generate::GenerationParams;
use crate::llama::prompt::{DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_MESSAGE};
use crate::llama::sampling::SamplingParams;
use crate::vocoder::stream::StreamConfig;
use crate::{Error, Result};
use dialogue::Dialogue;
use input::{Input, InputAction};
use queue::EventQueue;
use worker::{Command, Emitter, Flags, Worker};

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Text generation (max tokens, sampling and its seed, stop ids).
    pub generation: GenerationParams,
    /// Units in the first audio chunk (small: time to first audio).
    pub first_chunk_units: usize,
    /// Units per later audio chunk (Ω).
    pub chunk_units: usize,
    /// How chunks are joined (see [`crate::vocoder::stream`]); the chunk size is
    /// taken from the two fields above.
    pub vocoder: StreamConfig,
    /// Automatic end of turn.
    pub endpoint: EndpointOptions,
    /// Speech during an answer cancels it and starts the next turn.
    pub barge_in: bool,
    pub system_prompt: String,
    /// The user message around the speech (`<speech>` marks where it goes);
    /// the reference's: "<speech>\nPlease directly answer the questions in the user's speech."
    pub user_message: String,
    /// Context positions kept (oldest turns are dropped beyond it).
    pub max_context: usize,
    /// Generation-side events buffered before generation pauses.
    pub event_capacity: usize,
}

impl SessionOptions {
    /// Defaults for a model: greedy decoding (the reference), its stop ids,
    /// 256 new tokens, a 10-unit first chunk then Ω = 40, endpointing and
    /// barge-in on.
    pub fn for_model(omni: &Omni) -> Self {
        SessionOptions {
            generation: GenerationParams {
                max_new_tokens: 256,
                sampling: SamplingParams::default(),
                stop_ids: omni.config.llm.eos_ids(),
            },
            first_chunk_units: 10,
            chunk_units: 40,
            vocoder: StreamConfig::smooth(40),
            endpoint: EndpointOptions::default(),
            barge_in: true,
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_string(),
            user_message: DEFAULT_USER_MESSAGE.to_string(),
            max_context: omni.config.llm.max_position_embeddings.min(8192),
            event_capacity: 256,
        }
    }
}

struct InputSide {
    input: Input,
    turn: u32,
}

/// One conversation. `Session` is `Send + Sync`: `push_audio` may be called
/// from an audio thread while another thread pulls events.
pub struct Session {
    input: Mutex<InputSide>,
    tx: Mutex<Option<Sender<Command>>>,
    out: Arc<EventQueue>,
    flags: Arc<Flags>,
    worker: Option<JoinHandle<()>>,
    barge_in: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session")
    }
}

impl Session {
    /// Starts a session (and its worker thread) over a shared model.
    pub fn new(omni: Arc<Omni>, opts: SessionOptions) -> Result<Session> {
        if opts.first_chunk_units == 0 || opts.chunk_units == 0 {
            return Err(Error::InvalidInput("unit chunk sizes must be at least 1".into()));
        }
        if opts.generation.max_new_tokens == 0 {
            return Err(Error::InvalidInput("max_new_tokens must be at least 1".into()));
        }
        let queue = Arc::new(EventQueue::new(opts.event_capacity));
        let flags = Arc::new(Flags::default());
        let dialogue = Dialogue::new(
            &omni.tokenizer,
            omni.llm.new_cache(),
            &opts.system_prompt,
            &opts.user_message,
            opts.max_context,
        )?;
        let (tx, rx) = channel();
        let barge_in = opts.barge_in;
        let endpoint = opts.endpoint;
        let worker = Worker {
            omni,
            opts,
            out: Emitter { queue: queue.clone(), flags: flags.clone() },
            dialogue,
        };
        let wflags = flags.clone();
        let wqueue = queue.clone();
        let handle = std::thread::Builder::new()
            .name("omni-session".into())
            .spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run(rx)));
                if r.is_err() {
                    wflags.failed.store(true, Ordering::SeqCst);
                    wqueue.push_now(Event::Error {
                        code: ErrorCode::Internal,
                        message: "the session worker panicked; create a new session".into(),
                        recoverable: false,
                    });
                }
            })
            .map_err(|e| Error::InvalidInput(format!("cannot start the session thread: {e}")))?;
        Ok(Session {
            input: Mutex::new(InputSide { input: Input::new(endpoint), turn: 0 }),
            tx: Mutex::new(Some(tx)),
            out: queue,
            flags,
            worker: Some(handle),
            barge_in,
        })
    }

    fn check_alive(&self) -> Result<()> {
        if self.flags.failed.load(Ordering::SeqCst) {
            return Err(Error::InvalidInput("the session failed (worker panicked); create a new one".into()));
        }
        Ok(())
    }

    fn send(&self, cmd: Command) -> Result<()> {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match tx.as_ref() {
            Some(tx) => tx.send(cmd).map_err(|_| Error::InvalidInput("the session worker has stopped".into())),
            None => Err(Error::InvalidInput("the session is closed".into())),
        }
    }

    fn commit(&self, side: &mut InputSide, audio: Vec<f32>, ended_at: Instant) -> Result<()> {
        side.turn += 1;
        self.send(Command::Turn { turn: side.turn, audio, ended_at })
    }

    /// Pushes mono f32 samples in [-1, 1] at `sample_rate` Hz (resampled to
    /// 16 kHz). Any chunk size; an empty push is a no-op. NaN/inf samples or
    /// a rate outside 1000..=384000 Hz are rejected and nothing is kept.
    pub fn push_audio(&self, samples: &[f32], sample_rate: u32) -> Result<()> {
        self.check_alive()?;
        let mut side = self.input.lock().unwrap_or_else(|p| p.into_inner());
        let actions = side.input.push(samples, sample_rate)?;
        for a in actions {
            match a {
                InputAction::SpeechStarted { at_ms } => {
                    self.out.push_now(Event::SpeechStarted { at_ms });
                    if self.barge_in && self.flags.busy.load(Ordering::SeqCst) {
                        self.flags.barge_in.store(true, Ordering::SeqCst);
                        self.flags.cancel.store(true, Ordering::SeqCst);
                    }
                }
                InputAction::Endpoint { at_ms, audio } => {
                    self.out.push_now(Event::SpeechEnded { at_ms });
                    self.commit(&mut side, audio, Instant::now())?;
                }
            }
        }
        Ok(())
    }

    /// Pushes 16-bit PCM (scaled by 1/32768, as the reference loads audio).
    pub fn push_audio_i16(&self, samples: &[i16], sample_rate: u32) -> Result<()> {
        let f: Vec<f32> = samples.iter().map(|&s| s as f32 / 32768.0).collect();
        self.push_audio(&f, sample_rate)
    }

    /// Ends the user's turn now (without waiting for the endpointer). A turn
    /// without audio, or in which no speech was heard, gives an
    /// [`ErrorCode::NoSpeech`] error event and is dropped.
    pub fn end_turn(&self) -> Result<()> {
        self.check_alive()?;
        let mut side = self.input.lock().unwrap_or_else(|p| p.into_inner());
        let heard = side.input.heard_speech;
        let audio = side.input.take_turn()?;
        if audio.is_empty() || !heard {
            self.out.push_now(Event::Error {
                code: ErrorCode::NoSpeech,
                message: if audio.is_empty() {
                    "end of turn without audio".into()
                } else {
                    "no speech was heard in this turn".into()
                },
                recoverable: true,
            });
            return Ok(());
        }
        self.commit(&mut side, audio, Instant::now())
    }

    /// Stops the answer being generated (no-op when none is).
    pub fn cancel(&self) {
        if self.flags.busy.load(Ordering::SeqCst) {
            self.flags.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Whether an answer is being generated.
    pub fn is_busy(&self) -> bool {
        self.flags.busy.load(Ordering::SeqCst)
    }

    /// Forgets the conversation (history and pending input) after the current answer.
    pub fn reset(&self) -> Result<()> {
        self.cancel();
        self.input.lock().unwrap_or_else(|p| p.into_inner()).input.reset();
        self.send(Command::Reset)
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
    fn drop(&mut self) {
        self.flags.cancel.store(true, Ordering::SeqCst);
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.out.clear();
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}
