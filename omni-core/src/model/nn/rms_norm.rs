//! RMSNorm as HF Llama computes it: in f32, cast back, then scaled by the weight.

use burn::module::{Module, Param};
use burn::tensor::{DType, Device, Tensor};

use crate::weights::{RunDType, WeightStore};
use crate::Result;

/// `weight * (x / sqrt(mean(x²) + eps))`.
#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl RmsNorm {
    /// Loads `{key}` (`[dim]`).
    pub fn load(
        store: &WeightStore,
        key: &str,
        dim: usize,
        eps: f64,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        Ok(RmsNorm {
            weight: Param::from_tensor(store.vector(key, dim, dtype, device)?),
            eps,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        let xf = if dtype == DType::F32 {
            x
        } else {
            x.cast(DType::F32)
        };
        let var = xf.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = xf * (var + self.eps).sqrt().recip();
        let normed = if dtype == DType::F32 {
            normed
        } else {
            normed.cast(dtype)
        };
        normed * self.weight.val().unsqueeze::<D>()
    }
}
