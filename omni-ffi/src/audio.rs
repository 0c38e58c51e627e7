//! `omni_audio_read`: audio files for C callers, through
//! `omni_core::audio::read_audio` (the function the CLI uses).

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::args::{path as path_arg, OutPtr};
use crate::error::{guard, OmniStatus};

/// Decoded audio from `omni_audio_read`: mono samples in [-1, 1) at the
/// file's own sample rate (push them as they are: sessions resample). Read
/// only: free it with `omni_audio_free`.
#[repr(C)]
#[derive(Debug)]
pub struct OmniAudio {
    /// `sizeof(OmniAudio)` of the library that made it.
    pub struct_size: usize,
    /// `n_samples` samples (never NULL).
    pub samples: *const f32,
    /// Number of samples (at least 1).
    pub n_samples: usize,
    /// The file's sample rate in Hz.
    pub sample_rate: u32,
}

/// Reads an audio file: WAV (PCM), FLAC, MP3 or Ogg Vorbis, told apart by
/// their bytes. Channels are averaged to mono. Opus is not decoded.
///
/// On success `*out` is a new `OmniAudio` owned by the caller, freed with
/// `omni_audio_free`. On failure `*out` is NULL and `omni_last_error()` says
/// why: `OMNI_ERR_NULL_ARGUMENT` (path or out NULL), `OMNI_ERR_IO`
/// (missing/unreadable file), `OMNI_ERR_AUDIO` (empty, unknown format,
/// unsupported codec, truncated or corrupt file).
///
/// Threads: any.
///
/// Safety: `path` is NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn omni_audio_read(
    path: *const c_char,
    out: *mut *mut OmniAudio,
) -> OmniStatus {
    guard(|| {
        // SAFETY: each pointer is NULL or valid as this function's contract says.
        let (out, p) = unsafe { (OutPtr::new(out, "out")?, path_arg(path, "path")?) };
        let (samples, rate) = omni_core::audio::read_audio(&p)?;
        let samples: Box<[f32]> = samples.into_boxed_slice();
        let n_samples = samples.len();
        let samples = Box::into_raw(samples).cast::<f32>().cast_const();
        out.set(Box::into_raw(Box::new(OmniAudio {
            struct_size: std::mem::size_of::<OmniAudio>(),
            samples,
            n_samples,
            sample_rate: rate,
        })));
        Ok(())
    })
}

/// Frees an `OmniAudio` from `omni_audio_read`. NULL is a no-op.
///
/// Threads: any, once.
///
/// Safety: `audio` is NULL or a pointer from `omni_audio_read` not yet freed, whose
/// fields were not changed.
#[no_mangle]
pub unsafe extern "C" fn omni_audio_free(audio: *mut OmniAudio) {
    if audio.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a live pointer from Box::into_raw in omni_audio_read
        // (contract), freed exactly once.
        let a = unsafe { Box::from_raw(audio) };
        let slice = std::ptr::slice_from_raw_parts_mut(a.samples.cast_mut(), a.n_samples);
        // SAFETY: `samples`/`n_samples` are the boxed slice's pointer and
        // length from omni_audio_read, unchanged (contract), freed once.
        drop(unsafe { Box::from_raw(slice) });
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{CStr, CString};

    fn fixture(rel: &str) -> CString {
        CString::new(format!(
            "{}/../tests/fixtures/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn last() -> String {
        // SAFETY: never NULL, valid until the next omni call on this thread.
        unsafe { CStr::from_ptr(crate::error::omni_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn audio_read_gives_the_flac_samples_and_frees_them() {
        let mut a: *mut OmniAudio = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path and a writable out pointer.
        let st = unsafe { omni_audio_read(fixture("speech/question.flac").as_ptr(), &mut a) };
        assert_eq!(st, OmniStatus::OMNI_OK, "{}", last());
        // SAFETY: `a` was just set by a successful omni_audio_read.
        let r = unsafe { &*a };
        assert_eq!(r.sample_rate, 16000);
        assert_eq!(r.struct_size, std::mem::size_of::<OmniAudio>());
        // SAFETY: `samples` holds `n_samples` floats until omni_audio_free.
        let s = unsafe { std::slice::from_raw_parts(r.samples, r.n_samples) };
        let wav = omni_core::audio::read_wav(std::path::Path::new(
            &fixture("speech/question.wav").into_string().unwrap(),
        ))
        .unwrap()
        .0;
        assert_eq!(s, &wav[..]);
        // SAFETY: from omni_audio_read, freed once; NULL is a no-op.
        unsafe {
            omni_audio_free(a);
            omni_audio_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn audio_read_errors_have_the_file_statuses() {
        let mut a: *mut OmniAudio = std::ptr::dangling_mut();
        // SAFETY: NUL-terminated paths (or NULL) and writable out pointers.
        unsafe {
            assert_eq!(
                omni_audio_read(std::ptr::null(), &mut a),
                OmniStatus::OMNI_ERR_NULL_ARGUMENT
            );
            assert!(a.is_null());
            assert_eq!(
                omni_audio_read(c"/nonexistent/q.flac".as_ptr(), &mut a),
                OmniStatus::OMNI_ERR_IO
            );
            assert_eq!(
                omni_audio_read(fixture("speech/question.opus").as_ptr(), &mut a),
                OmniStatus::OMNI_ERR_AUDIO
            );
            assert!(last().contains("Opus"), "{}", last());
            assert!(a.is_null());
            assert_eq!(
                omni_audio_read(
                    fixture("speech/question.flac").as_ptr(),
                    std::ptr::null_mut()
                ),
                OmniStatus::OMNI_ERR_NULL_ARGUMENT
            );
        }
    }
}
