//! `OmniSession`: one conversation over a shared model.
//!
//! `omni_core::Session` is `Send + Sync` (its input side and event queue sit
//! behind mutexes, its flags are atomics), so every call but `free` may come
//! from any thread, concurrently.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::Duration;

use omni_core::ErrorCode;
use omni_core::{Event, Session};

use std::ffi::c_char;

use crate::args::{obj, opt_str, read_sized, sample_slice, write_out, write_sized, OutPtr};
use crate::error::{guard, panic_message, FfiError, FfiResult, OmniStatus};
use crate::event::{free_raw, into_raw, OmniEvent};
use crate::model::{model_ref, OmniModel};
use crate::options::OmniSessionOptions;

/// One conversation: push audio in, poll events out. Opaque.
///
/// Threads: every `omni_session_*` call except `omni_session_free` may be
/// made from any thread, also concurrently with other calls on the same
/// session (the usual split: an audio thread pushes, another thread polls
/// and calls end_turn/cancel/reset). Events come out in order; if several
/// threads poll at once, each event goes to exactly one of them.
/// `omni_session_free` must be called once, after every other call on the
/// session has returned.
pub struct OmniSession {
    session: Session,
    /// Set when a call on this session panicked or its worker died: why.
    failed: OnceLock<String>,
}

impl OmniSession {
    fn fail(&self, why: String) {
        let _ = self.failed.set(why);
    }
}

/// Runs `f` on a live, not-failed session; a panic inside marks the session
/// failed (every later call then returns `OMNI_ERR_SESSION_FAILED`).
///
/// Safety: `s` is NULL or a live `OmniSession*` (not freed while this runs).
unsafe fn with_session(
    s: *mut OmniSession,
    f: impl FnOnce(&OmniSession) -> FfiResult<()>,
) -> FfiResult<()> {
    // SAFETY: forwarded contract.
    let s = unsafe { obj(s.cast_const(), "session") }?;
    if let Some(why) = s.failed.get() {
        return Err(FfiError::SessionFailed(why.clone()));
    }
    match catch_unwind(AssertUnwindSafe(|| f(s))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            s.fail(format!("a call panicked: {msg}"));
            Err(FfiError::Panic(format!(
                "{msg} (the session is now failed)"
            )))
        }
    }
}

/// Fills `*opts` with the defaults for `model` (greedy decoding, 256 new
/// tokens, first chunk 10 units then 40, endpointing and barge-in on, ...;
/// see `OmniSessionOptions`). Set `opts->struct_size = sizeof(*opts)` first;
/// it is kept.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT` (model or opts NULL), `OMNI_ERR_STRUCT_SIZE`.
/// Ownership: nothing is allocated (string fields are set to NULL = default).
/// Threads: any.
///
/// Safety: `model` is NULL or a live `OmniModel*`; `opts` is NULL or a writable
/// `OmniSessionOptions`.
#[no_mangle]
pub unsafe extern "C" fn omni_session_options_default(
    model: *const OmniModel,
    opts: *mut OmniSessionOptions,
) -> OmniStatus {
    guard(|| {
        // SAFETY: `model` is NULL or live (contract).
        let m = unsafe { model_ref(model) }?;
        // SAFETY: `opts` is NULL or a writable struct (contract).
        unsafe { write_sized(opts, OmniSessionOptions::defaults(&m.omni)) }
    })
}

/// Starts a session over `model` (it starts the session's worker thread).
/// `opts` may be NULL (the model's defaults); its strings are copied.
///
/// On success `*out` is a new session owned by the caller, freed with
/// `omni_session_free`; it holds its own reference to the model. On failure
/// `*out` is NULL: `OMNI_ERR_NULL_ARGUMENT` (model or out NULL),
/// `OMNI_ERR_STRUCT_SIZE`, `OMNI_ERR_INVALID_ARGUMENT` (an option out of
/// range: the message names it).
///
/// Threads: any; sessions of one model may be created and used on
/// different threads at once.
///
/// Safety: `model` is NULL or a live `OmniModel*`; `opts` is NULL or a readable
/// `OmniSessionOptions` with `struct_size` set and NULL-or-NUL-terminated
/// strings; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn omni_session_new(
    model: *const OmniModel,
    opts: *const OmniSessionOptions,
    out: *mut *mut OmniSession,
) -> OmniStatus {
    guard(|| {
        // SAFETY: `out` is NULL or writable, `model` NULL or live (contract).
        let (out, m) = unsafe { (OutPtr::new(out, "out")?, model_ref(model)?) };
        let o = if opts.is_null() {
            OmniSessionOptions::defaults(&m.omni)
        } else {
            // SAFETY: non-NULL, readable, struct_size set (contract).
            unsafe { read_sized(opts, OmniSessionOptions::defaults(&m.omni)) }?
        };
        // SAFETY: the strings are NULL or NUL-terminated (contract).
        let core_opts = unsafe { o.to_core(&m.omni) }?;
        let session = Session::new(m.omni.clone(), core_opts)?;
        out.set(Box::into_raw(Box::new(OmniSession {
            session,
            failed: OnceLock::new(),
        })));
        Ok(())
    })
}

