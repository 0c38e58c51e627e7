//! WAV input/output (hound): any integer (8/16/24/32-bit) or 32-bit float PCM file,
//! downmixed to mono f32 in [-1, 1).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use super::mel::check_finite;
use crate::{Error, Result};

fn wav_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Audio(format!("{}: {what}: {e}", path.display()))
}

/// Reads a WAV file: returns mono samples (channels averaged) scaled to [-1, 1)
/// (integers divided by 2^(bits-1), as `whisper.load_audio` does for 16-bit), and the
/// file's sample rate. Errors name the file.
pub fn read_wav(path: &Path) -> Result<(Vec<f32>, u32)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = hound::WavReader::new(BufReader::new(file))
        .map_err(|e| wav_err(path, "not a readable WAV file", e))?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    if channels == 0 {
        return Err(Error::Audio(format!(
            "{}: WAV header has 0 channels",
            path.display()
        )));
    }
    if spec.sample_rate == 0 {
        return Err(Error::Audio(format!(
            "{}: WAV header has sample rate 0",
            path.display()
        )));
    }

    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Err(Error::Audio(format!(
                    "{}: unsupported float WAV with {} bits per sample",
                    path.display(),
                    spec.bits_per_sample
                )));
            }
            reader
                .samples::<f32>()
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| wav_err(path, "bad WAV data", e))?
        }
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample;
            if !(1..=32).contains(&bits) {
                return Err(Error::Audio(format!(
                    "{}: unsupported integer WAV with {bits} bits per sample",
                    path.display()
                )));
            }
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| (v as f64 * scale) as f32))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| wav_err(path, "bad WAV data", e))?
        }
    };

    let mono = if channels == 1 {
        interleaved
    } else {
        // A trailing partial frame (truncated file) is dropped.
        interleaved
            .chunks_exact(channels)
            .map(|f| (f.iter().map(|&x| x as f64).sum::<f64>() / channels as f64) as f32)
            .collect()
    };
    Ok((mono, spec.sample_rate))
}

/// Writes mono samples as a 16-bit PCM WAV (values clamped to [-1, 1]; a sample
/// `k / 32768` is written as `k`, so [`read_wav`] gives it back exactly).
pub fn write_wav(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    if sample_rate == 0 {
        return Err(Error::Audio(format!(
            "{}: cannot write sample rate 0",
            path.display()
        )));
    }
    check_finite(samples).map_err(|e| Error::Audio(format!("{}: {e}", path.display())))?;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = hound::WavWriter::new(BufWriter::new(file), spec)
        .map_err(|e| wav_err(path, "cannot write WAV", e))?;
    for &x in samples {
        let v = super::pcm::f32_to_i16(x);
        writer
            .write_sample(v)
            .map_err(|e| wav_err(path, "cannot write WAV", e))?;
    }
    writer
        .finalize()
        .map_err(|e| wav_err(path, "cannot write WAV", e))
}
