//! `OmniEvent`: a session event handed to C, owned by the caller until
//! `omni_event_free`.

use std::ffi::{c_char, CString};

use omni_core::Event;
use omni_core::{ErrorCode, InterruptReason, Timings};

use crate::error::to_cstring;

/// What an `OmniEvent` is; which fields it fills is listed per type.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum OmniEventType {
    /// The endpointer heard speech start. Fields: `at_ms` (position in the pushed audio).
    OMNI_EVENT_SPEECH_STARTED = 1,
    /// The endpointer heard speech end; a turn follows. Fields: `at_ms`.
    OMNI_EVENT_SPEECH_ENDED = 2,
    /// A user turn was committed and is being answered. Fields: `turn`, `audio_ms`.
    OMNI_EVENT_TURN_STARTED = 3,
    /// One generated token. Fields: `turn`, `token`, `text`/`text_len` (the
    /// text it completes; may be `""` for special tokens or a partial character).
    /// The last TEXT event of a turn may carry `token == OMNI_NO_TOKEN`: text
    /// the detokenizer held back (a partial word), flushed at the end; so a
    /// turn has `timings.tokens` TEXT events with real ids plus at most one
    /// with OMNI_NO_TOKEN.
    OMNI_EVENT_TEXT = 4,
    /// New speech units. Fields: `turn`, `units`/`n_units`.
    OMNI_EVENT_UNITS = 5,
    /// Answer audio, mono f32 PCM. Fields: `turn`, `seq` (from 0 per turn),
    /// `pcm`/`n_pcm`, `sample_rate` (the vocoder's own rate from its config;
    /// 16000 for the published vocoder).
    OMNI_EVENT_AUDIO = 6,
    /// The answer is complete. Fields: `turn`, `text` (the whole answer), `timings`.
    OMNI_EVENT_TURN_DONE = 7,
    /// The answer stopped early. Fields: `turn`, `interrupt_reason`, `text`
    /// (the answer so far). The history keeps the part of the answer whose
    /// audio was played (`omni_session_played`; without reports, every
    /// sample sent); nothing of it when none was played. A committed turn
    /// cancelled before it started has this event only (no TURN_STARTED).
    OMNI_EVENT_INTERRUPTED = 8,
    /// Something to know that did not stop the turn. Fields: `message`.
    OMNI_EVENT_WARNING = 9,
    /// A failure. Fields: `error_code`, `message`, `recoverable` (false: the
    /// session cannot go on; free it).
    OMNI_EVENT_ERROR = 10,
}

/// Error class of an `OMNI_EVENT_ERROR` (`OMNI_ERROR_NONE` on other events).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum OmniErrorCode {
    /// Not an error event.
    OMNI_ERROR_NONE = 0,
    /// A turn without speech (silence only, or nothing pushed); the turn is dropped.
    OMNI_ERROR_NO_SPEECH = 1,
    /// Invalid input reached the worker.
    OMNI_ERROR_INVALID_INPUT = 2,
    /// A model part failed.
    OMNI_ERROR_MODEL = 3,
    /// The session's worker failed; the session cannot continue.
    OMNI_ERROR_INTERNAL = 4,
}

/// Why an answer stopped early (`OMNI_INTERRUPT_NONE` on other events).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum OmniInterruptReason {
    /// Not an interruption.
    OMNI_INTERRUPT_NONE = 0,
    /// The user spoke over the answer (barge-in).
    OMNI_INTERRUPT_BARGE_IN = 1,
    /// `omni_session_cancel`, `omni_session_reset` or `omni_session_free` was called.
    OMNI_INTERRUPT_CANCEL = 2,
    /// The user went on speaking right after the endpoint (within
    /// `resume_grace_ms`, before any answer audio was played): this answer is
    /// dropped and the question continues as the next turn with all its audio.
    OMNI_INTERRUPT_RESUMED = 3,
}

/// `OmniEvent.token` of a TEXT event that has no token of its own (text held
/// back by the detokenizer, flushed at the end of the answer).
pub const OMNI_NO_TOKEN: u32 = u32::MAX;

