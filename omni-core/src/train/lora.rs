//! LoRA for stage 1 (PEFT's `LoraConfig(r, lora_alpha, lora_dropout=0,
//! target_modules=[q,k,v,o,gate,up,down]_proj)`): every attention and MLP
//! projection of the LLM gets a [`Lora`] (`A` uniform in ±1/√in as PEFT's
//! `kaiming_uniform_(a=√5)`, `B = 0`, so the model is unchanged at the start);
//! only `A`, `B` (and the adaptor) train; [`merge_lora`] folds `s·A·B` into the
//! weights for export, so checkpoints keep the published layout.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Distribution, Tensor};

use super::params::KeyPath;
use crate::model::llama::Llama;
use crate::model::nn::lora::Lora;
use crate::model::nn::proj::Proj;
use crate::{Error, Result};

/// Rank and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraConfig {
    pub rank: usize,
    /// `s = alpha / rank`.
    pub alpha: f64,
}

fn with_lora(p: Proj, cfg: &LoraConfig) -> Result<Proj> {
    let Some(dense) = &p.dense else {
        return Err(Error::InvalidInput(
            "LoRA needs dense (f32/bf16) LLM weights, not packed ones".into(),
        ));
    };
    let [k, n] = dense.weight.dims();
    let device = dense.weight.val().device();
    let bound = 1.0 / (k as f64).sqrt();
    let a = Tensor::<2>::random([k, cfg.rank], Distribution::Uniform(-bound, bound), &device);
    let b = Tensor::<2>::zeros([cfg.rank, n], &device);
    Ok(Proj {
        lora: Some(Lora {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scale: cfg.alpha / cfg.rank as f64,
        }),
        ..p
    })
}

fn merged(p: Proj) -> Proj {
    let Proj {
        dense,
        bias,
        packed,
        lora,
    } = p;
    let dense = match (dense, lora) {
        (Some(mut l), Some(lora)) => {
            let delta = lora
                .a
                .val()
                .without_autodiff()
                .matmul(lora.b.val().without_autodiff())
                .mul_scalar(lora.scale);
            let w = l.weight.val().without_autodiff() + delta;
            l.weight = Param::from_tensor(w);
            Some(l)
        }
        (d, _) => d,
    };
    Proj {
        dense,
        bias,
        packed,
        lora: None,
    }
}

/// Every projection of every layer through `f`.
fn map_projs(mut llm: Llama, mut f: impl FnMut(Proj) -> Result<Proj>) -> Result<Llama> {
    for layer in &mut llm.layers {
        let a = &mut layer.self_attn;
        for p in [&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj] {
            *p = f(p.clone())?;
        }
        let m = &mut layer.mlp;
        for p in [&mut m.gate_proj, &mut m.up_proj, &mut m.down_proj] {
            *p = f(p.clone())?;
        }
    }
    Ok(llm)
}

/// Only the LoRA factors require gradients (takes effect at `Module::train()`).
struct FreezeBase {
    paths: KeyPath,
}

impl ModuleMapper for FreezeBase {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.paths.enter(name, container);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.paths.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let is_lora = self.paths.name("").contains(".lora.");
        param.set_require_grad(is_lora)
    }
}

/// Adds a LoRA to each attention and MLP projection of a plain (non-autodiff)
/// LLM and freezes everything else; make it trainable with `Module::train()`.
pub fn add_lora(llm: Llama, cfg: &LoraConfig) -> Result<Llama> {
    if cfg.rank == 0 {
        return Err(Error::InvalidInput("LoRA rank 0".into()));
    }
    let llm = map_projs(llm, |p| with_lora(p, cfg))?;
    Ok(llm.map(&mut FreezeBase {
        paths: KeyPath::default(),
    }))
}

/// `W ← W + s·A·B` in every projection, the LoRAs removed: the same function,
/// in the published layout. The result is plain (no autodiff).
pub fn merge_lora(llm: &Llama) -> Llama {
    map_projs(llm.valid(), |p| Ok(merged(p))).expect("merging cannot fail")
}
