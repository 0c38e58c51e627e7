//! Weight-norm folding at load time.
//!
//! fairseq wraps every HiFi-GAN convolution in `torch.nn.utils.weight_norm(m)` (dim 0),
//! so the checkpoint stores `{p}.weight_g` (shape `[d0, 1, 1]`) and `{p}.weight_v`
//! (the full weight shape) instead of `{p}.weight`. The weight is
//! `w = g * v / ||v||`, the norm taken over every dim but 0. For `Conv1d` weights
//! `[out, in, k]` that is one norm per output channel; for `ConvTranspose1d` weights
//! `[in, out, k]` it is one norm per **input** channel (dim 0 either way).
//! `CodeHiFiGANVocoder` calls `remove_weight_norm()` after loading, which computes
//! the same product once; we do it on the host in f64 while loading.
//!
//! Also accepted: an already folded `{p}.weight` (a user's `remove_weight_norm()`
//! export) and the `torch.nn.utils.parametrizations.weight_norm` key names
//! (`{p}.parametrizations.weight.original0` = g, `.original1` = v).

use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::WeightStore;
use crate::{Error, Result};

/// Folds `g` (one value per index of dim 0) into `v` (`[d0, rest...]` row-major).
pub fn fold_weight_norm(g: &[f32], v: &[f32], d0: usize) -> Vec<f32> {
    if d0 == 0 || v.is_empty() {
        return Vec::new();
    }
    let row = v.len() / d0;
    let mut w = Vec::with_capacity(v.len());
    for (i, vr) in v.chunks_exact(row).enumerate() {
        let norm = vr
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt();
        let scale = g[i] as f64 / norm;
        w.extend(vr.iter().map(|&x| (x as f64 * scale) as f32));
    }
    w
}

/// Reads the weight of the conv at `prefix` with shape `shape` (dim 0 = the weight-norm
/// dim), folding weight norm when the checkpoint holds `weight_g`/`weight_v`.
pub fn conv_weight_host(store: &WeightStore, prefix: &str, shape: [usize; 3]) -> Result<Vec<f32>> {
    let plain = format!("{prefix}.weight");
    if store.contains(&plain) {
        return store.read_f32(&plain, &shape);
    }
    let pairs = [
        (format!("{prefix}.weight_g"), format!("{prefix}.weight_v")),
        (
            format!("{prefix}.parametrizations.weight.original0"),
            format!("{prefix}.parametrizations.weight.original1"),
        ),
    ];
    for (gk, vk) in &pairs {
        if !(store.contains(gk) || store.contains(vk)) {
            continue;
        }
        let v = store.read_f32(vk, &shape)?;
        // g is [d0, 1, 1] in fairseq checkpoints; accept a flat [d0] too.
        let g_shape: Vec<usize> = match store.info(gk) {
            Some(i) if i.shape == [shape[0]] => vec![shape[0]],
            _ => vec![shape[0], 1, 1],
        };
        let g = store.read_f32(gk, &g_shape)?;
        return Ok(fold_weight_norm(&g, &v, shape[0]));
    }
    Err(Error::MissingKey {
        path: store.origin().to_path_buf(),
        key: format!("{prefix}.weight_v"),
    })
}

/// [`conv_weight_host`] as an f32 tensor on `device`.
pub fn conv_weight(
    store: &WeightStore,
    prefix: &str,
    shape: [usize; 3],
    device: &Device,
) -> Result<Tensor<3>> {
    let w = conv_weight_host(store, prefix, shape)?;
    Ok(Tensor::from_data(TensorData::new(w, shape), device))
}

/// The f32 bias `{prefix}.bias` of length `n`.
pub fn bias(store: &WeightStore, prefix: &str, n: usize, device: &Device) -> Result<Tensor<1>> {
    let b = store.read_f32(&format!("{prefix}.bias"), &[n])?;
    Ok(Tensor::from_data(TensorData::new(b, [n]), device))
}

#[cfg(test)]
mod tests {
    use super::fold_weight_norm;

    #[test]
    fn folds_per_dim0_row() {
        // Two rows: v = [3, 4] (norm 5) and [0, 2] (norm 2); g = [10, 1].
        let w = fold_weight_norm(&[10.0, 1.0], &[3.0, 4.0, 0.0, 2.0], 2);
        assert_eq!(w, vec![6.0, 8.0, 0.0, 1.0]);
    }
}