/// Per-turn timings, measured from the end of the user's speech: the end of
/// the last voiced frame when the endpointer ended the turn, the
/// `omni_session_end_turn` / `omni_session_push_text` call otherwise (the
/// endpointer's wait is `OmniEvent.endpoint_wait_ms`). Filled on `OMNI_EVENT_TURN_DONE`; every field is
/// -1 on other events, and `first_text_ms` / `first_audio_ms` are -1 when
/// the answer had no text / no audio.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OmniTimings {
    /// Mel + Whisper encoder + adaptor, ms.
    pub encode_ms: f64,
    /// LLM prefill of the prompt, ms.
    pub prefill_ms: f64,
    /// End of speech → first text, ms.
    pub first_text_ms: f64,
    /// End of speech → first audio chunk, ms.
    pub first_audio_ms: f64,
    /// End of speech → turn done, ms.
    pub total_ms: f64,
    /// Time inside the speech decoder, ms.
    pub speech_decoder_ms: f64,
    /// Time inside the vocoder, ms.
    pub vocoder_ms: f64,
    /// Generated tokens per second of decode time.
    pub tokens_per_s: f64,
    /// Seconds of answer audio.
    pub audio_s: f64,
    /// Processing time / answer audio duration (< 1: faster than real time).
    pub real_time_factor: f64,
    /// Tokens generated.
    pub tokens: i64,
    /// Units generated.
    pub units: i64,
}

impl OmniTimings {
    const ABSENT: OmniTimings = OmniTimings {
        encode_ms: -1.0,
        prefill_ms: -1.0,
        first_text_ms: -1.0,
        first_audio_ms: -1.0,
        total_ms: -1.0,
        speech_decoder_ms: -1.0,
        vocoder_ms: -1.0,
        tokens_per_s: -1.0,
        audio_s: -1.0,
        real_time_factor: -1.0,
        tokens: -1,
        units: -1,
    };

    fn from_core(t: &Timings) -> Self {
        OmniTimings {
            encode_ms: t.encode_ms,
            prefill_ms: t.prefill_ms,
            first_text_ms: t.first_text_ms.unwrap_or(-1.0),
            first_audio_ms: t.first_audio_ms.unwrap_or(-1.0),
            total_ms: t.total_ms,
            speech_decoder_ms: t.speech_decoder_ms,
            vocoder_ms: t.vocoder_ms,
            tokens_per_s: t.tokens_per_s,
            audio_s: t.audio_s,
            real_time_factor: t.real_time_factor,
            tokens: i64::try_from(t.tokens).unwrap_or(i64::MAX),
            units: i64::try_from(t.units).unwrap_or(i64::MAX),
        }
    }
}

/// One session event, from `omni_session_poll`. Fields a type does not use
/// are 0 / NULL (`timings`: all -1).
///
/// Ownership: the event and every array and string it points to belong to
/// the caller from `omni_session_poll` until `omni_event_free(event)`, which
/// frees them all at once; pointers into it are invalid after that. Treat it
/// as read-only (omni frees what it allocated, whatever the fields hold).
/// Events are independent of their session: one may outlive
/// `omni_session_free` and be freed on any thread.
#[repr(C)]
#[derive(Debug)]
pub struct OmniEvent {
    /// `sizeof(OmniEvent)` of the library that made it; later ABI versions
    /// only append fields.
    pub struct_size: usize,
    /// What happened.
    pub r#type: OmniEventType,
    /// The turn it belongs to (from 1), 0 for events outside turns.
    pub turn: u32,
    /// NUL-terminated UTF-8 (TEXT: the delta; TURN_DONE / INTERRUPTED: the
    /// answer's text), else NULL. Interior NULs become U+FFFD.
    pub text: *const c_char,
    /// Bytes of `text` before its NUL (0 when NULL).
    pub text_len: usize,
    /// TEXT: the token id.
    pub token: u32,
    /// UNITS: the unit ids, `n_units` of them (NULL when 0).
    pub units: *const u32,
    /// Number of `units`.
    pub n_units: usize,
    /// AUDIO: mono f32 PCM in [-1, 1], `n_pcm` samples (NULL when 0).
    pub pcm: *const f32,
    /// Number of `pcm` samples.
    pub n_pcm: usize,
    /// AUDIO: sample rate of `pcm` in Hz.
    pub sample_rate: u32,
    /// AUDIO: chunk number within the turn, from 0.
    pub seq: u32,
    /// SPEECH_STARTED / SPEECH_ENDED: position in the pushed audio, ms.
    pub at_ms: u64,
    /// TURN_STARTED: duration of the user's turn audio, ms.
    pub audio_ms: u64,
    /// TURN_DONE: timings (all -1 otherwise).
    pub timings: OmniTimings,
    /// ERROR: the error class.
    pub error_code: OmniErrorCode,
    /// ERROR: whether the session can go on.
    pub recoverable: bool,
    /// WARNING / ERROR: NUL-terminated UTF-8 message, else NULL.
    pub message: *const c_char,
    /// INTERRUPTED: why.
    pub interrupt_reason: OmniInterruptReason,
    /// TURN_DONE: end of speech → the endpointer committed the turn, ms (its
    /// trailing-silence wait; 0 for explicit and text turns); -1 otherwise.
    pub endpoint_wait_ms: f64,
    /// TURN_DONE: whether the encoder and prefill started speculatively,
    /// before the endpoint was confirmed.
    pub speculative: bool,
}

