//! Turn handling as users feed it: recorded files with silence before, after
//! and inside the question (explicit turns), live endpointing with pauses and
//! a speculative start, typed-text turns, and a history cut to what was played.
//! Streaming outputs are checked against the offline (reference-style) path.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::events::{tokens, turn_end, units, until};
use common::fixture;
use omni_core::audio::read_wav;
use omni_core::{Event, Omni, OmniOptions, Session, SessionOptions};
use omni_core::{InterruptReason, NO_TOKEN};

const MAX_NEW: usize = 24;

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

fn wav(name: &str) -> Vec<f32> {
    let (s, rate) = read_wav(&fixture(&format!("turns/{name}"))).unwrap();
    assert_eq!(rate, 16000);
    s
}

fn live(omni: &Omni) -> SessionOptions {
    let mut o = SessionOptions::for_model(omni);
    o.generation.max_new_tokens = MAX_NEW;
    o.vocoder.first_chunk_units = 4;
    o.vocoder.chunk_units = 8;
    o
}

fn explicit(omni: &Omni) -> SessionOptions {
    let mut o = live(omni);
    o.endpoint.enabled = false;
    o
}

fn push_20ms(s: &Session, audio: &[f32]) {
    for c in audio.chunks(320) {
        s.push_audio(c, 16000).unwrap();
    }
}

/// Events pulled until nothing comes for `quiet`.
fn drain(s: &Session, quiet: Duration) -> Vec<Event> {
    let mut v = Vec::new();
    while let Some(e) = s.next_event(quiet) {
        v.push(e);
    }
    v
}

/// Event kinds in order (for failure messages; audio is long).
fn kinds(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter(|e| {
            !matches!(
                e,
                Event::TextDelta { .. } | Event::Units { .. } | Event::Audio { .. }
            )
        })
        .map(|e| format!("{e:?}").chars().take(120).collect())
        .collect()
}

fn count(ev: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    ev.iter().filter(|e| f(e)).count()
}

/// The `omni` example binary cargo built next to this test.
fn omni_cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples").join("omni");
    assert!(
        p.is_file(),
        "{} not built (cargo test builds the examples)",
        p.display()
    );
    p
}

