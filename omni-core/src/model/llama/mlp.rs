//! SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.

use crate::model::nn::proj::Proj;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::weights::{RunDType, WeightStore};
use crate::Result;

#[derive(Module, Debug)]
pub struct Mlp {
    pub gate_proj: Proj,
    pub up_proj: Proj,
    pub down_proj: Proj,
}

impl Mlp {
    /// Loads `{prefix}.gate_proj|up_proj|down_proj`.
    pub fn load(
        store: &WeightStore,
        prefix: &str,
        hidden: usize,
        ffn: usize,
        dtype: RunDType,
        device: &Device,
    ) -> Result<Self> {
        Ok(Mlp {
            gate_proj: store.proj(
                &format!("{prefix}.gate_proj"),
                hidden,
                ffn,
                false,
                dtype,
                device,
            )?,
            up_proj: store.proj(
                &format!("{prefix}.up_proj"),
                hidden,
                ffn,
                false,
                dtype,
                device,
            )?,
            down_proj: store.proj(
                &format!("{prefix}.down_proj"),
                ffn,
                hidden,
                false,
                dtype,
                device,
            )?,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down_proj
            .forward(Proj::swiglu(&self.gate_proj, &self.up_proj, x))
    }
}