/// The event and the storage its pointers point into. `ev` comes first and
/// the layout is C's, so a `*mut EventBox` is a valid `*mut OmniEvent`.
#[repr(C)]
struct EventBox {
    ev: OmniEvent,
    text: Option<CString>,
    message: Option<CString>,
    units: Vec<u32>,
    pcm: Vec<f32>,
}

impl EventBox {
    fn new(r#type: OmniEventType) -> Self {
        EventBox {
            ev: OmniEvent {
                struct_size: std::mem::size_of::<OmniEvent>(),
                r#type,
                turn: 0,
                text: std::ptr::null(),
                text_len: 0,
                token: 0,
                units: std::ptr::null(),
                n_units: 0,
                pcm: std::ptr::null(),
                n_pcm: 0,
                sample_rate: 0,
                seq: 0,
                at_ms: 0,
                audio_ms: 0,
                timings: OmniTimings::ABSENT,
                error_code: OmniErrorCode::OMNI_ERROR_NONE,
                recoverable: false,
                message: std::ptr::null(),
                interrupt_reason: OmniInterruptReason::OMNI_INTERRUPT_NONE,
                endpoint_wait_ms: -1.0,
                speculative: false,
            },
            text: None,
            message: None,
            units: Vec::new(),
            pcm: Vec::new(),
        }
    }

    fn text(mut self, s: &str) -> Self {
        let c = to_cstring(s);
        self.ev.text_len = c.as_bytes().len();
        // The CString's heap buffer does not move when the CString moves.
        self.ev.text = c.as_ptr();
        self.text = Some(c);
        self
    }

    fn message(mut self, s: &str) -> Self {
        let c = to_cstring(s);
        self.ev.message = c.as_ptr();
        self.message = Some(c);
        self
    }
}

fn error_code(c: ErrorCode) -> OmniErrorCode {
    match c {
        ErrorCode::NoSpeech => OmniErrorCode::OMNI_ERROR_NO_SPEECH,
        ErrorCode::InvalidInput => OmniErrorCode::OMNI_ERROR_INVALID_INPUT,
        ErrorCode::Model => OmniErrorCode::OMNI_ERROR_MODEL,
        ErrorCode::Internal => OmniErrorCode::OMNI_ERROR_INTERNAL,
        // A code added to omni-core before this ABI names it.
        _ => OmniErrorCode::OMNI_ERROR_INTERNAL,
    }
}

/// Converts a core event into a heap `OmniEvent` owned by the caller.
pub(crate) fn into_raw(e: Event) -> *mut OmniEvent {
    use OmniEventType as T;
    let b = match e {
        Event::SpeechStarted { at_ms } => {
            let mut b = EventBox::new(T::OMNI_EVENT_SPEECH_STARTED);
            b.ev.at_ms = at_ms;
            b
        }
        Event::SpeechEnded { at_ms } => {
            let mut b = EventBox::new(T::OMNI_EVENT_SPEECH_ENDED);
            b.ev.at_ms = at_ms;
            b
        }
        Event::TurnStarted { turn, audio_ms } => {
            let mut b = EventBox::new(T::OMNI_EVENT_TURN_STARTED);
            b.ev.turn = turn;
            b.ev.audio_ms = audio_ms;
            b
        }
        Event::TextDelta { turn, text, token } => {
            let mut b = EventBox::new(T::OMNI_EVENT_TEXT).text(&text);
            b.ev.turn = turn;
            b.ev.token = token;
            b
        }
        Event::Units { turn, units } => {
            let mut b = EventBox::new(T::OMNI_EVENT_UNITS);
            b.ev.turn = turn;
            b.ev.n_units = units.len();
            if !units.is_empty() {
                b.ev.units = units.as_ptr();
            }
            b.units = units;
            b
        }
        Event::Audio {
            turn,
            seq,
            pcm,
            sample_rate,
        } => {
            let mut b = EventBox::new(T::OMNI_EVENT_AUDIO);
            b.ev.turn = turn;
            b.ev.seq = seq;
            b.ev.sample_rate = sample_rate;
            b.ev.n_pcm = pcm.len();
            if !pcm.is_empty() {
                b.ev.pcm = pcm.as_ptr();
            }
            b.pcm = pcm;
            b
        }
        Event::TurnDone {
            turn,
            text,
            timings,
        } => {
            let mut b = EventBox::new(T::OMNI_EVENT_TURN_DONE).text(&text);
            b.ev.turn = turn;
            b.ev.timings = OmniTimings::from_core(&timings);
            b.ev.endpoint_wait_ms = timings.endpoint_wait_ms;
            b.ev.speculative = timings.speculative;
            b
        }
        Event::Interrupted { turn, reason, text } => {
            let mut b = EventBox::new(T::OMNI_EVENT_INTERRUPTED).text(&text);
            b.ev.turn = turn;
            b.ev.interrupt_reason = match reason {
                InterruptReason::BargeIn => OmniInterruptReason::OMNI_INTERRUPT_BARGE_IN,
                InterruptReason::Cancel => OmniInterruptReason::OMNI_INTERRUPT_CANCEL,
                InterruptReason::Resumed => OmniInterruptReason::OMNI_INTERRUPT_RESUMED,
                _ => OmniInterruptReason::OMNI_INTERRUPT_CANCEL,
            };
            b
        }
        Event::Warning { message } => EventBox::new(T::OMNI_EVENT_WARNING).message(&message),
        Event::Error {
            code,
            message,
            recoverable,
        } => {
            let mut b = EventBox::new(T::OMNI_EVENT_ERROR).message(&message);
            b.ev.error_code = error_code(code);
            b.ev.recoverable = recoverable;
            b
        }
        // An event added to omni-core before this ABI has a type for it.
        other => EventBox::new(T::OMNI_EVENT_WARNING).message(&format!("{other:?}")),
    };
    Box::into_raw(Box::new(b)).cast::<OmniEvent>()
}

