//! Audio frontend against openai-whisper (`tests/reference/ref_audio.py` writes the fixtures):
//! mel filterbanks, log-mel spectrograms, WAV I/O and resampling.
//!
//! Tolerances: the filterbanks are f32 arrays of values ≤ 0.03, compared to 1e-6 absolute.
//! The log-mel outputs are compared to 1e-4 absolute: the reference computes the STFT, the
//! power and the filter matmul in f32 (omni in f64), and its outputs lie in about [-1.5, 1.5],
//! where f32 rounding of log10 energies gives errors near 1e-6; 1e-4 leaves room for the
//! reference's FFT rounding in low-energy bins while still catching any real difference
//! (a wrong window, padding, frame or filter shifts values by 1e-2 or more).

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, max_abs_diff, read_arrays, Array};
use omni_core::audio::{
    pad_or_trim, read_wav, resample, to_16k_mono, write_wav, LogMel, MelFrontend, N_FRAMES,
    N_SAMPLES,
};
use omni_core::Error;

const MEL_FIXTURE: &str = "audio/mel.safetensors";

fn arrays() -> std::collections::HashMap<String, Array> {
    read_arrays(MEL_FIXTURE)
}

/// A unique temp path for this test process.
fn tmp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("omni_audio_test_{}_{name}", std::process::id()))
}

/// Compares a [n_mels, 3000] log-mel with a fixture stored as its first H frames plus the
/// constant value of every later frame. Returns the max abs error.
fn compare_head_tail(mel: &LogMel, head: &Array, tail: &Array) -> f32 {
    assert_eq!(mel.n_frames, N_FRAMES);
    assert_eq!(head.shape[0], mel.n_mels);
    let h = head.shape[1];
    let t = tail.data[0];
    let mut err = 0f32;
    for m in 0..mel.n_mels {
        let row = &mel.data[m * mel.n_frames..(m + 1) * mel.n_frames];
        err = err.max(max_abs_diff(&row[..h], &head.data[m * h..(m + 1) * h]));
        for &v in &row[h..] {
            err = err.max((v - t).abs());
        }
    }
    err
}

// ---------------------------------------------------------------- filterbanks

#[test]
fn mel_filters_equal_whisper_npz() {
    let a = arrays();
    for n_mels in [80usize, 128] {
        let reference = &a[&format!("mel_{n_mels}")];
        assert_eq!(reference.shape, vec![n_mels, 201]);
        let fe = MelFrontend::new(n_mels).unwrap();
        let err = max_abs_diff(fe.filters(), &reference.data);
        println!("mel_{n_mels}: max abs err {err:e}");
        assert!(err <= 1e-6, "mel_{n_mels} filters differ by {err}");
    }
}

#[test]
fn unsupported_n_mels_is_rejected() {
    assert!(matches!(MelFrontend::new(81), Err(Error::InvalidInput(_))));
}

// ---------------------------------------------------------------- log-mel

#[test]
fn speech_log_mel_128_matches_whisper() {
    let a = arrays();
    let (samples, rate) = read_wav(&fixture("speech/question.wav")).unwrap();
    assert_eq!(rate, 16000);
    let fe = MelFrontend::new(128).unwrap();
    let mel = fe.log_mel_30s(&samples).unwrap();
    assert_eq!(
        (mel.n_mels, mel.n_frames, mel.data.len()),
        (128, 3000, 128 * 3000)
    );
    let err = compare_head_tail(&mel, &a["speech_mel128_head"], &a["speech_mel128_tail"]);
    println!("speech 128-bin log-mel (30 s padded): max abs err {err:e}");
    assert!(err <= 1e-4, "speech log-mel differs by {err}");
}

#[test]
fn noise_log_mel_80_padded_matches_whisper() {
    let a = arrays();
    let noise = &a["noise"].data;
    let fe = MelFrontend::new(80).unwrap();
    let mel = fe.log_mel_30s(noise).unwrap();
    assert_eq!((mel.n_mels, mel.n_frames), (80, 3000));
    let err = compare_head_tail(&mel, &a["noise_mel80_30s_head"], &a["noise_mel80_30s_tail"]);
    println!("noise 80-bin log-mel (30 s padded): max abs err {err:e}");
    assert!(err <= 1e-4, "padded noise log-mel differs by {err}");
}

