//! State shared by the session handle (any thread) and its worker: which turns
//! were committed, finished and cancelled, and how much of each answer the
//! app has played.
//!
//! Cancellation is by turn number, not by a flag that the worker clears: a
//! cancel or a `free` applies to every turn committed so far, whether it is
//! being answered or still waits in the worker's inbox.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use super::events::InterruptReason;

/// Played-sample reports kept (older turns are forgotten).
const PLAYED_KEPT: usize = 16;

#[derive(Default)]
pub(crate) struct Shared {
    /// Turns committed so far: they are numbered `1..=committed`.
    committed: AtomicU32,
    /// Turns whose last event has been queued.
    finished: AtomicU32,
    /// Every turn numbered `<= cancel_upto` is cancelled.
    cancel_upto: AtomicU32,
    /// Why, per range: `(upto, reason)` in increasing `upto`; a turn's reason
    /// is that of the first range that holds it (the first cancel that hit it).
    reasons: Mutex<Vec<(u32, InterruptReason)>>,
    /// The highest turn whose answer has sent audio.
    audio_turn: AtomicU32,
    /// The worker died; the session is unusable.
    pub failed: AtomicBool,
    /// Samples of each turn's answer the app reported as played.
    played: Mutex<BTreeMap<u32, u64>>,
}

impl Shared {
    /// Numbers the next committed turn.
    pub fn commit(&self) -> u32 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn committed(&self) -> u32 {
        self.committed.load(Ordering::SeqCst)
    }

    /// The worker queued the last event of `turn`.
    pub fn finish(&self, turn: u32) {
        self.finished.fetch_max(turn, Ordering::SeqCst);
    }

    pub fn finished(&self) -> u32 {
        self.finished.load(Ordering::SeqCst)
    }

    /// Committed turns without their last event yet.
    pub fn busy(&self) -> bool {
        self.committed() > self.finished()
    }

    /// Cancels every turn up to `upto` (never lowers an earlier cancel; turns
    /// an earlier cancel already hit keep its reason).
    pub fn cancel_upto(&self, upto: u32, why: InterruptReason) {
        let mut r = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        if r.last().is_none_or(|&(u, _)| upto > u) {
            r.push((upto, why));
        }
        // Ranges of finished turns are no longer asked for.
        let finished = self.finished();
        while r.len() > 1 && r[0].0 <= finished {
            r.remove(0);
        }
        self.cancel_upto.fetch_max(upto, Ordering::SeqCst);
    }

    /// Cancels every turn committed so far (no-op when none is pending).
    pub fn cancel_all(&self, why: InterruptReason) {
        if self.busy() {
            self.cancel_upto(self.committed(), why);
        }
    }

    pub fn is_cancelled(&self, turn: u32) -> bool {
        turn <= self.cancel_upto.load(Ordering::SeqCst)
    }

    /// Why `turn` was cancelled.
    pub fn reason(&self, turn: u32) -> InterruptReason {
        let r = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .find(|&&(u, _)| turn <= u)
            .map_or(InterruptReason::Cancel, |&(_, why)| why)
    }

    /// The worker sent audio of `turn`.
    pub fn mark_audio(&self, turn: u32) {
        self.audio_turn.fetch_max(turn, Ordering::SeqCst);
    }

    /// Whether `turn`'s answer has sent audio.
    pub fn audio_generated(&self, turn: u32) -> bool {
        self.audio_turn.load(Ordering::SeqCst) >= turn
    }

    /// Records that the app played `samples` of `turn`'s answer (cumulative).
    pub fn set_played(&self, turn: u32, samples: u64) {
        let mut p = self.played.lock().unwrap_or_else(|e| e.into_inner());
        let e = p.entry(turn).or_insert(0);
        *e = (*e).max(samples);
        while p.len() > PLAYED_KEPT {
            let first = *p.keys().next().unwrap_or(&0);
            p.remove(&first);
        }
    }

    /// What the app reported as played of `turn` (None: no report).
    pub fn played(&self, turn: u32) -> Option<u64> {
        self.played
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&turn)
            .copied()
    }
}
