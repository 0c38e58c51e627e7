//! What a session tells its user, in order.

/// Per-turn timings, all measured from the end of the user's speech: the end
/// of the last voiced frame when the voice detector ended the turn, the
/// `end_turn` / `push_text` call otherwise. That is the latency a user feels;
/// the endpointer's wait for trailing silence is part of it and is reported on
/// its own line ([`Timings::endpoint_wait_ms`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Timings {
    /// End of speech → the endpointer committed the turn (its trailing-silence
    /// wait); 0 for turns ended by `end_turn` or typed text.
    pub endpoint_wait_ms: f64,
    /// Whether encoder, adaptor and prefill ran speculatively, before the
    /// endpoint was confirmed (their time then overlaps the endpoint wait).
    pub speculative: bool,
    /// Mel + Whisper encoder + adaptor.
    pub encode_ms: f64,
    /// LLM prefill of the prompt.
    pub prefill_ms: f64,
    /// End of speech → first text delta.
    pub first_text_ms: Option<f64>,
    /// End of speech → first audio chunk.
    pub first_audio_ms: Option<f64>,
    /// End of speech → turn done.
    pub total_ms: f64,
    /// Tokens generated when the first audio chunk was ready.
    pub tokens_to_first_audio: usize,
    /// LLM decode time spent before the first audio chunk.
    pub decode_ms_to_first_audio: f64,
    /// Speech decoder time spent before the first audio chunk.
    pub speech_decoder_ms_to_first_audio: f64,
    /// Vocoder time of the first audio chunk.
    pub vocoder_ms_first_chunk: f64,
    /// Time inside the speech decoder (all steps).
    pub speech_decoder_ms: f64,
    /// Time inside the vocoder (all chunks).
    pub vocoder_ms: f64,
    /// Generated tokens per second of decode time.
    pub tokens_per_s: f64,
    /// Tokens generated.
    pub tokens: usize,
    /// Units generated.
    pub units: usize,
    /// Seconds of answer audio.
    pub audio_s: f64,
    /// Processing time / answer audio duration (< 1 is faster than real time).
    pub real_time_factor: f64,
}

/// The `token` of a [`Event::TextDelta`] that carries text held back by the
/// detokenizer and flushed at the end of the answer (it has no token of its own).
pub const NO_TOKEN: u32 = u32::MAX;

/// Why an answer stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InterruptReason {
    /// The user spoke over the answer.
    BargeIn,
    /// `cancel()`, `reset()` or dropping the session.
    Cancel,
    /// The user went on speaking within the pause grace window before any of
    /// the answer was played: the answer is dropped and the question continues
    /// as the next turn, with all of its audio. Only sent when the consumer had
    /// already pulled an event of the dropped turn (otherwise its events are
    /// removed unseen).
    Resumed,
}

/// Error classes reported in [`Event::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// A turn without speech (silence only, or nothing pushed).
    NoSpeech,
    /// Invalid input reached the worker.
    InvalidInput,
    /// A model part failed.
    Model,
    /// The worker panicked; the session cannot continue.
    Internal,
}

/// Serializes PCM as its sample count (JSON event logs carry no audio).
fn pcm_len<S: serde::Serializer>(pcm: &[f32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(pcm.len() as u64)
}

/// One event of a session. Serializes (serde) as a flat object tagged by
/// `"event"` (`speech_started`, `text`, `audio`, `turn_done`, …); audio PCM as
/// its sample count `"samples"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The endpointer heard speech start (`at_ms`: position in the pushed audio).
    SpeechStarted { at_ms: u64 },
    /// The endpointer heard speech end; a turn follows.
    SpeechEnded { at_ms: u64 },
    /// A user turn was committed and is being answered.
    TurnStarted { turn: u32, audio_ms: u64 },
    /// One generated token and the text it completes (UTF-8 complete; may be
    /// empty for special tokens or a partial character).
    #[serde(rename = "text")]
    TextDelta { turn: u32, text: String, token: u32 },
    /// New speech units (ids in `0..unit_vocab_size`).
    Units { turn: u32, units: Vec<u32> },
    /// Answer audio: mono f32 PCM at `sample_rate` (the vocoder's own rate,
    /// from its config; 16 kHz for the published vocoder); `seq` counts from 0 per turn.
    Audio {
        turn: u32,
        seq: u32,
        #[serde(rename = "samples", serialize_with = "pcm_len")]
        pcm: Vec<f32>,
        sample_rate: u32,
    },
    /// The answer is complete.
    TurnDone {
        turn: u32,
        text: String,
        timings: Timings,
    },
    /// The answer was stopped early. The history keeps the part of the answer
    /// whose audio was played (see `Session::played`).
    Interrupted {
        turn: u32,
        reason: InterruptReason,
        text: String,
    },
    /// Something the user should know that did not stop the turn.
    Warning { message: String },
    /// A failure; `recoverable` says whether the session can go on.
    Error {
        code: ErrorCode,
        message: String,
        recoverable: bool,
    },
}

impl Event {
    /// The turn an event belongs to (None for input-side events and warnings).
    pub fn turn(&self) -> Option<u32> {
        match self {
            Event::TurnStarted { turn, .. }
            | Event::TextDelta { turn, .. }
            | Event::Units { turn, .. }
            | Event::Audio { turn, .. }
            | Event::TurnDone { turn, .. }
            | Event::Interrupted { turn, .. } => Some(*turn),
            _ => None,
        }
    }
}