#[test]
fn noise_log_mel_80_unpadded_matches_whisper() {
    let a = arrays();
    let len = a["noise_raw_len"].data[0] as usize;
    let noise = &a["noise"].data[..len];
    let reference = &a["noise_raw_mel80"];
    let fe = MelFrontend::new(80).unwrap();
    let mel = fe.log_mel(noise).unwrap();
    assert_eq!(len, 20800);
    assert_eq!((mel.n_mels, mel.n_frames), (80, len / 160));
    assert_eq!(reference.shape, vec![80, 130]);
    let err = max_abs_diff(&mel.data, &reference.data);
    println!("noise 80-bin log-mel (1.3 s, unpadded): max abs err {err:e}");
    assert!(err <= 1e-4, "unpadded noise log-mel differs by {err}");
}

#[test]
fn frame_counts() {
    let fe = MelFrontend::new(80).unwrap();
    for (len, frames) in [
        (201usize, 1usize),
        (320, 2),
        (16000, 100),
        (16159, 100),
        (16160, 101),
    ] {
        let x: Vec<f32> = (0..len).map(|i| (i as f32 * 0.01).sin()).collect();
        let mel = fe.log_mel(&x).unwrap();
        assert_eq!(mel.n_frames, frames, "len {len}");
        assert_eq!(mel.data.len(), 80 * frames);
        assert_eq!(MelFrontend::n_frames(len), frames);
    }
    // The 30 s path always gives 3000 frames: short clips are padded, long ones cut.
    for len in [1usize, 16000, N_SAMPLES, N_SAMPLES + 12345] {
        let x = vec![0.1f32; len];
        assert_eq!(fe.log_mel_30s(&x).unwrap().n_frames, N_FRAMES);
    }
}