#[test]
fn omni_run_answers_recorded_files_with_silence_and_pauses_as_one_turn_like_the_reference() {
    let omni = omni();
    let params = explicit(&omni).generation;
    for name in [
        "trailing_silence.wav",
        "trailing_noise.wav",
        "pause_0_9s.wav",
        "leading_silence.wav",
    ] {
        let out_dir = tempdir(name);
        let answer = out_dir.join("answer.wav");
        let out = std::process::Command::new(omni_cli())
            .args(["run", "--model"])
            .arg(fixture("omni_tiny"))
            .arg("--vocoder")
            .arg(fixture("vocoder/tiny"))
            .arg("--input")
            .arg(fixture(&format!("turns/{name}")))
            .arg("--output")
            .arg(&answer)
            .args(["--json", "--max-new-tokens", &MAX_NEW.to_string()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: omni run failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kind = |k: &str| lines.iter().filter(|v| v["event"] == k).count();
        assert_eq!(kind("turn_done"), 1, "{name}: one turn done");
        assert_eq!(
            kind("interrupted") + kind("error"),
            0,
            "{name}: nothing lost: {stdout}"
        );
        let cli_tokens: Vec<u32> = lines
            .iter()
            .filter(|v| v["event"] == "text")
            .map(|v| v["token"].as_u64().unwrap() as u32)
            .filter(|&t| t != NO_TOKEN)
            .collect();
        let cli_units: Vec<u32> = lines
            .iter()
            .filter(|v| v["event"] == "units")
            .flat_map(|v| {
                v["units"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_u64().unwrap() as u32)
                    .collect::<Vec<_>>()
            })
            .collect();
        let offline = omni.answer_offline(&wav(name), &params).unwrap();
        assert_eq!(
            cli_tokens, offline.tokens,
            "{name}: tokens == offline on the whole file"
        );
        assert_eq!(
            cli_units, offline.units,
            "{name}: units == offline on the whole file"
        );
        let (pcm, rate) = read_wav(&answer).unwrap();
        assert_eq!(rate, omni.vocoder().sample_rate());
        assert!(!pcm.is_empty(), "{name}: the answer WAV has audio");
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("omni-turns-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn explicit_turns_are_every_sample_pushed_at_any_chunking() {
    let omni = omni();
    let q = wav("leading_silence.wav");
    let s = Session::new(omni.clone(), explicit(&omni)).unwrap();
    // Uneven pieces, the leading second of silence included.
    let mut at = 0;
    for (k, n) in [7usize, 16000, 3, 999, 12345].iter().cycle().enumerate() {
        if at >= q.len() || k > 10_000 {
            break;
        }
        let end = (at + n).min(q.len());
        s.push_audio(&q[at..end], 16000).unwrap();
        at = end;
    }
    s.end_turn().unwrap();
    let ev = until(&s, turn_end);
    match ev.iter().find(|e| matches!(e, Event::TurnStarted { .. })) {
        Some(Event::TurnStarted { audio_ms, .. }) => {
            assert_eq!(*audio_ms, q.len() as u64 * 1000 / 16000)
        }
        other => panic!("no TurnStarted: {other:?}"),
    }
    let offline = omni
        .answer_offline(&q, &explicit(&omni).generation)
        .unwrap();
    assert_eq!(tokens(&ev), offline.tokens);
    assert_eq!(units(&ev), offline.units);
}

#[test]
fn live_mode_a_paused_question_is_answered_once_with_all_of_its_audio() {
    let omni = omni();
    let audio = wav("pause_0_9s.wav");
    let s = Session::new(omni.clone(), live(&omni)).unwrap();
    // The app has played nothing of turn 1 yet.
    s.played(1, 0);
    push_20ms(&s, &audio);
    let ev = drain(&s, Duration::from_secs(5));
    assert_eq!(
        count(&ev, |e| matches!(e, Event::Interrupted { .. })),
        0,
        "no interrupted turn: {:?}",
        kinds(&ev)
    );
    assert_eq!(
        count(&ev, |e| matches!(e, Event::TurnDone { .. })),
        1,
        "one answer"
    );
    assert_eq!(count(&ev, |e| matches!(e, Event::Error { .. })), 0);
    assert_eq!(
        count(&ev, |e| matches!(e, Event::SpeechEnded { .. })),
        2,
        "the pause ended speech once before the end"
    );
    let audio_ms = ev
        .iter()
        .find_map(|e| {
            if let Event::TurnStarted { audio_ms, .. } = e {
                Some(*audio_ms)
            } else {
                None
            }
        })
        .unwrap();
    // The turn runs from the file start (speech starts within the pre-roll)
    // to the end of the second part's speech.
    let n = audio_ms as usize * 16;
    assert!(
        n > audio.len() / 2 && n <= audio.len(),
        "{n} of {} samples",
        audio.len()
    );
    let offline = omni
        .answer_offline(&audio[..n], &explicit(&omni).generation)
        .unwrap();
    assert_eq!(tokens(&ev), offline.tokens, "the whole question's answer");
    assert_eq!(units(&ev), offline.units);
}

#[test]
fn live_mode_speech_over_an_answer_already_playing_still_barges_in() {
    let omni = omni();
    let audio = wav("pause_0_9s.wav");
    let mut o = live(&omni);
    o.event_capacity = 4;
    let s = Session::new(omni.clone(), o).unwrap();
    // The app reports that it already played part of turn 1.
    s.played(1, 1600);
    push_20ms(&s, &audio);
    let ev = drain(&s, Duration::from_secs(5));
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Interrupted {
                turn: 1,
                reason: InterruptReason::BargeIn,
                ..
            }
        )),
        "{:?}",
        kinds(&ev)
    );
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::TurnDone { turn: 2, .. })));
}

/// The pause file with its silent gap shortened to `gap_s`.
fn short_pause(gap_s: f32) -> Vec<f32> {
    let a = wav("pause_0_9s.wav");
    let (mut best, mut cur, mut end) = (0, 0, 0);
    for (i, &x) in a.iter().enumerate().take(a.len() - 16000) {
        cur = if x == 0.0 { cur + 1 } else { 0 };
        if cur > best {
            best = cur;
            end = i + 1;
        }
    }
    assert!(best >= 14000, "the file has its 0.9 s gap ({best})");
    let keep = (gap_s * 16000.0) as usize;
    let mut out = a[..end - best + keep].to_vec();
    out.extend_from_slice(&a[end..]);
    out
}