/// Pushes `n` mono f32 samples in [-1, 1] at `sample_rate` Hz (any rate in
/// 1000..=384000; resampled to 16 kHz). Any chunk size. The samples are
/// copied: the buffer is the caller's again when the call returns.
///
/// `n == 0` pushes nothing (`samples` may then be NULL; the rate is still
/// checked). Errors:
/// `OMNI_ERR_NULL_ARGUMENT` (session NULL, or samples NULL with n > 0),
/// `OMNI_ERR_INVALID_ARGUMENT` (n above 2^28, misaligned buffer),
/// `OMNI_ERR_AUDIO` (NaN/inf sample, rate out of range: nothing is kept),
/// `OMNI_ERR_SESSION_FAILED`.
///
/// Does not block on generation (the endpointer runs inline: ~microseconds
/// per 20 ms). Threads: any, e.g. an audio thread while another polls.
///
/// Safety: `session` is NULL or live; `samples` is NULL or points to `n` readable floats.
#[no_mangle]
pub unsafe extern "C" fn omni_session_push_f32(
    session: *mut OmniSession,
    samples: *const f32,
    n: usize,
    sample_rate: u32,
) -> OmniStatus {
    guard(|| {
        // SAFETY: `samples` is NULL or `n` readable floats (contract).
        let pcm = unsafe { sample_slice(samples, n, "samples") }?;
        // SAFETY: `session` is NULL or live (contract).
        unsafe { with_session(session, |s| Ok(s.session.push_audio(pcm, sample_rate)?)) }
    })
}

/// As `omni_session_push_f32`, for 16-bit signed PCM (scaled by 1/32768).
///
/// Safety: `session` is NULL or live; `samples` is NULL or points to `n` readable int16s.
#[no_mangle]
pub unsafe extern "C" fn omni_session_push_i16(
    session: *mut OmniSession,
    samples: *const i16,
    n: usize,
    sample_rate: u32,
) -> OmniStatus {
    guard(|| {
        // SAFETY: `samples` is NULL or `n` readable int16s (contract).
        let pcm = unsafe { sample_slice(samples, n, "samples") }?;
        // SAFETY: `session` is NULL or live (contract).
        unsafe {
            with_session(session, |s| {
                Ok(s.session.push_audio_i16(pcm, sample_rate)?)
            })
        }
    })
}

/// Ends the user's turn now; the answer streams as events. The turn is every
/// sample pushed since the last turn, nothing trimmed (explicit mode: a file
/// with silence before, after or inside the speech is one turn). A turn
/// without audio or in which no speech was heard is not an API error: it gives
/// an `OMNI_EVENT_ERROR` event with `OMNI_ERROR_NO_SPEECH` and is dropped (so
/// calling this twice in a row is safe: the second call reports no speech).
/// Otherwise the turn is committed: `omni_session_is_busy` is true from here
/// until its last event is queued, and `omni_session_cancel` applies to it
/// even before its answer starts.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT`, `OMNI_ERR_SESSION_FAILED`. Threads: any.
///
/// Safety: `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn omni_session_end_turn(session: *mut OmniSession) -> OmniStatus {
    // SAFETY: `session` is NULL or live (contract).
    guard(|| unsafe { with_session(session, |s| Ok(s.session.end_turn()?)) })
}

