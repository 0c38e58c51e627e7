//! Event helpers shared by the session test binaries.
#![allow(dead_code)]

use omni_core::{Event, Session};
use std::time::Duration;

/// Pulls events until `stop` matches one (inclusive).
pub fn until(s: &Session, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut v = Vec::new();
    loop {
        let e = s
            .next_event(Duration::from_secs(120))
            .expect("event within 120 s");
        let done = stop(&e);
        v.push(e);
        if done {
            return v;
        }
    }
}

pub fn turn_end(e: &Event) -> bool {
    matches!(
        e,
        Event::TurnDone { .. } | Event::Interrupted { .. } | Event::Error { .. }
    )
}

pub fn tokens(ev: &[Event]) -> Vec<u32> {
    ev.iter()
        .filter_map(|e| {
            if let Event::TextDelta { token, .. } = e {
                Some(*token)
            } else {
                None
            }
        })
        .filter(|&t| t != omni_core::NO_TOKEN)
        .collect()
}

pub fn units(ev: &[Event]) -> Vec<u32> {
    ev.iter()
        .filter_map(|e| {
            if let Event::Units { units, .. } = e {
                Some(units.clone())
            } else {
                None
            }
        })
        .flatten()
        .collect()
}
