//! `read_audio`: FLAC, MP3 and Ogg Vorbis decode to the samples of the WAV they
//! were made from (tests/fixtures/speech/question.* are encoded from
//! question.wav by scripts/make_audio_fixtures.sh), and every other file gives
//! a typed error.
//!
//! Tolerances: FLAC is lossless, so its samples equal the WAV's exactly (mono,
//! and a stereo file with the question left and silence right downmixes to
//! exactly half). MP3 (32 kb/s) and Vorbis (q3) are lossy: decoded with
//! gapless trimming they must line up with the WAV at lag 0 (the best lag
//! within ±2000 samples is 0 … a few samples), keep its length within one
//! 1152-sample MP3 frame, and correlate with it at ≥ 0.95 with an SNR ≥ 10 dB.

mod common;

use std::path::{Path, PathBuf};

use common::fixture;
use omni_core::audio::{read_audio, read_wav};
use omni_core::{AudioFileProblem, Error, ErrorKind};

fn question() -> Vec<f32> {
    let (x, rate) = read_wav(&fixture("speech/question.wav")).unwrap();
    assert_eq!(rate, 16000);
    x
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("omni-audio-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Normalised correlation of `a` with `b` shifted by `lag` (b[i + lag] vs a[i]).
fn correlation(a: &[f32], b: &[f32], lag: i64) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in a.iter().enumerate() {
        let j = i as i64 + lag;
        if j < 0 || j as usize >= b.len() {
            continue;
        }
        let y = b[j as usize] as f64;
        ab += x as f64 * y;
        aa += (x as f64).powi(2);
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1e-30)
}

/// SNR in dB of `b` as a copy of `a` (over their common length).
fn snr_db(a: &[f32], b: &[f32]) -> f64 {
    let (mut sig, mut noise) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        sig += (x as f64).powi(2);
        noise += (x as f64 - y as f64).powi(2);
    }
    10.0 * (sig / noise.max(1e-30)).log10()
}

fn assert_lossy_copy(name: &str) {
    let wav = question();
    let (y, rate) = read_audio(&fixture(&format!("speech/{name}"))).unwrap();
    assert_eq!(rate, 16000, "{name}");
    let len_diff = (y.len() as i64 - wav.len() as i64).abs();
    assert!(
        len_diff <= 1152,
        "{name}: {} samples, the WAV has {}",
        y.len(),
        wav.len()
    );
    let (best_lag, best) = (-2000..=2000i64)
        .step_by(1)
        .map(|lag| (lag, correlation(&wav, &y, lag)))
        .fold((0, f64::MIN), |acc, x| if x.1 > acc.1 { x } else { acc });
    let at_zero = correlation(&wav, &y, 0);
    let snr = snr_db(&wav, &y);
    eprintln!("{name}: {} samples, best lag {best_lag} (corr {best:.4}), corr at 0 {at_zero:.4}, SNR {snr:.1} dB", y.len());
    assert!(best_lag.abs() <= 4, "{name}: best lag {best_lag}");
    assert!(at_zero >= 0.95, "{name}: correlation {at_zero}");
    assert!(snr >= 10.0, "{name}: SNR {snr} dB");
}

#[test]
fn flac_decodes_to_exactly_the_wav_samples() {
    let (y, rate) = read_audio(&fixture("speech/question.flac")).unwrap();
    assert_eq!(rate, 16000);
    assert_eq!(y, question());
}

#[test]
fn stereo_flac_is_downmixed_by_averaging_the_channels() {
    // Left: the question; right: silence. The mean is exactly half the question.
    let (y, rate) = read_audio(&fixture("speech/question_stereo_left.flac")).unwrap();
    assert_eq!(rate, 16000);
    let half: Vec<f32> = question().iter().map(|x| x / 2.0).collect();
    assert_eq!(y, half);
}

#[test]
fn mp3_decodes_close_to_the_wav() {
    assert_lossy_copy("question.mp3");
}

