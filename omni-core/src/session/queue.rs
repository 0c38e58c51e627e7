//! The session's event queue. Events from the generation worker are bounded:
//! when the consumer stops pulling, the worker waits (generation pauses
//! instead of memory growing). Events from `push_audio` (speech start/end)
//! never block the pushing thread; past the capacity they are counted instead
//! of queued, and the consumer gets a warning saying how many it missed.
//!
//! A turn can be discarded (its question continued, see `Session`): its
//! queued events are removed and later ones are not queued.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::events::Event;

struct Inner {
    events: VecDeque<Event>,
    /// Input-side notifications not queued because the queue was full.
    missed: usize,
    /// Turns whose events are no longer delivered.
    discarded: Vec<u32>,
    /// The highest turn of which the consumer has pulled an event.
    pulled_turn: u32,
}

pub(crate) struct EventQueue {
    inner: Mutex<Inner>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl EventQueue {
    pub fn new(capacity: usize) -> Self {
        EventQueue {
            inner: Mutex::new(Inner {
                events: VecDeque::new(),
                missed: 0,
                discarded: Vec::new(),
                pulled_turn: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dropped(q: &Inner, e: &Event) -> bool {
        e.turn().is_some_and(|t| q.discarded.contains(&t))
    }

    /// Enqueues without waiting (the last event of a turn, errors).
    pub fn push_now(&self, e: Event) {
        let mut q = self.lock();
        if Self::dropped(&q, &e) {
            return;
        }
        q.events.push_back(e);
        drop(q);
        self.not_empty.notify_one();
    }

    /// Enqueues an input-side notification without waiting; past twice the
    /// capacity it is counted instead (see [`EventQueue::pop`]).
    pub fn push_input(&self, e: Event) {
        let mut q = self.lock();
        if q.events.len() >= 2 * self.capacity {
            q.missed += 1;
            return;
        }
        q.events.push_back(e);
        drop(q);
        self.not_empty.notify_one();
    }

    /// Enqueues, waiting while the queue is full unless `give_up()` turns true
    /// (a cancel). Returns false if it gave up.
    pub fn push_wait(&self, e: Event, give_up: &dyn Fn() -> bool) -> bool {
        let mut q = self.lock();
        while q.events.len() >= self.capacity {
            if give_up() {
                return false;
            }
            q = self
                .not_full
                .wait_timeout(q, Duration::from_millis(20))
                .map(|r| r.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        if Self::dropped(&q, &e) {
            return true;
        }
        q.events.push_back(e);
        drop(q);
        self.not_empty.notify_one();
        true
    }

    /// Takes the next event, waiting up to `timeout`.
    pub fn pop(&self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock();
        loop {
            if q.missed > 0 {
                let n = std::mem::take(&mut q.missed);
                return Some(Event::Warning {
                    message: format!(
                        "{n} speech start/end notification(s) were not queued: the event queue was full (poll more often)"
                    ),
                });
            }
            if let Some(e) = q.events.pop_front() {
                if let Some(t) = e.turn() {
                    q.pulled_turn = q.pulled_turn.max(t);
                }
                drop(q);
                self.not_full.notify_one();
                return Some(e);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            q = self
                .not_empty
                .wait_timeout(q, deadline - now)
                .map(|r| r.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Stops delivering `turn`'s events and removes the queued ones. Returns
    /// whether the consumer had already pulled one of them.
    pub fn discard_turn(&self, turn: u32) -> bool {
        let mut q = self.lock();
        q.events.retain(|e| e.turn() != Some(turn));
        q.discarded.push(turn);
        if q.discarded.len() > 16 {
            q.discarded.remove(0);
        }
        let seen = q.pulled_turn >= turn;
        drop(q);
        self.not_full.notify_all();
        seen
    }

    /// Delivers `turn`'s events again (used for the note that ends a
    /// discarded turn the consumer had already seen).
    pub fn undiscard(&self, turn: u32) {
        self.lock().discarded.retain(|&t| t != turn);
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Drops every queued event.
    pub fn clear(&self) {
        let mut q = self.lock();
        q.events.clear();
        q.missed = 0;
        drop(q);
        self.not_full.notify_all();
    }
}
