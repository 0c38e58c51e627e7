//! The options structs and their conversion to omni-core's.

use std::ffi::c_char;

use omni_core::weights::RunDType;
use omni_core::{Omni, OmniOptions, SessionOptions};

use crate::args::{opt_path, opt_str, SizedStruct};
use crate::error::{FfiError, FfiResult};

/// Run dtype of the model (`OmniModelOptions.dtype`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum OmniDType {
    /// 32-bit floats: exact, the default.
    OMNI_DTYPE_F32 = 0,
    /// 16-bit floats: half the memory.
    OMNI_DTYPE_F16 = 1,
    /// bfloat16.
    OMNI_DTYPE_BF16 = 2,
    /// llama.cpp q8_0 Linear weights of the LLM and speech decoder, quantized at
    /// load (8.5 bits per weight); everything else and the activations in f32.
    OMNI_DTYPE_Q8_0 = 3,
    /// llama.cpp q4_0 Linear weights of the LLM and speech decoder, quantized at
    /// load (4.5 bits per weight); everything else and the activations in f32.
    OMNI_DTYPE_Q4_0 = 4,
}

/// How to load a model. Set `struct_size = sizeof(OmniModelOptions)`, then
/// call `omni_model_options_default` and change what you need.
///
/// The strings are borrowed: they must stay valid during the call that reads
/// the struct (`omni_model_load`), not after.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OmniModelOptions {
    /// `sizeof(OmniModelOptions)`, set by the caller.
    pub struct_size: usize,
    /// Device: `"cpu"`, `"wgpu"`, `"cuda:0"`, ... (NULL = `"cpu"`). Backends
    /// other than cpu need a libomni built with the matching feature.
    pub device: *const c_char,
    /// One of `OmniDType` (default `OMNI_DTYPE_F32`). Applies to the speech
    /// encoder, adaptor, LLM and speech decoder; the vocoder runs in f32.
    /// `OMNI_DTYPE_Q8_0` / `OMNI_DTYPE_Q4_0` quantize only the LLM's and speech
    /// decoder's Linear weights; the adaptor then runs in f32, the encoder with f16
    /// weights on the CPU (f32 elsewhere) and f32 activations.
    pub dtype: i32,
    /// Path of the Whisper encoder `.pt`, overriding the model config's
    /// `speech_encoder` (NULL = as the config says).
    pub speech_encoder: *const c_char,
}

// SAFETY: #[repr(C)], `struct_size: usize` first, only integers and raw pointers.
unsafe impl SizedStruct for OmniModelOptions {
    const NAME: &'static str = "OmniModelOptions";
    const VERSION_ENDS: &'static [usize] = &[std::mem::size_of::<OmniModelOptions>()];
}

impl OmniModelOptions {
    pub(crate) fn defaults() -> Self {
        OmniModelOptions {
            struct_size: std::mem::size_of::<Self>(),
            device: c"cpu".as_ptr(),
            dtype: OmniDType::OMNI_DTYPE_F32 as i32,
            speech_encoder: std::ptr::null(),
        }
    }

    /// Safety: The strings are NULL or NUL-terminated and valid during the call.
    pub(crate) unsafe fn to_core(self) -> FfiResult<OmniOptions> {
        // SAFETY: forwarded contract.
        let device = unsafe { opt_str(self.device, "device") }?
            .unwrap_or("cpu")
            .to_string();
        let dtype = match self.dtype {
            0 => RunDType::F32,
            1 => RunDType::F16,
            2 => RunDType::BF16,
            3 => RunDType::Q8_0,
            4 => RunDType::Q4_0,
            other => {
                return Err(FfiError::Invalid(format!(
                    "dtype {other} is not one of OMNI_DTYPE_F32 (0), OMNI_DTYPE_F16 (1), OMNI_DTYPE_BF16 (2), \
                     OMNI_DTYPE_Q8_0 (3), OMNI_DTYPE_Q4_0 (4)"
                )))
            }
        };
        // SAFETY: forwarded contract.
        let speech_encoder = unsafe { opt_path(self.speech_encoder, "speech_encoder") }?;
        Ok(OmniOptions {
            device,
            dtype,
            speech_encoder,
        })
    }
}

