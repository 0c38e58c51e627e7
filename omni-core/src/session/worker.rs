//! The generation worker: one thread per session, answering committed turns
//! one at a time, streaming text, units and audio events as they are made.
//!
//! Its inbox carries, in order: speculative `Prepare`s (encode + prefill the
//! turn's audio as soon as the speech ends), followed by the `Commit` that
//! confirms one or a `Discard` that withdraws it; plain `Turn`s (explicit end
//! of turn, typed text, or live turns without speculation); and `Reset`.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use super::dialogue::Dialogue;
use super::events::{ErrorCode, Event, InterruptReason};
use super::queue::EventQueue;
use super::shared::Shared;
use super::turn::{TurnRun, UserInput};
use super::SessionOptions;
use crate::bundle::Omni;

pub(crate) enum Command {
    /// Speculative start: encode and prefill this audio; a `Commit` or a
    /// `Discard` follows.
    Prepare {
        audio: Vec<f32>,
        speech_end: Instant,
    },
    /// The last `Prepare` is turn `turn`.
    Commit { turn: u32, committed_at: Instant },
    /// The last `Prepare` is withdrawn.
    Discard,
    /// Answer this turn.
    Turn {
        turn: u32,
        input: UserInput,
        speech_end: Instant,
        committed_at: Instant,
    },
    /// Forget the conversation.
    Reset,
}

/// Sends events and reads the cancel state of one turn.
pub(crate) struct Emitter {
    pub queue: Arc<EventQueue>,
    pub shared: Arc<Shared>,
}

impl Emitter {
    pub fn cancelled(&self, turn: u32) -> bool {
        self.shared.is_cancelled(turn)
    }

    /// Sends a generation-side event, waiting while the queue is full (unless
    /// the turn is cancelled meanwhile: then it returns false).
    pub fn emit(&self, turn: u32, e: Event) -> bool {
        let shared = self.shared.clone();
        self.queue.push_wait(e, &move || shared.is_cancelled(turn))
    }

    pub fn reason(&self, turn: u32) -> InterruptReason {
        self.shared.reason(turn)
    }

    /// Queues the last event of `turn` and marks it finished.
    pub fn finish(&self, turn: u32, last: Event) {
        // Not busy before the last event: a user who sees it and speaks again
        // starts the next turn, not a barge-in.
        self.shared.finish(turn);
        self.queue.push_now(last);
    }
}

/// The worker's inbox, with room to put a command back.
struct Inbox {
    rx: Receiver<Command>,
    front: VecDeque<Command>,
}

impl Inbox {
    fn next(&mut self) -> Option<Command> {
        self.front.pop_front().or_else(|| self.rx.recv().ok())
    }

    /// Whether a command that withdraws the last `Prepare` already waits
    /// (then preparing it is wasted work).
    fn prepare_is_stale(&mut self) -> bool {
        while let Ok(c) = self.rx.try_recv() {
            self.front.push_back(c);
        }
        matches!(
            self.front.front(),
            Some(Command::Discard | Command::Prepare { .. } | Command::Reset)
        )
    }
}

pub(crate) struct Worker {
    pub omni: Arc<Omni>,
    pub opts: SessionOptions,
    pub out: Emitter,
    pub dialogue: Dialogue,
}

impl Worker {
    pub fn run(mut self, rx: Receiver<Command>) {
        let mut inbox = Inbox {
            rx,
            front: VecDeque::new(),
        };
        // The last answer, for cutting the history to what was played.
        let mut last: Option<super::turn::AnswerTrace> = None;
        while let Some(cmd) = inbox.next() {
            match cmd {
                Command::Reset => {
                    self.dialogue.reset();
                    last = None;
                }
                Command::Discard | Command::Commit { .. } => {}
                Command::Prepare { audio, speech_end } => {
                    if inbox.prepare_is_stale() {
                        continue;
                    }
                    if let Some(t) = last.take() {
                        t.apply_played(&self.out.shared, &mut self.dialogue);
                    }
                    let mut run = TurnRun::new(&self.omni, &self.opts, &self.out);
                    let snap = self.dialogue.snapshot();
                    let mut stale = || inbox.prepare_is_stale();
                    let prepared = run.prepare(
                        &mut self.dialogue,
                        UserInput::Speech(audio),
                        speech_end,
                        Some(&mut stale),
                    );
                    match inbox.next() {
                        Some(Command::Commit { turn, committed_at }) => {
                            last =
                                run.answer(&mut self.dialogue, snap, turn, prepared, committed_at);
                        }
                        other => {
                            drop(prepared);
                            self.dialogue.rollback(snap);
                            if let Some(c) = other {
                                inbox.front.push_front(c);
                            }
                        }
                    }
                }
                Command::Turn {
                    turn,
                    input,
                    speech_end,
                    committed_at,
                } => {
                    if let Some(t) = last.take() {
                        t.apply_played(&self.out.shared, &mut self.dialogue);
                    }
                    let mut run = TurnRun::new(&self.omni, &self.opts, &self.out);
                    if self.out.cancelled(turn) {
                        // Cancelled before it started: never reaches the model.
                        run.not_started(turn);
                        continue;
                    }
                    let snap = self.dialogue.snapshot();
                    let prepared = run.prepare(&mut self.dialogue, input, speech_end, None);
                    last = run.answer(&mut self.dialogue, snap, turn, prepared, committed_at);
                }
            }
        }
    }
}

/// Reports a failed turn.
pub(crate) fn turn_error(out: &Emitter, turn: u32, code: ErrorCode, message: String) {
    log::warn!("turn {turn} failed ({code:?}): {message}");
    out.finish(
        turn,
        Event::Error {
            code,
            message,
            recoverable: true,
        },
    );
}
