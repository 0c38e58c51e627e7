//! [`read_audio`]: any audio file omni reads, as mono f32 and its sample rate.
//!
//! Mirrors the reference's `whisper.load_audio` (ffmpeg decodes whatever it is
//! given) for the formats speech arrives in: WAV (hound, see [`super::read_wav`]),
//! FLAC, MP3 and Ogg Vorbis (symphonia, pure Rust, only those codecs compiled in).
//! Opus is not decoded: symphonia 0.5 has no Opus decoder, and an Ogg Opus file
//! is refused with [`AudioFileProblem::UnsupportedCodec`]. Resampling to 16 kHz
//! is left to [`super::to_16k_mono`], as after `read_wav`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::wav::read_wav;
use crate::error::AudioFileProblem;
use crate::{Error, Result};

/// Reads an audio file: WAV (any PCM hound reads), FLAC, MP3 or Ogg Vorbis,
/// told apart by their bytes, not their extension. Returns mono samples in
/// [-1, 1) (channels averaged, as [`read_wav`]) and the file's sample rate.
///
/// Errors: a missing or unreadable file is [`crate::ErrorKind::Io`]; anything
/// else is an [`Error::AudioFile`] naming the file and its
/// [`AudioFileProblem`]: empty, unknown format, unsupported codec (Opus),
/// truncated (fewer frames than the header declares, or a cut Ogg stream),
/// corrupt, or no samples.
pub fn read_audio(path: &Path) -> Result<(Vec<f32>, u32)> {
    let problem = |problem: AudioFileProblem| Error::AudioFile {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = File::open(path).map_err(|e| Error::file(path, "audio file", e))?;
    let mut head = [0u8; 12];
    let n = read_up_to(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Err(problem(AudioFileProblem::Empty));
    }
    // RIFF/RIFX/RF64 + WAVE: hound, as before this function existed.
    if n == 12 && matches!(&head[..4], b"RIFF" | b"RIFX" | b"RF64") && &head[8..12] == b"WAVE" {
        return read_wav(path);
    }
    if n >= 4 && &head[..4] == b"OggS" {
        // symphonia ends a cut Ogg stream at its last whole page without an
        // error, and its length is read from that page: check the end here.
        if let Some(p) = ogg_end_problem(&mut file).map_err(|e| Error::io(path, e))? {
            return Err(problem(p));
        }
    }
    let file = File::open(path).map_err(|e| Error::file(path, "audio file", e))?;
    decode(path, file)
}

/// Whether an Ogg file ends as a whole one does: with a complete page (27-byte
/// header, segment table, the bytes its lacing values add up to) that carries
/// the end-of-stream flag (RFC 3533 §6). `Some(Truncated)` when not.
fn ogg_end_problem(f: &mut File) -> std::io::Result<Option<AudioFileProblem>> {
    use std::io::{Seek, SeekFrom};
    const MAX_PAGE: u64 = 27 + 255 + 255 * 255;
    let len = f.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(2 * MAX_PAGE);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    f.read_to_end(&mut tail)?;
    let truncated = Some(AudioFileProblem::Truncated(
        "the last Ogg page is cut short or has no end-of-stream flag".into(),
    ));
    // The last capture pattern whose page ends exactly at the end of the file.
    let mut at = tail.len();
    while let Some(i) = tail[..at].windows(4).rposition(|w| w == b"OggS") {
        at = i;
        let page = &tail[i..];
        if page.len() < 27 || page.len() < 27 + page[26] as usize {
            continue;
        }
        let n_seg = page[26] as usize;
        let body: usize = page[27..27 + n_seg].iter().map(|&l| l as usize).sum();
        if 27 + n_seg + body == page.len() {
            const EOS: u8 = 0x04;
            return Ok(if page[5] & EOS != 0 { None } else { truncated });
        }
    }
    Ok(truncated)
}

/// Fills `buf` as far as the file allows; the count read.
fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn decode(path: &Path, file: File) -> Result<(Vec<f32>, u32)> {
    let problem = |problem: AudioFileProblem| Error::AudioFile {
        path: path.to_path_buf(),
        problem,
    };
    let corrupt = |e: SymError| match e {
        SymError::IoError(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            Error::io(path, io)
        }
        other => problem(AudioFileProblem::Corrupt(other.to_string())),
    };

    let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    // Gapless: trim encoder delay and padding (MP3's LAME tag, Vorbis granules),
    // so the samples line up with the source as ffmpeg's do.
    let fmt_opts = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &fmt_opts, &MetadataOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => problem(AudioFileProblem::UnknownFormat),
            SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                problem(AudioFileProblem::UnknownFormat)
            }
            other => corrupt(other),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| problem(AudioFileProblem::NoAudio))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| match e {
            SymError::Unsupported(_) => {
                problem(AudioFileProblem::UnsupportedCodec(codec_name(&params)))
            }
            other => corrupt(other),
        })?;

    let mut mono: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            // symphonia's end of stream (also where a truncated file stops;
            // caught below against the declared length).
            Err(SymError::IoError(io)) if io.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(corrupt(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(corrupt)?;
        let spec = *decoded.spec();
        let channels = spec.channels.count();
        if channels == 0 {
            return Err(problem(AudioFileProblem::Corrupt(
                "a packet with 0 channels".into(),
            )));
        }
        rate = spec.rate;
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        if buf
            .as_ref()
            .is_some_and(|b| b.capacity() < frames * channels)
        {
            buf = None;
        }
        let b =
            buf.get_or_insert_with(|| SampleBuffer::<f32>::new(decoded.capacity() as u64, spec));
        b.copy_interleaved_ref(decoded);
        let s = &b.samples()[..frames * channels];
        if channels == 1 {
            mono.extend_from_slice(s);
        } else {
            // Averaged in f64, as `read_wav`.
            mono.extend(
                s.chunks_exact(channels)
                    .map(|f| (f.iter().map(|&x| x as f64).sum::<f64>() / channels as f64) as f32),
            );
        }
    }

    if let Some(expected) = params.n_frames {
        // The header's length counts the encoder's delay and padding, which
        // gapless decoding removes.
        let trimmed = expected.saturating_sub(
            u64::from(params.delay.unwrap_or(0)) + u64::from(params.padding.unwrap_or(0)),
        );
        let decoded = mono.len() as u64;
        if decoded < trimmed {
            return Err(problem(AudioFileProblem::Truncated(format!(
                "{decoded} of the {trimmed} frames its header declares"
            ))));
        }
    }
    if mono.is_empty() {
        return Err(problem(AudioFileProblem::NoAudio));
    }
    if rate == 0 {
        return Err(problem(AudioFileProblem::Corrupt("sample rate 0".into())));
    }
    Ok((mono, rate))
}

/// A codec's name for messages (`Opus`, ...).
fn codec_name(params: &symphonia::core::codecs::CodecParameters) -> String {
    use symphonia::core::codecs::{CODEC_TYPE_AAC, CODEC_TYPE_ALAC, CODEC_TYPE_OPUS};
    match params.codec {
        CODEC_TYPE_OPUS => "Opus".into(),
        CODEC_TYPE_AAC => "AAC".into(),
        CODEC_TYPE_ALAC => "ALAC".into(),
        other => symphonia::default::get_codecs()
            .get_codec(other)
            .map(|d| d.short_name.to_string())
            .unwrap_or_else(|| format!("{other:?}")),
    }
}