/// Frees an event made by [`into_raw`].
///
/// Safety: `event` is a pointer from `into_raw` not yet freed.
pub(crate) unsafe fn free_raw(event: *mut OmniEvent) {
    // SAFETY: every `OmniEvent*` omni hands out is the first field of a
    // Box<EventBox> (`into_raw`), not yet freed (contract).
    drop(unsafe { Box::from_raw(event.cast::<EventBox>()) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::omni_event_free;
    use std::ffi::CStr;

    #[test]
    fn events_own_their_data() {
        let p = into_raw(Event::TextDelta {
            turn: 2,
            text: "hé\0!".into(),
            token: 7,
        });
        // SAFETY: a fresh event from into_raw, freed below.
        let ev = unsafe { &*p };
        assert_eq!(ev.r#type, OmniEventType::OMNI_EVENT_TEXT);
        assert_eq!((ev.turn, ev.token), (2, 7));
        // SAFETY: `text` is a NUL-terminated string owned by the event.
        let t = unsafe { CStr::from_ptr(ev.text) };
        assert_eq!(t.to_str().ok(), Some("hé\u{FFFD}!"));
        assert_eq!(ev.text_len, t.to_bytes().len());
        assert_eq!(ev.timings.total_ms, -1.0);
        // SAFETY: freed once.
        unsafe { omni_event_free(p) };

        let p = into_raw(Event::Audio {
            turn: 1,
            seq: 3,
            pcm: vec![0.5; 320],
            sample_rate: 16000,
        });
        // SAFETY: as above.
        let ev = unsafe { &*p };
        assert_eq!((ev.n_pcm, ev.seq, ev.sample_rate), (320, 3, 16000));
        // SAFETY: `pcm` holds `n_pcm` samples owned by the event.
        let pcm = unsafe { std::slice::from_raw_parts(ev.pcm, ev.n_pcm) };
        assert!(pcm.iter().all(|&x| x == 0.5));
        assert!(ev.text.is_null() && ev.message.is_null() && ev.units.is_null());
        // SAFETY: freed once.
        unsafe { omni_event_free(p) };

        let p = into_raw(Event::Units {
            turn: 1,
            units: vec![],
        });
        // SAFETY: as above.
        assert!(unsafe { &*p }.units.is_null());
        // SAFETY: freed once; NULL is a no-op.
        unsafe {
            omni_event_free(p);
            omni_event_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn timings_mark_absent_values() {
        let mut t = Timings::default();
        t.first_text_ms = Some(12.5);
        t.tokens = 4;
        let p = into_raw(Event::TurnDone {
            turn: 1,
            text: "ok".into(),
            timings: t,
        });
        // SAFETY: a fresh event from into_raw, freed below.
        let ev = unsafe { &*p };
        assert_eq!(ev.timings.first_text_ms, 12.5);
        assert_eq!(ev.timings.first_audio_ms, -1.0);
        assert_eq!(ev.timings.tokens, 4);
        // SAFETY: freed once.
        unsafe { omni_event_free(p) };
    }
}