#[test]
fn speculative_start_answers_once_with_the_tokens_of_the_plain_path() {
    let omni = omni();
    let audio = short_pause(0.3);
    let run = |speculative: bool| {
        let mut o = live(&omni);
        o.endpoint.speculative = speculative;
        let s = Session::new(omni.clone(), o).unwrap();
        push_20ms(&s, &audio);
        drain(&s, Duration::from_secs(5))
    };
    let spec = run(true);
    let plain = run(false);
    for ev in [&spec, &plain] {
        assert_eq!(
            count(ev, |e| matches!(e, Event::TurnStarted { .. })),
            1,
            "{:?}",
            kinds(ev)
        );
        assert_eq!(count(ev, |e| matches!(e, Event::TurnDone { .. })), 1);
        assert_eq!(
            count(ev, |e| matches!(
                e,
                Event::Interrupted { .. } | Event::Error { .. }
            )),
            0
        );
    }
    assert_eq!(tokens(&spec), tokens(&plain));
    assert_eq!(units(&spec), units(&plain));
    let timings = |ev: &[Event]| {
        ev.iter()
            .find_map(|e| {
                if let Event::TurnDone { timings, .. } = e {
                    Some(timings.clone())
                } else {
                    None
                }
            })
            .unwrap()
    };
    let (ts, tp) = (timings(&spec), timings(&plain));
    assert!(ts.speculative && !tp.speculative);
    // Latency counts from the end of speech: the endpoint wait is part of it.
    for t in [&ts, &tp] {
        assert!(t.endpoint_wait_ms >= 0.0);
        assert!(t.first_audio_ms.unwrap() >= t.endpoint_wait_ms, "{t:?}");
    }
}

/// Runs turn 1 (typed text) to its end; returns its events.
fn text_turn(s: &Session, text: &str) -> Vec<Event> {
    s.push_text(text).unwrap();
    until(s, turn_end)
}

/// The tokens whose units all lie in the first `played` samples, from the
/// events and the vocoder's durations (independently of the session's trace).
fn expected_kept(omni: &Omni, ev: &[Event], played: u64) -> usize {
    let mut per_token: Vec<usize> = Vec::new();
    let mut all_units = Vec::new();
    for e in ev {
        match e {
            Event::TextDelta { token, .. } if *token != NO_TOKEN => per_token.push(0),
            Event::Units { units, .. } => {
                *per_token.last_mut().unwrap() += units.len();
                all_units.extend(units);
            }
            _ => {}
        }
    }
    let hop = omni.vocoder().samples_per_frame().unwrap() as u64;
    let durations = omni.vocoder().durations(&all_units).unwrap();
    let mut end = 0u64;
    let heard = durations.iter().take_while(|&&d| {
        end += d as u64 * hop;
        end <= played
    });
    let heard = heard.count();
    if heard == 0 {
        return 0;
    }
    let mut cum = 0;
    per_token
        .iter()
        .take_while(|&&u| {
            cum += u;
            cum <= heard
        })
        .count()
}

