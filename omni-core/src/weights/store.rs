//! [`WeightStore`]: one namespace of named tensors drawn from one or more
//! checkpoint files, loaded into burn tensors of the run dtype on demand.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use burn_store::pytorch_reader::{self, PytorchReader};

use omni_kernels::{Format, WeightMatrix};

use super::convert::{to_data, to_f32, transpose, RunDType};
use super::safetensors::{read_entry, StEntry, StFile};
use crate::model::nn::proj::Proj;
use crate::{Error, Result};

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDType {
    F32,
    F16,
    BF16,
    F64,
    /// Integer/bool tensors: listed, never loaded as weights.
    Unsupported,
}

impl StoredDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StoredDType::F64 => 8,
            StoredDType::F32 => 4,
            StoredDType::F16 | StoredDType::BF16 => 2,
            StoredDType::Unsupported => 0,
        }
    }
}

/// Dtype and shape of a stored tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: StoredDType,
    pub shape: Vec<usize>,
    /// For unsupported dtypes: the file's own dtype name.
    pub note: Option<String>,
}

#[derive(Clone)]
enum Backing {
    Safetensors(StEntry),
    Pytorch(pytorch_reader::Tensor),
}

#[derive(Clone)]
struct Entry {
    path: PathBuf,
    info: TensorInfo,
    backing: Backing,
}

/// Named tensors from checkpoint files.
pub struct WeightStore {
    entries: HashMap<String, Entry>,
    /// What was opened, for error messages about missing keys.
    origin: PathBuf,
    /// [`WeightStore::proj`] makes burn layers only (training: autodiff runs through
    /// burn's matmul, not through omni-kernels).
    dense_only: bool,
}

impl std::fmt::Debug for WeightStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WeightStore({}, {} tensors)",
            self.origin.display(),
            self.entries.len()
        )
    }
}

fn pt_dtype(d: pytorch_reader::DType) -> StoredDType {
    use pytorch_reader::DType as P;
    match d {
        P::F32 => StoredDType::F32,
        P::F16 => StoredDType::F16,
        P::BF16 => StoredDType::BF16,
        P::F64 => StoredDType::F64,
        _ => StoredDType::Unsupported,
    }
}

impl WeightStore {
    /// An empty store (tensors are added by `merge`).
    pub fn empty(origin: impl Into<PathBuf>) -> Self {
        WeightStore {
            entries: HashMap::new(),
            origin: origin.into(),
            dense_only: false,
        }
    }

