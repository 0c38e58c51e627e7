//! A session's life cycle under misuse (the C ABI audit's findings, at the
//! Rust level): free and reset with answers pending, cancel at every point of
//! a turn's life, options that cannot work refused at creation, pushes of any
//! size cut at the same places, bounded queues.

mod common;

use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use common::fixture;
use omni_core::audio::read_wav;
use omni_core::InterruptReason;
use omni_core::{Error, Event, Omni, OmniOptions, Session, SessionOptions};

fn omni() -> Arc<Omni> {
    static M: OnceLock<Arc<Omni>> = OnceLock::new();
    M.get_or_init(|| {
        Arc::new(
            Omni::load(
                fixture("omni_tiny"),
                fixture("vocoder/tiny"),
                &OmniOptions::default(),
                None,
            )
            .unwrap(),
        )
    })
    .clone()
}

fn clip() -> Vec<f32> {
    read_wav(&fixture("turns/trailing_silence.wav")).unwrap().0
}

fn explicit(omni: &Omni, capacity: usize) -> SessionOptions {
    let mut o = SessionOptions::explicit_turns(omni);
    o.generation.max_new_tokens = 16;
    o.vocoder.first_chunk_units = 4;
    o.vocoder.chunk_units = 8;
    o.event_capacity = capacity;
    o
}

fn until_end(s: &Session) -> Vec<Event> {
    let mut v = Vec::new();
    loop {
        let e = s
            .next_event(Duration::from_secs(120))
            .expect("event within 120 s");
        let end = matches!(
            e,
            Event::TurnDone { .. } | Event::Interrupted { .. } | Event::Error { .. }
        );
        v.push(e);
        if end {
            return v;
        }
    }
}

/// Runs `f` on another thread; fails if it has not returned within `limit`
/// (a liveness check: a hang would otherwise hang the suite).
fn returns_within(limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(limit).expect("the call returned");
}

#[test]
fn dropping_a_session_with_unpolled_answers_pending_returns() {
    let omni = omni();
    let q = clip();
    let s = Session::new(omni.clone(), explicit(&omni, 2)).unwrap();
    for _ in 0..2 {
        s.push_audio(&q, 16000).unwrap();
        s.end_turn().unwrap();
    }
    returns_within(Duration::from_secs(120), move || drop(s));
}

#[test]
fn cancel_right_after_end_turn_applies_to_the_turn_not_yet_started() {
    let omni = omni();
    let q = clip();
    for _ in 0..10 {
        let s = Session::new(omni.clone(), explicit(&omni, 256)).unwrap();
        s.push_audio(&q, 16000).unwrap();
        s.end_turn().unwrap();
        assert!(s.is_busy(), "busy from end_turn on");
        s.cancel();
        let ev = until_end(&s);
        assert!(
            matches!(
                ev.last(),
                Some(Event::Interrupted {
                    turn: 1,
                    reason: InterruptReason::Cancel,
                    ..
                })
            ),
            "{:?}",
            ev.last()
        );
        assert!(!ev.iter().any(|e| matches!(e, Event::TurnDone { .. })));
        assert!(!s.is_busy());
    }
}

#[test]
fn reset_cancels_queued_turns_and_the_next_answer_is_a_fresh_sessions() {
    let omni = omni();
    let q = clip();
    let fresh = {
        let s = Session::new(omni.clone(), explicit(&omni, 256)).unwrap();
        s.push_audio(&q, 16000).unwrap();
        s.end_turn().unwrap();
        until_end(&s)
    };
    let mut o = explicit(&omni, 2);
    // Turn 2's speech would otherwise barge in on turn 1 (reason BargeIn).
    o.barge_in = false;
    let s = Session::new(omni.clone(), o).unwrap();
    for _ in 0..2 {
        s.push_audio(&q, 16000).unwrap();
        s.end_turn().unwrap();
    }
    s.reset().unwrap();
    let a = until_end(&s);
    let b = until_end(&s);
    for (ev, turn) in [(&a, 1), (&b, 2)] {
        assert!(
            matches!(ev.last(), Some(Event::Interrupted { turn: t, reason: InterruptReason::Cancel, .. }) if *t == turn),
            "{:?}",
            ev.last()
        );
    }
    assert!(
        !b.iter().any(|e| matches!(e, Event::TurnStarted { .. })),
        "the queued turn never started"
    );
    s.push_audio(&q, 16000).unwrap();
    s.end_turn().unwrap();
    let c = until_end(&s);
    let texts = |ev: &[Event]| {
        ev.iter().find_map(|e| {
            if let Event::TurnDone { text, .. } = e {
                Some(text.clone())
            } else {
                None
            }
        })
    };
    assert_eq!(texts(&c), texts(&fresh), "reset forgot the history");
    assert_eq!(s.history().turns.len(), 1);
}