#[test]
fn the_history_keeps_exactly_the_answer_tokens_whose_audio_was_played() {
    let omni = omni();
    let eot = omni.tokenizer().token_id("<|eot_id|>").unwrap();
    let reference = {
        let s = Session::new(omni.clone(), explicit(&omni)).unwrap();
        text_turn(&s, "What is the capital of France?")
    };
    let toks = tokens(&reference);
    let total: u64 = reference
        .iter()
        .map(|e| {
            if let Event::Audio { pcm, .. } = e {
                pcm.len() as u64
            } else {
                0
            }
        })
        .sum();
    assert!(total > 0 && toks.len() > 2);
    let mid = expected_kept(&omni, &reference, total / 2);
    assert!(
        mid > 0 && mid < toks.len(),
        "half the audio keeps part of the answer ({mid} of {})",
        toks.len()
    );
    for played in [0, total / 3, total / 2, total] {
        let s = Session::new(omni.clone(), explicit(&omni)).unwrap();
        let ev = text_turn(&s, "What is the capital of France?");
        assert_eq!(tokens(&ev), toks, "greedy answers are reproducible");
        s.played(1, played);
        s.push_text("And of Germany?").unwrap();
        until(&s, |e| matches!(e, Event::TurnStarted { turn: 2, .. }));
        let h = s.history();
        let k = expected_kept(&omni, &ev, played);
        let mut want: Vec<u32> = toks[..k].to_vec();
        if want.last() != Some(&eot) {
            want.push(eot);
        }
        assert_eq!(
            h.turns[0].answer, want,
            "played {played} of {total} samples"
        );
        assert_eq!(
            h.turns[0].text.as_deref(),
            Some("What is the capital of France?")
        );
        // The next prompt's ids hold exactly that answer after turn 1's prompt.
        let want_ids: Vec<i64> = want.iter().map(|&t| t as i64).collect();
        assert!(
            h.ids
                .windows(want_ids.len())
                .any(|w| w == want_ids.as_slice()),
            "prompt ids hold the kept answer"
        );
        until(&s, turn_end);
    }
}

#[test]
fn an_answer_cancelled_before_any_audio_leaves_an_empty_answer_in_the_history() {
    let omni = omni();
    let eot = omni.tokenizer().token_id("<|eot_id|>").unwrap();
    let mut o = explicit(&omni);
    o.event_capacity = 2;
    let s = Session::new(omni.clone(), o).unwrap();
    s.push_text("What is the capital of France?").unwrap();
    // The consumer does not pull: generation pauses on the full queue.
    std::thread::sleep(Duration::from_millis(200));
    s.cancel();
    let ev = until(&s, turn_end);
    assert!(
        matches!(
            ev.last(),
            Some(Event::Interrupted {
                reason: InterruptReason::Cancel,
                ..
            })
        ),
        "{:?}",
        kinds(&ev)
    );
    assert!(!ev.iter().any(|e| matches!(e, Event::Audio { .. })));
    text_turn(&s, "Hello?");
    assert_eq!(
        s.history().turns[0].answer,
        vec![eot],
        "nothing was heard: nothing is kept"
    );
}

#[test]
fn text_turns_are_answered_with_text_and_speech_in_the_same_history() {
    let omni = omni();
    let s = Session::new(omni.clone(), explicit(&omni)).unwrap();
    let ev = text_turn(&s, "Tell me a story.");
    assert!(
        matches!(ev.last(), Some(Event::TurnDone { turn: 1, .. })),
        "{:?}",
        kinds(&ev)
    );
    assert!(
        ev.iter().any(|e| matches!(e, Event::Audio { .. })),
        "spoken answer"
    );
    push_20ms(&s, &wav("trailing_silence.wav"));
    s.end_turn().unwrap();
    let ev2 = until(&s, turn_end);
    assert!(matches!(ev2.last(), Some(Event::TurnDone { turn: 2, .. })));
    let h = s.history();
    assert_eq!(h.turns.len(), 2);
    assert_eq!(h.turns[0].text.as_deref(), Some("Tell me a story."));
    assert!(h.turns[0].speech_frames == 0 && h.turns[1].speech_frames > 0);
    assert!(s.push_text("   ").is_err(), "empty text is refused");
}

#[test]
fn audio_events_carry_the_vocoders_own_sample_rate() {
    let dir = tempdir("voc22050");
    for f in ["g_00500000", "config.json"] {
        std::fs::copy(fixture("vocoder/tiny").join(f), dir.join(f)).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    cfg["sampling_rate"] = serde_json::json!(22050);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let omni =
        Arc::new(Omni::load(fixture("omni_tiny"), &dir, &OmniOptions::default(), None).unwrap());
    assert_eq!(omni.vocoder().sample_rate(), 22050);
    let s = Session::new(omni.clone(), explicit(&omni)).unwrap();
    let ev = text_turn(&s, "Hi.");
    let rates: Vec<u32> = ev
        .iter()
        .filter_map(|e| {
            if let Event::Audio { sample_rate, .. } = e {
                Some(*sample_rate)
            } else {
                None
            }
        })
        .collect();
    assert!(
        !rates.is_empty() && rates.iter().all(|&r| r == 22050),
        "{rates:?}"
    );
}