    /// Opens one safetensors file.
    pub fn open_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let st = StFile::open(path)?;
        let mut store = WeightStore::empty(path);
        for (k, e) in st.entries {
            store.entries.insert(
                k,
                Entry {
                    path: st.path.clone(),
                    info: e.info.clone(),
                    backing: Backing::Safetensors(e),
                },
            );
        }
        Ok(store)
    }

    /// Opens the safetensors of a HF model folder: `model.safetensors.index.json`
    /// and its shards when present, else `model.safetensors`. Every shard named by
    /// the index must exist and hold the keys the index assigns to it.
    pub fn open_hf_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let index = dir.join("model.safetensors.index.json");
        if !index.exists() {
            let single = dir.join("model.safetensors");
            if !single.exists() {
                return Err(Error::MissingFile {
                    path: index,
                    what: "neither model.safetensors.index.json nor model.safetensors is in the model folder"
                        .into(),
                });
            }
            return Self::open_safetensors(single);
        }
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
                path: index.clone(),
                reason: format!("not valid JSON: {e}"),
            })?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::Checkpoint {
                path: index.clone(),
                reason: "no `weight_map` object".into(),
            })?;
        let mut by_shard: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in map {
            let shard = v.as_str().ok_or_else(|| Error::Checkpoint {
                path: index.clone(),
                reason: format!("weight_map entry `{k}` is not a file name"),
            })?;
            by_shard
                .entry(shard.to_string())
                .or_default()
                .push(k.clone());
        }
        let mut shards: Vec<_> = by_shard.into_iter().collect();
        shards.sort();
        let mut store = WeightStore::empty(&index);
        for (shard, keys) in shards {
            let p = dir.join(&shard);
            if !p.exists() {
                return Err(Error::MissingFile {
                    path: p,
                    what: format!(
                        "shard named by {} ({} tensors)",
                        index.display(),
                        keys.len()
                    ),
                });
            }
            let st = StFile::open(&p)?;
            for k in keys {
                let e = st.entries.get(&k).ok_or_else(|| Error::MissingKey {
                    path: p.clone(),
                    key: k.clone(),
                })?;
                store.entries.insert(
                    k,
                    Entry {
                        path: p.clone(),
                        info: e.info.clone(),
                        backing: Backing::Safetensors(e.clone()),
                    },
                );
            }
        }
        Ok(store)
    }

    /// Opens a PyTorch pickle checkpoint, taking the tensors under `top_key`
    /// (`model_state_dict` for openai-whisper, `generator` for fairseq vocoders).
    pub fn open_pytorch(path: impl AsRef<Path>, top_key: Option<&str>) -> Result<Self> {
        let path = path.as_ref();
        // A missing or unreadable file is an I/O error, not a malformed checkpoint.
        crate::error::check_readable(path, "PyTorch checkpoint")?;
        let reader = match top_key {
            Some(k) => PytorchReader::with_top_level_key(path, k),
            None => PytorchReader::new(path),
        }
        .map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut store = WeightStore::empty(path);
        for (k, t) in reader.into_tensors() {
            let info = TensorInfo {
                dtype: pt_dtype(t.dtype()),
                shape: t.shape().to_vec(),
                note: None,
            };
            store.entries.insert(
                k,
                Entry {
                    path: path.to_path_buf(),
                    info,
                    backing: Backing::Pytorch(t),
                },
            );
        }
        Ok(store)
    }

    /// The file or folder this store was opened from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<_> = self.entries.keys().cloned().collect();
        k.sort();
        k
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Whether any key starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.entries.keys().any(|k| k.starts_with(prefix))
    }

    /// Dtype and shape of `key`.
    pub fn info(&self, key: &str) -> Option<&TensorInfo> {
        self.entries.get(key).map(|e| &e.info)
    }

    /// A view of the keys starting with `prefix`, with the prefix removed
    /// (metadata only: no file is read again).
    pub fn sub(&self, prefix: &str) -> Self {
        let entries = self
            .entries
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
            .collect();
        WeightStore {
            entries,
            origin: self.origin.clone(),
            dense_only: self.dense_only,
        }
    }

    /// The dtype of the activations (and of the tensors that are not linear
    /// layers: norms, biases, RoPE tables, the KV cache) of a model loaded from this
    /// store in `dtype` on `device`. f16 on the CPU backend runs its linear layers
    /// as omni-kernels f16 matrices, whose products are f32: there everything else
    /// is f32 too, as in q8_0/q4_0 runs and llama.cpp (f16 weights, f32
    /// activations), and flex's elementwise ops and attention run in f32 (its f16
    /// ones convert per element: measured, an f16 prompt spent ~0.8 s of 4.4 s there).
    /// Everywhere else (wgpu/cuda, `OMNI_F16_KERNELS=0`, training) the activations
    /// are `dtype`'s.
    pub fn activations(&self, dtype: RunDType, device: &Device) -> RunDType {
        if dtype == RunDType::F16 && self.packs(Format::F16, device) {
            RunDType::F32
        } else {
            dtype
        }
    }

    /// Whether [`WeightStore::proj`] makes omni-kernels matrices of `format` here.
    fn packs(&self, format: Format, device: &Device) -> bool {
        let cpu = *device == Device::flex() && !self.dense_only;
        // `OMNI_F16_KERNELS=0` / `OMNI_F32_KERNELS=0`: f16 / f32 Linear layers computed
        // by burn (flex's matmul), as before omni-kernels; for benchmarks.
        let env_off = |var: &str| std::env::var(var).is_ok_and(|v| v.trim() == "0");
        match format {
            Format::F16 => cpu && !env_off("OMNI_F16_KERNELS"),
            Format::F32 => cpu && !env_off("OMNI_F32_KERNELS"),
            Format::Q8_0 | Format::Q4_0 => cpu,
        }
    }

    /// This store with [`WeightStore::proj`] making burn layers (f32/bf16/f16
    /// `Linear`; q8_0/q4_0 still quantized, then dequantized), never omni-kernels
    /// ones: what training loads, since gradients flow through burn's ops only.
    pub fn dense_only(mut self) -> Self {
        self.dense_only = true;
        self
    }

    fn entry(&self, key: &str) -> Result<&Entry> {
        self.entries.get(key).ok_or_else(|| Error::MissingKey {
            path: self.origin.clone(),
            key: key.to_string(),
        })
    }

    fn bytes(&self, key: &str, e: &Entry) -> Result<Vec<u8>> {
        if e.info.dtype == StoredDType::Unsupported {
            return Err(Error::Checkpoint {
                path: e.path.clone(),
                reason: format!(
                    "tensor `{key}` has dtype {}, expected a float dtype",
                    e.info.note.as_deref().unwrap_or("(non-float)")
                ),
            });
        }
        match &e.backing {
            Backing::Safetensors(st) => read_entry(&e.path, st),
            Backing::Pytorch(t) => t.read().map_err(|err| Error::Checkpoint {
                path: e.path.clone(),
                reason: format!("tensor `{key}`: {err}"),
            }),
        }
    }

    fn check_shape(&self, key: &str, e: &Entry, expected: &[usize]) -> Result<()> {
        if e.info.shape != expected {
            return Err(Error::ShapeMismatch {
                path: e.path.clone(),
                key: key.to_string(),
                expected: expected.to_vec(),
                found: e.info.shape.clone(),
            });
        }
        Ok(())
    }

    /// Reads `key` as f32 host values, checking its shape.
    pub fn read_f32(&self, key: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let e = self.entry(key)?;
        self.check_shape(key, e, expected)?;
        Ok(to_f32(&self.bytes(key, e)?, e.info.dtype))
    }

    /// Loads `key` as a tensor of the run dtype on `device`, checking its shape.
    pub fn tensor<const D: usize>(
        &self,
        key: &str,
        expected: [usize; D],
        dtype: RunDType,
        device: &Device,
    ) -> Result<Tensor<D>> {
        self.load_tensor(key, expected, dtype, device, false)
    }

    fn load_tensor<const D: usize>(
        &self,
        key: &str,
        expected: [usize; D],
        dtype: RunDType,
        device: &Device,
        transpose_2d: bool,
    ) -> Result<Tensor<D>> {
        // A run dtype the device cannot compute in (BF16 on wgpu, F16 on an adapter
        // without SHADER_F16) would load, then panic in the first matmul: refuse it here.
        if !device.supports_dtype(dtype.burn()) {
            return Err(Error::Device {
                requested: format!("{device:?}"),
                reason: format!("it cannot compute in {dtype:?}; load the model in F32 (or F16 where supported)"),
            });
        }
        let e = self.entry(key)?;
        self.check_shape(key, e, &expected)?;
        let bytes = self.bytes(key, e)?;
        let data = to_data(&bytes, e.info.dtype, &expected, dtype, transpose_2d);
        drop(bytes);
        Ok(Tensor::from_data(data, (device, dtype.burn())))
    }

    /// Loads a PyTorch-layout linear layer `{prefix}.weight` `[d_out, d_in]` (+ `{prefix}.bias`).
    /// The weight is transposed once on the host into burn's `[d_in, d_out]`
    /// layout (contiguous, the fast one for the CPU matmul).
    pub fn linear(
        &self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Linear> {
        let w: Tensor<2> = self.load_tensor(
            &format!("{prefix}.weight"),
            [d_out, d_in],
            dtype,
            device,
            true,
        )?;
        let b = if bias {
            Some(Param::from_tensor(self.tensor(
                &format!("{prefix}.bias"),
                [d_out],
                dtype,
                device,
            )?))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(w),
            bias: b,
        })
    }

    /// Loads a linear layer of the LLM or the speech decoder `{prefix}.weight`
    /// `[d_out, d_in]` (+ `{prefix}.bias`) as a [`Proj`]. On the CPU backend, `q8_0`
    /// and `q4_0` quantize the weight here (llama.cpp blocks, from the stored
    /// f16/bf16/f32 values), `f16` keeps it as f16 bits and `f32` as f32, all in
    /// `[out, in]` for omni-kernels; the bias stays f32. Elsewhere (wgpu, cuda), and
    /// in a [`WeightStore::dense_only`] store, a quantized weight is dequantized at
    /// load to an f32 burn layer (the same numbers as on the CPU), and f16/f32/bf16
    /// load as [`WeightStore::linear`]. A q8_0/q4_0 layer whose `d_in` is not a
    /// multiple of 32 stays f32. `OMNI_F16_KERNELS=0` / `OMNI_F32_KERNELS=0` make
    /// f16 / f32 layers burn layers on the CPU too (the path before omni-kernels).
    pub fn proj(
        &self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Proj> {
        let format = match dtype {
            RunDType::F32 => Some(Format::F32),
            RunDType::F16 => Some(Format::F16),
            d => d.quantized(),
        };
        let Some(format) = format.filter(|&f| WeightMatrix::supports(f, d_in)) else {
            return Ok(Proj::dense(
                self.linear(prefix, d_in, d_out, bias, dtype, device)?,
            ));
        };
        let packed = self.packs(format, device);
        if !packed && matches!(format, Format::F32 | Format::F16) {
            return Ok(Proj::dense(
                self.linear(prefix, d_in, d_out, bias, dtype, device)?,
            ));
        }
        let key = format!("{prefix}.weight");
        let e = self.entry(&key)?;
        self.check_shape(&key, e, &[d_out, d_in])?;
        let bytes = self.bytes(&key, e)?;
        let w = if format == Format::F32 {
            WeightMatrix::from_f32_vec(d_out, d_in, to_f32(&bytes, e.info.dtype))
        } else if format == Format::F16 && e.info.dtype == StoredDType::F16 {
            let bits = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            WeightMatrix::from_f16_bits(d_out, d_in, bits)
        } else {
            WeightMatrix::from_f32(format, d_out, d_in, &to_f32(&bytes, e.info.dtype))
        };
        drop(bytes);
        let bias_dtype = if packed { RunDType::F32 } else { dtype };
        let b = if bias {
            Some(self.tensor(&format!("{prefix}.bias"), [d_out], bias_dtype, device)?)
        } else {
            None
        };
        if packed {
            return Ok(Proj::packed(w, b));
        }
        // Not packed here (another device, or a `dense_only` store): the quantized
        // values, dequantized once, as an f32 burn layer.
        let wt = transpose(&w.dequantize(), d_out, d_in);
        let weight = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(wt, [d_in, d_out]),
            (device, burn::tensor::DType::F32),
        );
        Ok(Proj::dense(Linear {
            weight: Param::from_tensor(weight),
            bias: b.map(Param::from_tensor),
        }))
    }

    /// Loads a 1-d vector.
    pub fn vector(
        &self,
        key: &str,
        n: usize,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Tensor<1>> {
        self.tensor(key, [n], dtype, device)
    }

    /// Moves every tensor of `other` into this store (keys of `other` win).
    pub fn merge(&mut self, other: WeightStore) {
        self.entries.extend(other.entries);
    }
}
