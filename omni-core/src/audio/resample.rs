//! Sample-rate conversion to Whisper's 16 kHz (rubato's synchronous FFT resampler).
//!
//! `FftFixedInOut` filters each block with a windowed-sinc low-pass (Blackman-Harris², about
//! as many taps as the block has input samples, ≥ 1024 here) and changes the rate exactly by the
//! reduced ratio `to / from`. Its filter is symmetric, so the delay is a whole number of output
//! samples when the block length is even; that delay is trimmed so the output is time-aligned
//! with the input (output sample `j` is the input at time `j / to_hz`).

use rubato::{FftFixedInOut, Resampler};

use super::mel::{validate_samples, SAMPLE_RATE};
use crate::{Error, Result};

/// Wanted number of input samples per FFT block (= filter taps).
const TARGET_BLOCK_IN: usize = 1024;
/// Upper bound on the output block size (guards against absurd rate pairs like 1 Hz → 16 kHz).
const MAX_BLOCK_OUT: usize = 1 << 20;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resamples mono audio from `from_hz` to `to_hz`. Returns `round(len · to / from)` samples,
/// time-aligned with the input; the input unchanged when the rates are equal.
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>> {
    if from_hz == 0 || to_hz == 0 {
        return Err(Error::Audio(format!(
            "sample rate must be positive (resampling {from_hz} Hz -> {to_hz} Hz)"
        )));
    }
    if from_hz == to_hz {
        return Ok(samples.to_vec());
    }
    let len = samples.len();
    let out_len = ((len as u128 * to_hz as u128 + from_hz as u128 / 2) / from_hz as u128) as usize;
    if out_len == 0 {
        return Ok(Vec::new());
    }

    let g = gcd(from_hz as u64, to_hz as u64);
    let (min_in, min_out) = ((from_hz as u64 / g) as usize, (to_hz as u64 / g) as usize);
    // An even number of minimal blocks: the filter is then centred on a whole output sample.
    let mut k = TARGET_BLOCK_IN
        .div_ceil(min_in)
        .min((MAX_BLOCK_OUT / min_out).max(1));
    k += k % 2;
    let block_in = k * min_in;

    let mut rs = FftFixedInOut::<f64>::new(from_hz as usize, to_hz as usize, block_in, 1)
        .map_err(|e| Error::Audio(format!("resampler {from_hz} Hz -> {to_hz} Hz: {e}")))?;
    let fin = rs.input_frames_next();
    let fout = rs.output_frames_next();
    let delay = rs.output_delay();
    if fin != block_in || fout != k * min_out || delay * 2 != fout {
        return Err(Error::Audio(format!(
            "resampler {from_hz} Hz -> {to_hz} Hz: unexpected block sizes {fin}/{fout}"
        )));
    }

    let needed = delay + out_len;
    let n_blocks = needed.div_ceil(fout);
    let mut out = Vec::with_capacity(n_blocks * fout);
    let mut in_buf = vec![vec![0f64; fin]];
    let mut out_buf = vec![vec![0f64; fout]];
    for b in 0..n_blocks {
        let start = (b * fin).min(len);
        let end = ((b + 1) * fin).min(len);
        let src = &samples[start..end];
        for (i, dst) in in_buf[0].iter_mut().enumerate() {
            *dst = src.get(i).map_or(0.0, |&x| x as f64);
        }
        let (_, written) = rs
            .process_into_buffer(&in_buf, &mut out_buf, None)
            .map_err(|e| Error::Audio(format!("resampler {from_hz} Hz -> {to_hz} Hz: {e}")))?;
        out.extend(out_buf[0][..written].iter().map(|&x| x as f32));
    }
    if out.len() < needed {
        return Err(Error::Audio(format!(
            "resampler {from_hz} Hz -> {to_hz} Hz gave {} samples, expected {needed}",
            out.len()
        )));
    }
    out.truncate(needed);
    out.drain(..delay);
    Ok(out)
}

/// Validates a mono clip (non-empty, finite, rate > 0) and resamples it to 16 kHz.
pub fn to_16k_mono(samples: &[f32], sample_rate: u32) -> Result<Vec<f32>> {
    validate_samples(samples)?;
    if sample_rate == 0 {
        return Err(Error::Audio("sample rate 0".into()));
    }
    resample(samples, sample_rate, SAMPLE_RATE)
}