/// A typed user turn: `text` (NUL-terminated UTF-8, copied) is answered with
/// text and speech like a spoken turn, in the same history (the llama_3
/// template with the text as the user message, no speech placeholder).
/// Audio pushed so far stays for the next spoken turn.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT` (session or text NULL),
/// `OMNI_ERR_INVALID_ARGUMENT` (not UTF-8, or empty), `OMNI_ERR_SESSION_FAILED`.
/// Threads: any.
///
/// Safety: `session` is NULL or live; `text` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn omni_session_push_text(
    session: *mut OmniSession,
    text: *const c_char,
) -> OmniStatus {
    guard(|| {
        // SAFETY: `text` is NULL or NUL-terminated (contract).
        let t = unsafe { opt_str(text, "text") }?.ok_or(FfiError::Null("text"))?;
        // SAFETY: `session` is NULL or live (contract).
        unsafe { with_session(session, |s| Ok(s.session.push_text(t)?)) }
    })
}

/// Tells the session how much of `turn`'s answer audio the app has played:
/// `samples` from the start of the turn's audio (cumulative, at the AUDIO
/// events' `sample_rate`; call as playback advances, e.g. when the user
/// interrupts playback). When that answer is interrupted or the next turn
/// starts before it was all played, the history keeps only the tokens whose
/// audio was played (none when 0 was played); the next prompt holds exactly
/// what the user heard. Without calls, every sample the session sent counts as
/// played. A report of 0 for a fresh answer also lets a question the user goes
/// on with continue (`resume_grace_ms`) even though audio was already sent.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT`, `OMNI_ERR_SESSION_FAILED`. Threads: any.
///
/// Safety: `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn omni_session_played(
    session: *mut OmniSession,
    turn: u32,
    samples: u64,
) -> OmniStatus {
    guard(|| {
        // SAFETY: `session` is NULL or live (contract).
        unsafe {
            with_session(session, |s| {
                s.session.played(turn, samples);
                Ok(())
            })
        }
    })
}

/// Stops every committed turn: the answer being generated and the turns
/// still waiting for their answer. Each ends with one `OMNI_EVENT_INTERRUPTED`
/// event (`OMNI_INTERRUPT_CANCEL`); a turn that had not started gets only
/// that event (no TURN_STARTED) and never reaches the history. Events already
/// queued stay to be polled. A no-op returning `OMNI_OK` when no turn is
/// pending. Does not wait.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT`, `OMNI_ERR_SESSION_FAILED`. Threads: any.
///
/// Safety: `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn omni_session_cancel(session: *mut OmniSession) -> OmniStatus {
    guard(|| {
        // SAFETY: `session` is NULL or live (contract).
        unsafe {
            with_session(session, |s| {
                s.session.cancel();
                Ok(())
            })
        }
    })
}

/// Forgets the conversation: cancels every committed turn as
/// `omni_session_cancel` does (queued turns are not answered: each gets its
/// `OMNI_INTERRUPT_CANCEL` event), drops the input audio not yet in a turn,
/// and clears the history, so the next turn starts a fresh conversation.
/// Events already queued stay to be polled. Does not wait.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT`, `OMNI_ERR_SESSION_FAILED`. Threads: any.
///
/// Safety: `session` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn omni_session_reset(session: *mut OmniSession) -> OmniStatus {
    // SAFETY: `session` is NULL or live (contract).
    guard(|| unsafe { with_session(session, |s| Ok(s.session.reset()?)) })
}

/// Takes the next event, waiting up to `timeout_ms` (0: do not wait;
/// negative: wait until one comes).
///
/// Returns `OMNI_OK` with `*out` set to a new event, or `OMNI_OK` with
/// `*out == NULL` on timeout. Ownership: the event is the caller's until
/// `omni_event_free(*out)`. Errors (`*out` NULL): `OMNI_ERR_NULL_ARGUMENT`
/// (session or out NULL), `OMNI_ERR_SESSION_FAILED` (after the event that
/// reported the failure was delivered).
///
/// Poll often: generation pauses while `event_capacity` events wait.
/// Threads: any (usually one consumer thread).
///
/// Safety: `session` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn omni_session_poll(
    session: *mut OmniSession,
    timeout_ms: i32,
    out: *mut *mut OmniEvent,
) -> OmniStatus {
    guard(|| {
        // SAFETY: `out` is NULL or writable (contract).
        let out = unsafe { OutPtr::new(out, "out") }?;
        // SAFETY: `session` is NULL or live (contract).
        unsafe {
            with_session(session, |s| {
                let event = match u64::try_from(timeout_ms) {
                    Ok(ms) => s.session.next_event(Duration::from_millis(ms)),
                    Err(_) => loop {
                        if let Some(e) = s.session.next_event(Duration::from_secs(3600)) {
                            break Some(e);
                        }
                    },
                };
                if let Some(e) = event {
                    if let Event::Error {
                        code: ErrorCode::Internal,
                        recoverable: false,
                        message,
                    } = &e
                    {
                        s.fail(format!("its worker failed: {message}"));
                    }
                    out.set(into_raw(e));
                }
                Ok(())
            })
        }
    })
}

