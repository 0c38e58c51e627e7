//! Helpers shared by the integration tests: fixture paths and a reader for the
//! safetensors fixture files written by `tests/reference/make_fixtures.py`.
#![allow(dead_code)]

pub mod events;
#[cfg(feature = "train")]
pub mod train_tiny;

use std::collections::HashMap;
use std::path::PathBuf;

/// Path of a file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// One array of a fixture file, as f32 (integer arrays are converted).
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads every array of a safetensors fixture file.
pub fn read_arrays(rel: &str) -> HashMap<String, Array> {
    let path = fixture(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            safetensors::Dtype::I64 => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            other => panic!("{name}: unsupported fixture dtype {other:?}"),
        };
        out.insert(
            name,
            Array {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    out
}

/// Max |a - b|.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Max |a - b| / max(|b|): relative error normalised by the reference's scale,
/// which is how the tolerances in the tests are stated.
pub fn max_rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
    max_abs_diff(a, b) / scale
}

/// Mean |a - b| / max(|b|): the average error on the reference's scale (the f16
/// runs' second bound).
pub fn mean_rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32 / scale
}

/// The device the golden tests run on: `OMNI_TEST_DEVICE` (`cpu` by default;
/// `.ci/run` also runs them with `wgpu` on a software Vulkan adapter).
pub fn test_device() -> omni_core::Device {
    let spec = std::env::var("OMNI_TEST_DEVICE").unwrap_or_else(|_| "cpu".to_string());
    omni_core::parse_device(&spec).unwrap_or_else(|e| panic!("OMNI_TEST_DEVICE: {e}"))
}

/// Real trained weights (Whisper base, SmolLM2-135M-Instruct) and the SmolLM2 quality report.
pub mod real_weights;