#[test]
fn each_turn_keeps_the_reason_of_the_cancel_that_hit_it() {
    let omni = omni();
    let q = clip();
    let s = Session::new(omni.clone(), explicit(&omni, 2)).unwrap();
    s.push_audio(&q, 16000).unwrap();
    s.end_turn().unwrap();
    // Turn 2's speech barges in on turn 1; then a cancel stops turn 2.
    s.push_audio(&q, 16000).unwrap();
    s.end_turn().unwrap();
    s.cancel();
    let a = until_end(&s);
    let b = until_end(&s);
    assert!(
        matches!(
            a.last(),
            Some(Event::Interrupted {
                turn: 1,
                reason: InterruptReason::BargeIn,
                ..
            })
        ),
        "{:?}",
        a.last()
    );
    assert!(
        matches!(
            b.last(),
            Some(Event::Interrupted {
                turn: 2,
                reason: InterruptReason::Cancel,
                ..
            })
        ),
        "{:?}",
        b.last()
    );
}

#[test]
fn options_that_cannot_work_are_refused_at_creation_naming_the_field() {
    let omni = omni();
    let base = explicit(&omni, 256);
    type Edit = Box<dyn Fn(&mut SessionOptions)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "max_new_tokens",
            Box::new(|o| o.generation.max_new_tokens = 100_000),
        ),
        (
            "max_new_tokens",
            Box::new(|o| o.generation.max_new_tokens = u32::MAX as usize),
        ),
        ("max_context", Box::new(|o| o.max_context = 1)),
        ("max_context", Box::new(|o| o.max_context = 200)),
        (
            "system_prompt",
            Box::new(|o| o.system_prompt = "say <speech>".into()),
        ),
        (
            "user_message",
            Box::new(|o| o.user_message = "<speech> <speech>".into()),
        ),
        (
            "user_message",
            Box::new(|o| o.user_message = "no placeholder".into()),
        ),
        (
            "max_context",
            Box::new(|o| o.system_prompt = "a".repeat(200 * 1024)),
        ),
        ("event_capacity", Box::new(|o| o.event_capacity = 0)),
    ];
    for (field, edit) in cases {
        let mut o = base.clone();
        edit(&mut o);
        match Session::new(omni.clone(), o) {
            Err(Error::InvalidInput(m)) => assert!(m.contains(field), "{field}: {m}"),
            other => panic!("{field}: expected InvalidInput, got {other:?}"),
        }
    }
}

/// Speech start/end positions and turns of `audio` pushed in pieces of `piece` samples.
fn cuts(audio: &[f32], piece: usize) -> (Vec<u64>, Vec<u64>) {
    let omni = omni();
    let mut o = SessionOptions::for_model(&omni);
    o.generation.max_new_tokens = 4;
    o.endpoint.resume_grace_ms = 0;
    let s = Session::new(omni.clone(), o).unwrap();
    for c in audio.chunks(piece) {
        s.push_audio(c, 16000).unwrap();
    }
    let (mut ended, mut turns) = (Vec::new(), Vec::new());
    while let Some(e) = s.next_event(Duration::from_secs(5)) {
        match e {
            Event::SpeechEnded { at_ms } => ended.push(at_ms),
            Event::TurnStarted { audio_ms, .. } => turns.push(audio_ms),
            Event::Error { message, .. } => panic!("error event: {message}"),
            _ => {}
        }
    }
    (ended, turns)
}

#[test]
fn a_push_holding_several_utterances_is_cut_where_20ms_pushes_cut_it() {
    let q = clip(); // question + 1.5 s of silence
    let mut audio = Vec::new();
    for _ in 0..3 {
        audio.extend(&q);
    }
    let (big_ended, big_turns) = cuts(&audio, audio.len());
    let (small_ended, small_turns) = cuts(&audio, 320);
    assert_eq!(big_ended.len(), 3, "three questions: {big_ended:?}");
    assert_eq!(big_ended, small_ended);
    assert_eq!(big_turns, small_turns);
    assert!(
        big_turns.iter().all(|&ms| ms > 500),
        "no empty turn: {big_turns:?}"
    );
}

#[test]
fn speech_notifications_nobody_polls_stay_bounded_and_are_counted() {
    let omni = omni();
    let q = clip();
    let mut o = explicit(&omni, 4);
    o.barge_in = false;
    let s = Session::new(omni.clone(), o).unwrap();
    for _ in 0..40 {
        s.push_audio(&q, 16000).unwrap();
    }
    assert!(s.pending_events() <= 8, "{} queued", s.pending_events());
    match s.next_event(Duration::from_secs(1)) {
        Some(Event::Warning { message }) => assert!(message.contains("not queued"), "{message}"),
        other => panic!("expected the missed-notifications warning, got {other:?}"),
    }
}

#[test]
fn a_turn_longer_than_max_turn_s_is_refused_and_nothing_is_kept() {
    let omni = omni();
    let mut o = explicit(&omni, 16);
    o.endpoint.max_turn_s = 2;
    let s = Session::new(omni.clone(), o).unwrap();
    s.push_audio(&vec![0.0; 16000], 16000).unwrap();
    assert!(matches!(
        s.push_audio(&vec![0.0; 32000], 16000),
        Err(Error::InvalidInput(_))
    ));
    // The turn still holds the first second only.
    s.end_turn().unwrap();
    match s.next_event(Duration::from_secs(5)) {
        Some(Event::Error { message, .. }) => assert!(message.contains("1.00 s"), "{message}"),
        other => panic!("{other:?}"),
    }
}
