//! The session API over the tiny fixture model: a scripted conversation with
//! endpointing on real speech, multi-turn, barge-in, cancel and bad input.
//! Streaming outputs are checked against the offline (reference-style) path.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::events::{tokens, turn_end, units, until};
use common::fixture;
use omni_core::audio::read_wav;
use omni_core::{ErrorCode, InterruptReason};
use omni_core::{Event, Omni, OmniOptions, Session, SessionOptions};

fn omni() -> Arc<Omni> {
    static M: OnceLock<Arc<Omni>> = OnceLock::new();
    M.get_or_init(|| {
        let dev = std::env::var("OMNI_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
        let opts = OmniOptions {
            device: dev,
            ..Default::default()
        };
        Arc::new(
            Omni::load(fixture("omni_tiny"), fixture("vocoder/tiny"), &opts, None)
                .expect("load tiny omni"),
        )
    })
    .clone()
}

fn question() -> Vec<f32> {
    let (s, rate) = read_wav(&fixture("speech/question.wav")).unwrap();
    assert_eq!(rate, 16000);
    s
}

fn options(omni: &Omni) -> SessionOptions {
    let mut o = SessionOptions::for_model(omni);
    o.generation.max_new_tokens = 32;
    o.vocoder.first_chunk_units = 4;
    o.vocoder.chunk_units = 8;
    // Small, so that a consumer that stops pulling pauses the answer at once.
    o.event_capacity = 4;
    o
}

/// Pushes a clip in 20 ms chunks followed by `silence_s` of silence.
fn speak(s: &Session, clip: &[f32], silence_s: f32) {
    for c in clip.chunks(320) {
        s.push_audio(c, 16000).unwrap();
    }
    let silence = vec![0f32; (silence_s * 16000.0) as usize];
    for c in silence.chunks(320) {
        s.push_audio(c, 16000).unwrap();
    }
}

fn audio(ev: &[Event]) -> Vec<f32> {
    ev.iter()
        .filter_map(|e| {
            if let Event::Audio { pcm, .. } = e {
                Some(pcm.clone())
            } else {
                None
            }
        })
        .flatten()
        .collect()
}

#[test]
fn scripted_conversation_with_endpointing_barge_in_cancel_and_bad_input() {
    let omni = omni();
    let q = question();
    let opts = options(&omni);
    let offline = omni.answer_offline(&q, &opts.generation).unwrap();
    assert!(!offline.units.is_empty(), "the fixture answer has units");

    let s = Session::new(omni.clone(), opts.clone()).unwrap();

    // Turn 1: endpointing from real speech + silence.
    speak(&s, &q, 1.5);
    let ev = until(&s, turn_end);
    let pos = |f: &dyn Fn(&Event) -> bool| ev.iter().position(f);
    let started = pos(&|e| matches!(e, Event::SpeechStarted { .. })).expect("speech started");
    let ended = pos(&|e| matches!(e, Event::SpeechEnded { .. })).expect("speech ended");
    let turn = pos(&|e| matches!(e, Event::TurnStarted { turn: 1, .. })).expect("turn 1 started");
    assert!(started < ended && ended < turn);
    if let Event::SpeechStarted { at_ms } = ev[started] {
        assert!(
            at_ms < 1000,
            "speech starts near the clip start, got {at_ms} ms"
        );
    }
    assert!(
        matches!(ev.last(), Some(Event::TurnDone { turn: 1, .. })),
        "{:?}",
        ev.last()
    );
    // Same tokens and units as the offline path.
    assert_eq!(
        tokens(&ev),
        offline.tokens,
        "streaming tokens == offline tokens"
    );
    assert_eq!(
        units(&ev),
        offline.units,
        "streaming units == offline units"
    );
    // Text and speech stream together: audio arrives before the text is complete.
    let first_audio = pos(&|e| matches!(e, Event::Audio { .. })).expect("audio");
    let last_text = ev
        .iter()
        .rposition(|e| matches!(e, Event::TextDelta { .. }))
        .unwrap();
    assert!(
        first_audio < last_text,
        "first audio chunk ({first_audio}) before the last text delta ({last_text})"
    );
    let pcm = audio(&ev);
    assert_eq!(
        pcm.len(),
        offline.audio.len(),
        "streamed audio has the whole-utterance length"
    );
    if let Some(Event::TurnDone { timings, text, .. }) = ev.last() {
        assert!(timings.first_audio_ms.is_some() && timings.first_text_ms.is_some());
        assert!(timings.first_audio_ms.unwrap() <= timings.total_ms);
        assert_eq!(timings.tokens, offline.tokens.len());
        assert_eq!(text, &offline.text);
    }

    // Turn 2: the same question again; the history changes the answer.
    speak(&s, &q, 1.5);
    let ev2 = until(&s, turn_end);
    assert!(
        matches!(ev2.last(), Some(Event::TurnDone { turn: 2, .. })),
        "{:?}",
        ev2.iter()
            .filter(|e| !matches!(
                e,
                Event::TextDelta { .. } | Event::Units { .. } | Event::Audio { .. }
            ))
            .collect::<Vec<_>>()
    );
    assert_ne!(tokens(&ev2), offline.tokens, "turn 2 sees turn 1");

    // Turn 3 is interrupted by the user speaking over it (barge-in). The
    // consumer does not pull, so the bounded queue pauses the answer.
    speak(&s, &q, 1.5);
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.is_busy(), "turn 3 is being answered");
    // The app is playing turn 3's answer: speech now is a barge-in, not the
    // continuation of the question (see tests/turns.rs for that case).
    s.played(3, 160);
    speak(&s, &q, 1.5);
    let ev3 = until(&s, |e| matches!(e, Event::Interrupted { .. }));
    match ev3.last() {
        Some(Event::Interrupted {
            turn: 3,
            reason: InterruptReason::BargeIn,
            ..
        }) => {}
        other => panic!("expected a barge-in, got {other:?}"),
    }
    // The barge-in speech is the next turn.
    let ev4 = until(&s, turn_end);
    assert!(ev4
        .iter()
        .any(|e| matches!(e, Event::TurnStarted { turn: 4, .. })));
    assert!(
        matches!(ev4.last(), Some(Event::TurnDone { turn: 4, .. })),
        "{:?}",
        ev4.last()
    );

    // Turn 5: cancel on request.
    speak(&s, &q, 1.5);
    std::thread::sleep(Duration::from_millis(300));
    s.cancel();
    let ev5 = until(&s, turn_end);
    match ev5.last() {
        Some(Event::Interrupted {
            turn: 5,
            reason: InterruptReason::Cancel,
            ..
        }) => {}
        other => panic!("expected a cancel, got {other:?}"),
    }
    s.cancel(); // nothing running: a no-op

    // Bad input: errors, and the session stays usable.
    assert!(s.push_audio(&[0.0, f32::NAN, 0.1], 16000).is_err());
    assert!(s.push_audio(&[0.0; 10], 0).is_err());
    assert!(s.push_audio(&[0.0; 10], 7).is_err());
    s.push_audio(&[], 16000).unwrap();
    // Silence only, explicit end of turn: a NoSpeech error event.
    s.push_audio(&vec![0f32; 16000], 16000).unwrap();
    s.end_turn().unwrap();
    let ev6 = until(&s, turn_end);
    assert!(matches!(
        ev6.last(),
        Some(Event::Error {
            code: ErrorCode::NoSpeech,
            recoverable: true,
            ..
        })
    ));
    s.end_turn().unwrap(); // double end of turn: another NoSpeech, no crash
    let ev7 = until(&s, turn_end);
    assert!(matches!(
        ev7.last(),
        Some(Event::Error {
            code: ErrorCode::NoSpeech,
            ..
        })
    ));
    // Still answers.
    speak(&s, &q, 1.5);
    let ev8 = until(&s, turn_end);
    assert!(
        matches!(ev8.last(), Some(Event::TurnDone { turn: 6, .. })),
        "{:?}",
        ev8.last()
    );
}

