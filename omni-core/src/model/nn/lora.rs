//! [`Lora`]: a low-rank update of a dense [`super::proj::Proj`], `y += s · (x·A)·B`
//! with `A: [in, r]`, `B: [r, out]`, `s = alpha / r` (PEFT's `LoraLayer` with
//! dropout 0, in omni's `[in, out]` weight layout). Only training adds one
//! (`omni_core::train::lora`); it is merged into the weight before export, so
//! checkpoints and the runtime never see it.

use burn::module::{Module, Param};
use burn::tensor::Tensor;

/// The two low-rank factors and their scale.
#[derive(Module, Debug)]
pub struct Lora {
    pub a: Param<Tensor<2>>,
    pub b: Param<Tensor<2>>,
    /// `alpha / r`.
    #[module(skip)]
    pub scale: f64,
}

impl Lora {
    /// `s · (x·A)·B` over the last dimension of `x`.
    pub fn delta<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let k = self.a.dims()[0];
        let n = self.b.dims()[1];
        let m: usize = dims[..D - 1].iter().product();
        let mut out = dims;
        out[D - 1] = n;
        x.reshape([m, k])
            .matmul(self.a.val())
            .matmul(self.b.val())
            .mul_scalar(self.scale)
            .reshape(out)
    }
}
