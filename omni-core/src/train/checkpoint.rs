//! Checkpoints in the published layout (what `omni run` and the loaders read):
//! sharded `model-0000i-of-0000n.safetensors`, `model.safetensors.index.json` and
//! `config.json` (and the source's other files: tokenizer, generation config,
//! Whisper `.pt`), plus the training state needed to resume exactly:
//! `optimizer.safetensors` (AdamW moments, f32) and `trainer_state.json` (step).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;

use super::optim::AdamW;
use super::params::NamedTensor;
use crate::weights::{RunDType, WeightStore};
use crate::{Error, Result};

/// The on-disk dtype: the published layout has no quantized tensors, so a
/// quantized run dtype is written as f16 (`Omni::load` quantizes it again).
fn disk_dtype(d: RunDType) -> RunDType {
    match d {
        RunDType::F32 => RunDType::F32,
        RunDType::BF16 => RunDType::BF16,
        _ => RunDType::F16,
    }
}

fn dtype_name(d: RunDType) -> &'static str {
    match disk_dtype(d) {
        RunDType::F32 => "F32",
        RunDType::BF16 => "BF16",
        _ => "F16",
    }
}

fn encode(data: &[f32], d: RunDType) -> Vec<u8> {
    match disk_dtype(d) {
        RunDType::F32 => data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        RunDType::BF16 => data
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect(),
        _ => data
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
    }
}

/// Writes one safetensors file (header sorted by name, data in that order).
pub fn write_safetensors(path: &Path, tensors: &[&NamedTensor], dtype: RunDType) -> Result<()> {
    let mut sorted: Vec<&&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut blobs = Vec::with_capacity(sorted.len());
    let mut offset = 0usize;
    for t in sorted {
        let bytes = encode(&t.data, dtype);
        header.insert(
            t.name.clone(),
            json!({"dtype": dtype_name(dtype), "shape": t.shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
        blobs.push(bytes);
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| Error::io(path, e))?);
    let io = |e| Error::io(path, e);
    f.write_all(&(h.len() as u64).to_le_bytes()).map_err(io)?;
    f.write_all(&h).map_err(io)?;
    for b in blobs {
        f.write_all(&b).map_err(io)?;
    }
    f.flush().map_err(io)
}

/// Saves a model directory: `tensors` (the trained ones, published names,
/// PyTorch layout), every other tensor of `source_dir`'s checkpoint unchanged,
/// in `dtype`, in shards of at most `max_shard_bytes` (one tensor may exceed
/// it), with the index; the source's other files are copied.
pub fn save_model_dir(
    dir: &Path,
    source_dir: &Path,
    tensors: &[NamedTensor],
    dtype: RunDType,
    max_shard_bytes: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let source = WeightStore::open_hf_dir(source_dir)?;
    let mut all: BTreeMap<String, NamedTensor> = BTreeMap::new();
    for key in source.keys() {
        let shape = source
            .info(&key)
            .map(|i| i.shape.clone())
            .unwrap_or_default();
        let data = source.read_f32(&key, &shape)?;
        all.insert(
            key.clone(),
            NamedTensor {
                name: key,
                shape,
                data,
            },
        );
    }
    for t in tensors {
        if let Some(old) = all.get(&t.name) {
            if old.shape != t.shape {
                return Err(Error::InvalidInput(format!(
                    "{}: shape {:?}, checkpoint has {:?}",
                    t.name, t.shape, old.shape
                )));
            }
        }
        all.insert(t.name.clone(), t.clone());
    }
    let elem = match dtype {
        RunDType::F32 => 4,
        _ => 2,
    };
    let mut shards: Vec<Vec<&NamedTensor>> = vec![Vec::new()];
    let mut size = 0usize;
    for t in all.values() {
        let b = t.data.len() * elem;
        if size > 0 && size + b > max_shard_bytes {
            shards.push(Vec::new());
            size = 0;
        }
        shards.last_mut().expect("one shard").push(t);
        size += b;
    }
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut total = 0usize;
    for (i, shard) in shards.iter().enumerate() {
        let name = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
        write_safetensors(&dir.join(&name), shard, dtype)?;
        for t in shard {
            weight_map.insert(t.name.clone(), json!(name));
            total += t.data.len() * elem;
        }
    }
    let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    let index_path = dir.join("model.safetensors.index.json");
    std::fs::write(
        &index_path,
        serde_json::to_vec_pretty(&index).unwrap_or_default(),
    )
    .map_err(|e| Error::io(&index_path, e))?;
    // Saving over the folder the model came from (a resumed run writing where it
    // was read from): the other files are already there; copying a file onto
    // itself would truncate it.
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(dir, source_dir) {
        return Ok(());
    }
    for entry in std::fs::read_dir(source_dir).map_err(|e| Error::io(source_dir, e))? {
        let entry = entry.map_err(|e| Error::io(source_dir, e))?;
        let fname = entry.file_name().to_string_lossy().to_string();
        let weights = fname.ends_with(".safetensors") || fname == "model.safetensors.index.json";
        if entry.path().is_file() && !weights {
            std::fs::copy(entry.path(), dir.join(&fname))
                .map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
}

fn host(t: &Tensor<1>) -> Vec<f32> {
    t.clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// Saves the optimizer state (`optimizer.safetensors`, `trainer_state.json`).
pub fn save_optimizer(dir: &Path, opt: &AdamW) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut v = Vec::new();
    for (k, t) in &opt.exp_avg {
        v.push(NamedTensor {
            name: format!("exp_avg.{k}"),
            shape: vec![t.dims()[0]],
            data: host(t),
        });
    }
    for (k, t) in &opt.exp_avg_sq {
        v.push(NamedTensor {
            name: format!("exp_avg_sq.{k}"),
            shape: vec![t.dims()[0]],
            data: host(t),
        });
    }
    write_safetensors(
        &dir.join("optimizer.safetensors"),
        &v.iter().collect::<Vec<_>>(),
        RunDType::F32,
    )?;
    let c = opt.config;
    let state = json!({"step": opt.step, "beta1": c.beta1, "beta2": c.beta2, "eps": c.eps, "weight_decay": c.weight_decay});
    let p = dir.join("trainer_state.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&state).unwrap_or_default())
        .map_err(|e| Error::io(&p, e))
}

/// Restores what [`save_optimizer`] wrote, on `device`.
pub fn load_optimizer(dir: &Path, device: &Device) -> Result<AdamW> {
    let p = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let s: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let f = |k: &str| {
        s[k].as_f64().ok_or_else(|| Error::Config {
            path: p.clone(),
            reason: format!("no `{k}`"),
        })
    };
    let config = super::optim::AdamWConfig {
        beta1: f("beta1")?,
        beta2: f("beta2")?,
        eps: f("eps")?,
        weight_decay: f("weight_decay")?,
    };
    let mut opt = AdamW::new(config);
    opt.step = s["step"].as_u64().ok_or_else(|| Error::Config {
        path: p.clone(),
        reason: "no `step`".into(),
    })?;
    let store = WeightStore::open_safetensors(dir.join("optimizer.safetensors"))?;
    for key in store.keys() {
        let n = store
            .info(&key)
            .map(|i| i.shape.iter().product())
            .unwrap_or(0);
        let t = Tensor::<1>::from_data(TensorData::new(store.read_f32(&key, &[n])?, [n]), device);
        if let Some(name) = key.strip_prefix("exp_avg_sq.") {
            opt.exp_avg_sq.insert(name.to_string(), t);
        } else if let Some(name) = key.strip_prefix("exp_avg.") {
            opt.exp_avg.insert(name.to_string(), t);
        }
    }
    Ok(opt)
}