#[test]
fn any_sample_rate_and_i16_input() {
    let omni = omni();
    let q = question();
    let q48 = omni_core::audio::resample(&q, 16000, 48000).unwrap();
    let pcm: Vec<i16> = q48.iter().map(|x| (x * 32767.0) as i16).collect();
    let s = Session::new(omni.clone(), options(&omni)).unwrap();
    for c in pcm.chunks(480) {
        s.push_audio_i16(c, 48000).unwrap();
    }
    s.end_turn().unwrap();
    let ev = until(&s, turn_end);
    assert!(
        matches!(ev.last(), Some(Event::TurnDone { .. })),
        "{:?}",
        ev.last()
    );
}

#[test]
fn audio_longer_than_30s_is_windowed_with_a_warning() {
    let omni = omni();
    let q = question();
    let mut long = Vec::new();
    while long.len() < 16000 * 33 {
        long.extend(&q);
    }
    let mut o = options(&omni);
    o.endpoint.enabled = false;
    o.generation.max_new_tokens = 4;
    let s = Session::new(omni.clone(), o).unwrap();
    for c in long.chunks(1600) {
        s.push_audio(c, 16000).unwrap();
    }
    s.end_turn().unwrap();
    let ev = until(&s, turn_end);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Warning { message } if message.contains("30 s"))),
        "{ev:?}"
    );
    assert!(matches!(ev.last(), Some(Event::TurnDone { .. })));
}

#[test]
fn seeds_make_sampling_reproducible_per_session() {
    let omni = omni();
    let q = question();
    let run = |seed: u64| {
        let mut o = options(&omni);
        o.generation.sampling.temperature = 0.9;
        o.generation.sampling.top_p = 0.9;
        o.generation.sampling.seed = seed;
        o.endpoint.enabled = false;
        let s = Session::new(omni.clone(), o).unwrap();
        s.push_audio(&q, 16000).unwrap();
        s.end_turn().unwrap();
        tokens(&until(&s, turn_end))
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}