/// Frees an event from `omni_session_poll` and everything it points to.
/// NULL is a no-op.
///
/// Threads: any (events are independent of their session), once per event.
///
/// Safety: `event` is NULL or a pointer from `omni_session_poll` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn omni_event_free(event: *mut OmniEvent) {
    if event.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a pointer from omni_session_poll (made by `into_raw`),
        // not yet freed (contract).
        unsafe { free_raw(event) };
    }));
}

/// Whether a committed turn has not had its last event queued yet (true from
/// `omni_session_end_turn`, an endpoint or `omni_session_push_text` until
/// its TURN_DONE / INTERRUPTED / ERROR event is queued): `*busy` = true / false.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT` (session or busy NULL),
/// `OMNI_ERR_SESSION_FAILED`. Threads: any.
///
/// Safety: `session` is NULL or live; `busy` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn omni_session_is_busy(
    session: *mut OmniSession,
    busy: *mut bool,
) -> OmniStatus {
    // SAFETY: `session` is NULL or live, `busy` NULL or writable (contract);
    // write_out checks NULL.
    guard(|| unsafe { with_session(session, |s| write_out(busy, "busy", s.session.is_busy())) })
}

/// Frees a session: cancels every committed turn (the one being answered and
/// those waiting), drops the events not yet polled, and joins the worker
/// thread (blocks for at most the model step in flight, never on an unpolled
/// queue). NULL is a no-op. Events already polled stay valid (free them with
/// `omni_event_free`).
///
/// Threads: any, once, after every other call on this session returned.
///
/// Safety: `session` is NULL or a pointer from `omni_session_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn omni_session_free(session: *mut OmniSession) {
    if session.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a live pointer from Box::into_raw in omni_session_new
        // (contract), freed exactly once.
        drop(unsafe { Box::from_raw(session) });
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::omni_last_error;
    use crate::model::{omni_model_free, omni_model_load};
    use std::ffi::{CStr, CString};
    use std::ptr::{null, null_mut};

    fn fixture(rel: &str) -> CString {
        CString::new(format!(
            "{}/../tests/fixtures/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_default()
    }

    fn last_error() -> String {
        // SAFETY: never NULL, valid until the next omni call on this thread.
        unsafe { CStr::from_ptr(omni_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panicking_call_fails_the_session() {
        let (md, vd) = (fixture("omni_tiny"), fixture("vocoder/tiny"));
        let mut m = null_mut();
        // SAFETY: valid strings, NULL options and callback, a writable out pointer.
        let st =
            unsafe { omni_model_load(md.as_ptr(), vd.as_ptr(), null(), None, null_mut(), &mut m) };
        assert_eq!(st, OmniStatus::OMNI_OK, "{}", last_error());
        let mut s = null_mut();
        // SAFETY: a live model, default options, a writable out pointer.
        let st = unsafe { omni_session_new(m, null(), &mut s) };
        assert_eq!(st, OmniStatus::OMNI_OK);

        // SAFETY: `s` is live.
        let st = guard(|| unsafe { with_session(s, |_| panic!("injected failure")) });
        assert_eq!(st, OmniStatus::OMNI_ERR_INTERNAL);
        assert!(
            last_error().contains("injected failure"),
            "{}",
            last_error()
        );
        // SAFETY: `s` is live (failed sessions stay valid until freed).
        let st = unsafe { omni_session_end_turn(s) };
        assert_eq!(st, OmniStatus::OMNI_ERR_SESSION_FAILED);
        assert!(
            last_error().contains("injected failure"),
            "{}",
            last_error()
        );
        let mut ev = null_mut();
        // SAFETY: as above; `ev` is writable.
        let st = unsafe { omni_session_poll(s, 0, &mut ev) };
        assert_eq!(st, OmniStatus::OMNI_ERR_SESSION_FAILED);
        assert!(ev.is_null());
        // SAFETY: each freed once, the session first.
        unsafe {
            omni_session_free(s);
            omni_model_free(m);
        }
    }
}
