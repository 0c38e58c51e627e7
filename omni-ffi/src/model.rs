//! `OmniModel`: the loaded model, shared by sessions.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use omni_core::Omni;
use omni_core::{Progress, ProgressFn};

use crate::args::{obj, path, read_sized, write_sized, OutPtr};
use crate::error::{guard, to_cstring, OmniStatus};
use crate::options::OmniModelOptions;

/// A loaded model (speech encoder, adaptor, LLM, speech decoder, vocoder,
/// tokenizer). Opaque. Thread-safe: one model serves any number of sessions
/// on any threads; it is read-only after loading.
pub struct OmniModel {
    pub(crate) omni: Arc<Omni>,
}

/// Load-progress callback: `done` of `total` units of `stage` (`"speech
/// encoder"`, `"llm"`, `"speech decoder"`, `"vocoder"`, ...), called on the
/// thread that called `omni_model_load`, during that call. `stage` is
/// borrowed: valid only during the callback. The callback must return
/// normally (no C++ exception, no longjmp) and must not free the model
/// being loaded.
pub type OmniProgressFn = Option<
    unsafe extern "C" fn(stage: *const c_char, done: usize, total: usize, user_data: *mut c_void),
>;

/// Fills `*opts` with the defaults (device `"cpu"`, `OMNI_DTYPE_F32`, speech
/// encoder as the config says). Set `opts->struct_size = sizeof(*opts)`
/// first; it is kept.
///
/// Errors: `OMNI_ERR_NULL_ARGUMENT` (opts NULL), `OMNI_ERR_STRUCT_SIZE`.
/// Ownership: `device` is set to a static string. Threads: any.
///
/// Safety: `opts` is NULL or points to a writable `OmniModelOptions`.
#[no_mangle]
pub unsafe extern "C" fn omni_model_options_default(opts: *mut OmniModelOptions) -> OmniStatus {
    guard(|| {
        // SAFETY: `opts` is NULL or a writable struct (this function's contract).
        unsafe { write_sized(opts, OmniModelOptions::defaults()) }
    })
}

/// Loads a model: `model_dir` (the `Llama-3.1-8B-Omni` folder: config.json,
/// safetensors shards, tokenizer.json; the Whisper `.pt` as its config says
/// or `opts->speech_encoder`) and `vocoder_dir` (`g_00500000` + config.json).
/// Blocks until loaded; `progress` (nullable) is called along the way with
/// `user_data` (any value, passed through).
///
/// On success `*out` is a new model owned by the caller, freed with
/// `omni_model_free`. On failure `*out` is NULL and `omni_last_error()` says
/// why: `OMNI_ERR_NULL_ARGUMENT` (model_dir, vocoder_dir or out NULL),
/// `OMNI_ERR_STRUCT_SIZE`, `OMNI_ERR_INVALID_ARGUMENT` (bad dtype, bad UTF-8),
/// `OMNI_ERR_IO` (missing/unreadable file), `OMNI_ERR_MODEL` (malformed
/// file), `OMNI_ERR_DEVICE`.
///
/// `opts` may be NULL (all defaults); its strings are only read during
/// this call. Threads: any; several models may load at once.
///
/// Safety: `model_dir`, `vocoder_dir` are NULL or NUL-terminated; `opts` is NULL or
/// a readable `OmniModelOptions` with `struct_size` set; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn omni_model_load(
    model_dir: *const c_char,
    vocoder_dir: *const c_char,
    opts: *const OmniModelOptions,
    progress: OmniProgressFn,
    user_data: *mut c_void,
    out: *mut *mut OmniModel,
) -> OmniStatus {
    guard(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says.
        let (out, model_dir, vocoder_dir) = unsafe {
            (
                OutPtr::new(out, "out")?,
                path(model_dir, "model_dir")?,
                path(vocoder_dir, "vocoder_dir")?,
            )
        };
        let o = if opts.is_null() {
            OmniModelOptions::defaults()
        } else {
            // SAFETY: non-NULL, a readable struct with struct_size set (contract).
            unsafe { read_sized(opts, OmniModelOptions::defaults()) }?
        };
        // SAFETY: the option strings are NULL or NUL-terminated (contract);
        // the defaults point at static strings.
        let core_opts = unsafe { o.to_core() }?;
        let mut report = |p: &Progress| {
            if let Some(cb) = progress {
                let stage = to_cstring(&p.stage);
                // SAFETY: the caller's callback with the caller's `user_data`;
                // `stage` lives until after the call. The callback must not
                // unwind (documented); a Rust panic cannot start inside it.
                unsafe { cb(stage.as_ptr(), p.done, p.total, user_data) };
            }
        };
        let omni = Omni::load(
            &model_dir,
            &vocoder_dir,
            &core_opts,
            Some(&mut report as ProgressFn<'_>),
        )?;
        out.set(Box::into_raw(Box::new(OmniModel {
            omni: Arc::new(omni),
        })));
        Ok(())
    })
}

/// Frees a model from `omni_model_load`. NULL is a no-op. Sessions made from
/// it keep their own reference and stay usable: the weights are released
/// when the model and every session made from it are freed.
///
/// Threads: any, once, when no other call is using this `OmniModel*`
/// (`omni_session_new`, `omni_session_options_default`).
///
/// Safety: `model` is NULL or a pointer from `omni_model_load` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn omni_model_free(model: *mut OmniModel) {
    if model.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a live pointer from Box::into_raw in omni_model_load (contract),
        // freed exactly once.
        drop(unsafe { Box::from_raw(model) });
    }));
}

/// The model behind a pointer.
///
/// Safety: `model` is NULL or a live `OmniModel*`.
pub(crate) unsafe fn model_ref<'a>(
    model: *const OmniModel,
) -> crate::error::FfiResult<&'a OmniModel> {
    // SAFETY: forwarded contract.
    unsafe { obj(model, "model") }
}
