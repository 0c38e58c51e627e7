//! The session's event queue. Events from the generation worker are bounded:
//! when the consumer stops pulling, the worker waits (generation pauses
//! instead of memory growing). Events from `push_audio` (speech start/end,
//! input warnings) never block the pushing thread.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::events::Event;

pub(crate) struct EventQueue {
    inner: Mutex<VecDeque<Event>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl EventQueue {
    pub fn new(capacity: usize) -> Self {
        EventQueue {
            inner: Mutex::new(VecDeque::new()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enqueues without waiting (input-side events).
    pub fn push_now(&self, e: Event) {
        self.lock().push_back(e);
        self.not_empty.notify_one();
    }

    /// Enqueues, waiting while the queue is full unless `give_up()` turns true
    /// (a cancel). Returns false if it gave up.
    pub fn push_wait(&self, e: Event, give_up: &dyn Fn() -> bool) -> bool {
        let mut q = self.lock();
        while q.len() >= self.capacity {
            if give_up() {
                return false;
            }
            q = self.not_full.wait_timeout(q, Duration::from_millis(20)).map(|r| r.0).unwrap_or_else(|p| p.into_inner().0);
        }
        q.push_back(e);
        drop(q);
        self.not_empty.notify_one();
        true
    }

    /// Takes the next event, waiting up to `timeout`.
    pub fn pop(&self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock();
        loop {
            if let Some(e) = q.pop_front() {
                drop(q);
                self.not_full.notify_one();
                return Some(e);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            q = self.not_empty.wait_timeout(q, deadline - now).map(|r| r.0).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Drops every queued event.
    pub fn clear(&self) {
        self.lock().clear();
        self.not_full.notify_all();
    }
}