#[test]
fn log_mel_layout_and_floor() {
    let fe = MelFrontend::new(80).unwrap();
    let x: Vec<f32> = (0..32000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    let mel = fe.log_mel_30s(&x).unwrap();
    let max = mel.data.iter().cloned().fold(f32::MIN, f32::max);
    let min = mel.data.iter().cloned().fold(f32::MAX, f32::min);
    // max(x, max - 8) then /4: the dynamic range is exactly 2.
    assert!((max - min - 2.0).abs() < 1e-5, "range {}", max - min);
    let fm = mel.to_frame_major();
    assert_eq!(fm[7 * 80 + 3], mel.get(3, 7));
}

#[test]
fn bad_samples_are_rejected() {
    let fe = MelFrontend::new(80).unwrap();
    let msg = |e: Error| match e {
        Error::Audio(m) => m,
        other => panic!("expected Error::Audio, got {other:?}"),
    };
    assert!(msg(fe.log_mel(&[]).unwrap_err()).contains("empty"));
    assert!(msg(fe.log_mel_30s(&[]).unwrap_err()).contains("empty"));

    let mut x = vec![0.0f32; 1000];
    x[417] = f32::NAN;
    x[600] = f32::INFINITY;
    let m = msg(fe.log_mel(&x).unwrap_err());
    assert!(m.contains("417"), "{m}");
    let m = msg(fe.log_mel_30s(&x).unwrap_err());
    assert!(m.contains("417"), "{m}");
    x[417] = 0.0;
    let m = msg(fe.log_mel(&x).unwrap_err());
    assert!(m.contains("600") && m.contains("inf"), "{m}");
    x[600] = f32::NEG_INFINITY;
    assert!(msg(to_16k_mono(&x, 44100).unwrap_err()).contains("600"));
    // A NaN past 30 s is still refused (not silently cut off).
    let mut long = vec![0.0f32; N_SAMPLES + 10];
    long[N_SAMPLES + 5] = f32::NAN;
    assert!(msg(fe.log_mel_30s(&long).unwrap_err()).contains(&(N_SAMPLES + 5).to_string()));

    // Too short for the reflect padding (torch refuses these too).
    assert!(matches!(fe.log_mel(&[0.1; 200]), Err(Error::Audio(_))));
}

#[test]
fn pad_or_trim_like_whisper() {
    assert_eq!(pad_or_trim(&[1.0, 2.0], 4), vec![1.0, 2.0, 0.0, 0.0]);
    assert_eq!(pad_or_trim(&[1.0, 2.0, 3.0], 2), vec![1.0, 2.0]);
    assert_eq!(pad_or_trim(&[], 3), vec![0.0; 3]);
    assert_eq!(pad_or_trim(&[5.0; 7], 7), vec![5.0; 7]);
}

/// `log_mel_30s` reads the clip in place (zero extension or cut to 30 s, reflect
/// padding at both ends, without copies): bit for bit `log_mel` of
/// `pad_or_trim(clip, N_SAMPLES)`, for a clip shorter than the reflect padding
/// (150 samples: the padding reads only zeros beyond it), a short one (3.2 s), one of
/// exactly 30 s and a longer one (31 s: cut). Its speed is a bench row (`mel` in
/// `benches/omni_bench.rs`), not a test.
#[test]
fn log_mel_30s_equals_log_mel_of_pad_or_trim_for_every_length() {
    let fe = MelFrontend::new(128).unwrap();
    for len in [150usize, 51_200, N_SAMPLES, N_SAMPLES + 16_000] {
        let x: Vec<f32> = (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let got = fe.log_mel_30s(&x).unwrap();
        let want = fe.log_mel(&pad_or_trim(&x, N_SAMPLES)).unwrap();
        assert_eq!(got.n_frames, N_FRAMES);
        assert!(got == want, "{len} samples: log_mel_30s differs");
    }
}

// ---------------------------------------------------------------- resampling

fn sine(freq: f64, rate: u32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5)
        .collect()
}

/// RMS difference away from the first and last `edge` samples.
fn rms_inner(a: &[f32], b: &[f32], edge: usize) -> f64 {
    assert_eq!(a.len(), b.len());
    let n = a.len() - 2 * edge;
    let s: f64 = a[edge..a.len() - edge]
        .iter()
        .zip(&b[edge..b.len() - edge])
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    (s / n as f64).sqrt()
}

#[test]
fn resample_sine_is_time_aligned() {
    for (from, freq) in [
        (44100u32, 440.0),
        (48000, 440.0),
        (22050, 1000.0),
        (8000, 440.0),
        (11025, 3000.0),
    ] {
        let len = from as usize; // 1 s
        let x = sine(freq, from, len);
        let y = resample(&x, from, 16000).unwrap();
        assert_eq!(y.len(), 16000, "{from} Hz");
        let want = sine(freq, 16000, y.len());
        let err = rms_inner(&y, &want, 800);
        println!("{from} Hz -> 16 kHz, {freq} Hz sine: RMS err {err:e}");
        assert!(err < 1e-5, "{from} Hz -> 16 kHz: RMS err {err}");
    }
    // 16 kHz -> 44.1 kHz too.
    let x = sine(440.0, 16000, 16000);
    let y = resample(&x, 16000, 44100).unwrap();
    assert_eq!(y.len(), 44100);
    let err = rms_inner(&y, &sine(440.0, 44100, 44100), 2000);
    println!("16 kHz -> 44.1 kHz: RMS err {err:e}");
    assert!(err < 1e-5, "16 kHz -> 44.1 kHz: RMS err {err}");
}

#[test]
fn resample_lengths_and_identity() {
    let x: Vec<f32> = (0..1234).map(|i| (i as f32 * 0.3).sin()).collect();
    assert_eq!(resample(&x, 16000, 16000).unwrap(), x);
    for (from, to) in [
        (44100u32, 16000u32),
        (48000, 16000),
        (8000, 16000),
        (22050, 16000),
        (16000, 44100),
    ] {
        for len in [1usize, 7, 441, 1000, 44101] {
            let x = vec![0.25f32; len];
            let y = resample(&x, from, to).unwrap();
            let want = ((len as f64) * to as f64 / from as f64).round() as usize;
            assert_eq!(y.len(), want, "{from} -> {to}, len {len}");
        }
    }
    assert!(resample(&[], 44100, 16000).unwrap().is_empty());
    assert!(matches!(resample(&x, 0, 16000), Err(Error::Audio(_))));
    assert!(matches!(resample(&x, 16000, 0), Err(Error::Audio(_))));
}

#[test]
fn resample_rejects_aliases() {
    // A 7 kHz tone is inside 16 kHz's band; a 10 kHz tone is not and must be filtered out.
    let x = sine(10000.0, 44100, 44100);
    let y = resample(&x, 44100, 16000).unwrap();
    let rms = (y[800..15200]
        .iter()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        / 14400.0)
        .sqrt();
    println!("10 kHz tone after 44.1k -> 16k: RMS {rms:e} (input 0.354)");
    assert!(rms < 1e-5, "alias leaks: RMS {rms}");
}

#[test]
fn to_16k_mono_validates() {
    let msg = |e: Error| match e {
        Error::Audio(m) => m,
        other => panic!("expected Error::Audio, got {other:?}"),
    };
    assert!(msg(to_16k_mono(&[], 16000).unwrap_err()).contains("empty"));
    assert!(matches!(to_16k_mono(&[0.1; 10], 0), Err(Error::Audio(_))));
    assert!(msg(to_16k_mono(&[0.0, f32::NAN], 16000).unwrap_err()).contains("index 1"));
    let x = sine(440.0, 32000, 32000);
    let y = to_16k_mono(&x, 32000).unwrap();
    assert_eq!(y.len(), 16000);
    assert_eq!(to_16k_mono(&x[..100], 16000).unwrap(), x[..100].to_vec());
}

// ---------------------------------------------------------------- WAV

#[test]
fn wav_roundtrip_16bit() {
    let path = tmp_path("roundtrip.wav");
    // Multiples of 1/32768 come back exactly; out-of-range values are clamped.
    let x: Vec<f32> = (0..1000i32)
        .map(|i| ((i * 37) % 65536 - 32768) as f32 / 32768.0)
        .collect();
    write_wav(&path, &x, 22050).unwrap();
    let (y, rate) = read_wav(&path).unwrap();
    assert_eq!(rate, 22050);
    assert_eq!(y, x);

    write_wav(&path, &[2.0, -3.0, 0.5], 16000).unwrap();
    let (y, _) = read_wav(&path).unwrap();
    assert_eq!(y, vec![32767.0 / 32768.0, -1.0, 0.5]);

    assert!(matches!(
        write_wav(&path, &[f32::NAN], 16000),
        Err(Error::Audio(_))
    ));
    assert!(matches!(write_wav(&path, &[0.0], 0), Err(Error::Audio(_))));
    std::fs::remove_file(&path).ok();
}

/// A minimal RIFF/WAVE file: format tag 1 (PCM) or 3 (float), interleaved little-endian data.
fn raw_wav(path: &Path, format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) {
    let block = channels * bits / 8;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&format.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * block as u32).to_le_bytes());
    b.extend_from_slice(&block.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    std::fs::write(path, b).unwrap();
}