/// Settings of one session. Set `struct_size = sizeof(OmniSessionOptions)`,
/// then call `omni_session_options_default(model, &opts)` (the defaults
/// depend on the model) and change what you need.
///
/// The strings are borrowed: they must stay valid during `omni_session_new`,
/// not after (the session keeps copies).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OmniSessionOptions {
    /// `sizeof(OmniSessionOptions)`, set by the caller.
    pub struct_size: usize,
    /// Most tokens per answer (default 256, at least 1).
    pub max_new_tokens: u32,
    /// Sampling temperature; 0 (default) is greedy decoding, as the reference.
    pub temperature: f32,
    /// Nucleus mass in (0, 1] (default 1: every token).
    pub top_p: f32,
    /// Seed of the sampler's random stream (default 0).
    pub seed: u64,
    /// Units in the first audio chunk: small for a short time to first audio (default 10).
    pub first_chunk_units: u32,
    /// Units per later audio chunk (default 40).
    pub chunk_units: u32,
    /// Non-zero (default 1): live mode, for microphones: the voice detector
    /// ends turns on trailing silence; a turn is the audio from just before the
    /// speech start to its end. Zero: explicit mode, for files and
    /// push-to-talk: only `omni_session_end_turn` ends a turn, and the turn
    /// is every sample pushed since the last one (nothing trimmed).
    pub endpointing: i32,
    /// Silence after speech that ends a turn, in ms (default 640).
    pub trailing_silence_ms: u32,
    /// Voice probability in [0, 1] above which a 16 ms frame counts as speech (default 0.5).
    pub vad_threshold: f32,
    /// Non-zero: speech heard during an answer cancels it and starts the next turn (default 1).
    pub barge_in: i32,
    /// System prompt (UTF-8); NULL = the model's default.
    pub system_prompt: *const c_char,
    /// The user message around the speech, with `<speech>` where it goes
    /// (UTF-8); NULL = the reference's default.
    pub user_message: *const c_char,
    /// Context positions kept; the oldest turns are dropped beyond it
    /// (default: the model's maximum, at most 8192).
    pub max_context: u32,
    /// Generation events buffered before generation pauses for the consumer (default 256).
    pub event_capacity: u32,
    /// Live mode: speech that starts within this many ms after an endpoint,
    /// before any of the answer was played, continues the same question (the
    /// pending answer is dropped, `OMNI_INTERRUPT_RESUMED`). 0: off. Default 1500.
    pub resume_grace_ms: u32,
    /// Live mode, non-zero (default 1): start the encoder and prefill when the
    /// speech ends, before the endpoint is confirmed (thrown away if speech resumes).
    pub speculative_start: i32,
    /// Longest turn in seconds of audio (default 1200); a push past it fails
    /// with `OMNI_ERR_INVALID_ARGUMENT` and keeps nothing.
    pub max_turn_s: u32,
}

// SAFETY: #[repr(C)], `struct_size: usize` first, only integers, floats and raw pointers.
// VERSION_ENDS: ABI 1 ended after `event_capacity`; ABI 2 added the fields
// from `resume_grace_ms` on.
unsafe impl SizedStruct for OmniSessionOptions {
    const NAME: &'static str = "OmniSessionOptions";
    const VERSION_ENDS: &'static [usize] = &[
        std::mem::offset_of!(OmniSessionOptions, event_capacity) + std::mem::size_of::<u32>(),
        std::mem::size_of::<OmniSessionOptions>(),
    ];
}

fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

impl OmniSessionOptions {
    pub(crate) fn defaults(omni: &Omni) -> Self {
        let o = SessionOptions::for_model(omni);
        OmniSessionOptions {
            struct_size: std::mem::size_of::<Self>(),
            max_new_tokens: to_u32(o.generation.max_new_tokens),
            temperature: o.generation.sampling.temperature,
            top_p: o.generation.sampling.top_p,
            seed: o.generation.sampling.seed,
            first_chunk_units: to_u32(o.vocoder.first_chunk_units),
            chunk_units: to_u32(o.vocoder.chunk_units),
            endpointing: i32::from(o.endpoint.enabled),
            trailing_silence_ms: o.endpoint.trailing_silence_ms,
            vad_threshold: o.endpoint.threshold,
            barge_in: i32::from(o.barge_in),
            system_prompt: std::ptr::null(),
            user_message: std::ptr::null(),
            max_context: to_u32(o.max_context),
            event_capacity: to_u32(o.event_capacity),
            resume_grace_ms: o.endpoint.resume_grace_ms,
            speculative_start: i32::from(o.endpoint.speculative),
            max_turn_s: o.endpoint.max_turn_s,
        }
    }

    /// Validates and converts.
    ///
    /// Safety: The strings are NULL or NUL-terminated and valid during the call.
    pub(crate) unsafe fn to_core(self, omni: &Omni) -> FfiResult<SessionOptions> {
        let bad = |what: String| Err(FfiError::Invalid(what));
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1".into());
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad(format!(
                "temperature {} must be a finite number ≥ 0",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p {} must be in (0, 1]", self.top_p));
        }
        if self.first_chunk_units == 0 || self.chunk_units == 0 {
            return bad("first_chunk_units and chunk_units must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.vad_threshold) {
            return bad(format!(
                "vad_threshold {} must be in [0, 1]",
                self.vad_threshold
            ));
        }
        if self.max_context == 0 {
            return bad("max_context must be at least 1".into());
        }
        if self.event_capacity == 0 {
            return bad("event_capacity must be at least 1".into());
        }
        let mut o = SessionOptions::for_model(omni);
        o.generation.max_new_tokens = self.max_new_tokens as usize;
        o.generation.sampling.temperature = self.temperature;
        o.generation.sampling.top_p = self.top_p;
        o.generation.sampling.seed = self.seed;
        o.vocoder.first_chunk_units = self.first_chunk_units as usize;
        o.vocoder.chunk_units = self.chunk_units as usize;
        o.endpoint.enabled = self.endpointing != 0;
        o.endpoint.trailing_silence_ms = self.trailing_silence_ms;
        o.endpoint.threshold = self.vad_threshold;
        o.barge_in = self.barge_in != 0;
        // SAFETY: forwarded contract.
        if let Some(p) = unsafe { opt_str(self.system_prompt, "system_prompt") }? {
            o.system_prompt = p.to_string();
        }
        // SAFETY: forwarded contract.
        if let Some(m) = unsafe { opt_str(self.user_message, "user_message") }? {
            o.user_message = m.to_string();
        }
        o.max_context = self.max_context as usize;
        o.event_capacity = self.event_capacity as usize;
        o.endpoint.resume_grace_ms = self.resume_grace_ms;
        o.endpoint.speculative = self.speculative_start != 0;
        o.endpoint.max_turn_s = self.max_turn_s;
        Ok(o)
    }
}