#[test]
fn ogg_vorbis_decodes_close_to_the_wav() {
    assert_lossy_copy("question.ogg");
}

#[test]
fn wav_reads_as_read_wav_does() {
    let path = fixture("speech/question.wav");
    assert_eq!(read_audio(&path).unwrap(), read_wav(&path).unwrap());
}

#[test]
fn the_format_comes_from_the_bytes_not_the_extension() {
    let path = tmp("actually_flac.wav");
    std::fs::copy(fixture("speech/question.flac"), &path).unwrap();
    assert_eq!(read_audio(&path).unwrap().0, question());
    std::fs::remove_file(&path).ok();
}

fn problem_of(path: &Path) -> AudioFileProblem {
    match read_audio(path) {
        Err(e @ Error::AudioFile { .. }) => {
            assert_eq!(e.kind(), ErrorKind::Audio);
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            let Error::AudioFile { problem, .. } = e else {
                unreachable!()
            };
            problem
        }
        other => panic!(
            "{}: expected an AudioFile error, got {other:?}",
            path.display()
        ),
    }
}

#[test]
fn opus_is_refused_as_an_unsupported_codec() {
    let p = problem_of(&fixture("speech/question.opus"));
    assert_eq!(p, AudioFileProblem::UnsupportedCodec("Opus".into()));
}

#[test]
fn an_empty_file_is_refused_as_empty() {
    let path = tmp("empty.flac");
    std::fs::write(&path, b"").unwrap();
    assert_eq!(problem_of(&path), AudioFileProblem::Empty);
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_foreign_file_is_refused_as_unknown_format() {
    let path = tmp("notes.mp3");
    std::fs::write(&path, "these are meeting notes, not audio\n".repeat(50)).unwrap();
    assert_eq!(problem_of(&path), AudioFileProblem::UnknownFormat);
    // A PNG header.
    let png = tmp("image.ogg");
    std::fs::write(
        &png,
        [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ],
    )
    .unwrap();
    assert_eq!(problem_of(&png), AudioFileProblem::UnknownFormat);
    std::fs::remove_file(&path).ok();
    std::fs::remove_file(&png).ok();
}

/// The first `keep` of `name`'s bytes, as a temporary file.
fn truncated(name: &str, keep: f64) -> PathBuf {
    let bytes = std::fs::read(fixture(&format!("speech/{name}"))).unwrap();
    let path = tmp(&format!("truncated-{keep}-{name}"));
    std::fs::write(&path, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
    path
}

#[test]
fn a_truncated_file_is_refused_not_read_short() {
    for name in ["question.flac", "question.mp3", "question.ogg"] {
        let path = truncated(name, 0.5);
        let p = problem_of(&path);
        assert!(
            matches!(
                p,
                AudioFileProblem::Truncated(_) | AudioFileProblem::Corrupt(_)
            ),
            "{name}: {p:?}"
        );
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn a_file_cut_inside_its_header_is_refused() {
    for name in ["question.flac", "question.mp3", "question.ogg"] {
        let bytes = std::fs::read(fixture(&format!("speech/{name}"))).unwrap();
        let path = tmp(&format!("header-{name}"));
        std::fs::write(&path, &bytes[..20]).unwrap();
        let err = read_audio(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Audio, "{name}: {err:?}");
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = read_audio(Path::new("/nonexistent/question.flac")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    let err = read_audio(Path::new("")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
}

#[test]
fn an_ogg_stream_cut_at_a_page_boundary_is_refused() {
    // Every page whole, but the end-of-stream page is gone.
    let bytes = std::fs::read(fixture("speech/question.ogg")).unwrap();
    let last_page = bytes.windows(4).rposition(|w| w == b"OggS").unwrap();
    assert!(last_page > 0);
    let path = tmp("cut-at-page.ogg");
    std::fs::write(&path, &bytes[..last_page]).unwrap();
    let p = problem_of(&path);
    std::fs::remove_file(&path).ok();
    assert!(matches!(p, AudioFileProblem::Truncated(_)), "{p:?}");
}