#[test]
fn wav_formats_and_downmix() {
    let path = tmp_path("formats.wav");

    // 8-bit unsigned, mono: 128 is zero, 0 is -1, 192 is 0.5.
    raw_wav(&path, 1, 1, 8000, 8, &[128, 0, 192]);
    let (y, rate) = read_wav(&path).unwrap();
    assert_eq!(rate, 8000);
    assert_eq!(y, vec![0.0, -1.0, 0.5]);

    // 24-bit stereo: frames (0.5, -0.25) and (-1, 0).
    let s24 = |v: i32| v.to_le_bytes()[..3].to_vec();
    let data: Vec<u8> = [1 << 22, -(1 << 21), -(1 << 23), 0]
        .iter()
        .flat_map(|&v| s24(v))
        .collect();
    raw_wav(&path, 1, 2, 48000, 24, &data);
    let (y, rate) = read_wav(&path).unwrap();
    assert_eq!(rate, 48000);
    assert_eq!(y, vec![0.125, -0.5]);

    // 32-bit int mono.
    let data: Vec<u8> = [i32::MIN, 1 << 30]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    raw_wav(&path, 1, 1, 16000, 32, &data);
    assert_eq!(read_wav(&path).unwrap().0, vec![-1.0, 0.5]);

    // 32-bit float, 3 channels.
    let data: Vec<u8> = [0.3f32, 0.6, -0.3, 1.0, 1.0, 1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    raw_wav(&path, 3, 3, 44100, 32, &data);
    let (y, rate) = read_wav(&path).unwrap();
    assert_eq!(rate, 44100);
    assert_eq!(y.len(), 2);
    assert!(
        (y[0] - 0.2).abs() < 1e-7 && (y[1] - 1.0).abs() < 1e-7,
        "{y:?}"
    );

    // 16-bit stereo.
    let data: Vec<u8> = [16384i16, 0, -32768, -32768]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    raw_wav(&path, 1, 2, 16000, 16, &data);
    assert_eq!(read_wav(&path).unwrap().0, vec![0.25, -1.0]);

    std::fs::remove_file(&path).ok();
}

#[test]
fn non_wav_file_error_names_the_path() {
    let path = tmp_path("not_a_wav.wav");
    std::fs::write(&path, b"this is not a RIFF file at all, just text").unwrap();
    let err = read_wav(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Audio(_)), "{err:?}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");

    // Truncated: a valid header whose data chunk is cut short.
    raw_wav(&path, 1, 1, 16000, 16, &[0, 0, 1, 0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40..44].copy_from_slice(&1000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let msg = read_wav(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    std::fs::remove_file(&path).ok();

    let missing = tmp_path("does_not_exist.wav");
    let err = read_wav(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()));
}

#[test]
fn question_wav_loads_at_16k() {
    let (x, rate) = read_wav(&fixture("speech/question.wav")).unwrap();
    assert_eq!(rate, 16000);
    assert!(x.len() > 16000 && x.len() < N_SAMPLES, "{}", x.len());
    assert!(x.iter().any(|v| v.abs() > 0.1));
    // to_16k_mono on 16 kHz input is the identity.
    assert_eq!(to_16k_mono(&x, rate).unwrap(), x);
}
