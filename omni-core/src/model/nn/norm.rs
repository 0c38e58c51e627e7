//! Normalisations that accumulate in f32 whatever the run dtype (as PyTorch's
//! CPU and CUDA kernels do for f16 inputs).

use burn::tensor::{DType, Tensor};

/// LayerNorm over the last axis: `(x - mean) / sqrt(var + eps) * gamma + beta`.
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    let dtype = x.dtype();
    if dtype == DType::F32 {
        burn::tensor::module::layer_norm(x, gamma, Some(beta), eps)
    } else {
        burn::tensor::module::layer_norm(
            x.cast(DType::F32),
            gamma.cast(DType::F32),
            Some(beta.cast(DType::F32)),
            eps,
        )
        .cast(dtype)
    }
}

use burn::module::{Module, Param};
use burn::tensor::Device;

use crate::weights::{RunDType, WeightStore};
use crate::Result;

/// A LayerNorm with weight and bias, loaded from `{prefix}.weight` / `{prefix}.bias`.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`, both `[dim]`.
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        dim: usize,
        eps: f64,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        Ok(LayerNorm {
            weight: Param::from_tensor(store.vector(
                &format!("{prefix}.weight"),
                dim,
                dtype,
                device,
            )?),
            bias: Param::from_tensor(store.vector(
                &format!("{prefix}.bias"),
                dim,
                dtype,
                device,
            )?),
            eps,
        })
    }

    /// Normalises over the last axis.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.weight.val(), self.bias.val(), self.eps)
    }
}
