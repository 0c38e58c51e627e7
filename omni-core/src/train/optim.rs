//! AdamW, gradient accumulation and global-norm clipping, as PyTorch and the HF
//! `Trainer` that trained the reference do them, with state keyed by the
//! parameters' published names (stable across checkpoint and resume).
//!
//! - [`AdamW`]: `torch.optim.AdamW` (no amsgrad): decoupled decay
//!   `p ← p·(1 − lr·wd)`, `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//!   `p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`.
//! - [`GradAccumulator`]: sums the gradients of micro-batches (the HF `Trainer`
//!   divides each micro-batch loss by the accumulation steps; so does
//!   [`GradAccumulator::add`] with its `scale`).
//! - [`GradAccumulator::clip_global_norm`] mirrors `torch.nn.utils.clip_grad_norm_`
//!   (total L2 norm; scale by `max_norm / (norm + 1e-6)` when that is < 1).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor, TensorData};

use super::params::{KeyPath, NamedTensor};

/// AdamW hyper-parameters (PyTorch's defaults but the decay, which the HF
/// `Trainer` sets to 0 unless asked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Summed gradients by parameter name, flattened.
#[derive(Debug, Default, Clone)]
pub struct GradAccumulator {
    pub sums: BTreeMap<String, Tensor<1>>,
}

struct AddGrads<'a> {
    prefix: &'a str,
    paths: KeyPath,
    grads: &'a Gradients,
    scale: f64,
    acc: &'a mut GradAccumulator,
}

impl ModuleVisitor for AddGrads<'_> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.paths.enter(name, container);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.paths.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(g) = param.val().grad(self.grads) else {
            return;
        };
        let n = g.shape().num_elements();
        let g = g.reshape([n]).mul_scalar(self.scale);
        let name = self.paths.name(self.prefix);
        let sum = match self.acc.sums.remove(&name) {
            Some(s) => s + g,
            None => g,
        };
        self.acc.sums.insert(name, sum);
    }
}

struct FromNamed<'a> {
    prefix: &'a str,
    paths: KeyPath,
    named: &'a [NamedTensor],
    acc: &'a mut GradAccumulator,
}

impl ModuleVisitor for FromNamed<'_> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.paths.enter(name, container);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.paths.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = self.paths.name(self.prefix);
        let Some(t) = self.named.iter().find(|t| t.name == name) else {
            return;
        };
        let device = param.val().device().inner();
        let n = t.data.len();
        let flat = Tensor::<1>::from_data(TensorData::new(t.data.clone(), [n]), &device);
        let flat = if self.paths.is_linear_weight(D) {
            // PyTorch [out, in] → omni's [in, out].
            flat.reshape([t.shape[0], t.shape[1]])
                .swap_dims(0, 1)
                .reshape([n])
        } else {
            flat
        };
        self.acc.sums.insert(name, flat);
    }
}

impl GradAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Gradients given by name in PyTorch layout (e.g. computed elsewhere), for
    /// the parameters of `module` they name.
    pub fn from_named<M: Module>(module: &M, prefix: &str, named: &[NamedTensor]) -> Self {
        let mut acc = GradAccumulator::new();
        let mut v = FromNamed {
            prefix,
            paths: KeyPath::default(),
            named,
            acc: &mut acc,
        };
        module.visit(&mut v);
        acc
    }

    /// Adds `scale` × the gradients `grads` holds for the parameters of `module`
    /// (named `prefix` + path; frozen parameters have none).
    pub fn add<M: Module>(&mut self, module: &M, prefix: &str, grads: &Gradients, scale: f64) {
        let mut v = AddGrads {
            prefix,
            paths: KeyPath::default(),
            grads,
            scale,
            acc: self,
        };
        module.visit(&mut v);
    }

    /// The global L2 norm of all accumulated gradients.
    pub fn global_norm(&self) -> f64 {
        let sq: f64 = self
            .sums
            .values()
            .map(|g| g.clone().powi_scalar(2).sum().into_scalar::<f32>() as f64)
            .sum();
        sq.sqrt()
    }

    /// `clip_grad_norm_(max_norm)`: returns the norm before clipping.
    pub fn clip_global_norm(&mut self, max_norm: f64) -> f64 {
        let norm = self.global_norm();
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            for g in self.sums.values_mut() {
                *g = g.clone().mul_scalar(coef);
            }
        }
        norm
    }

    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    pub fn clear(&mut self) {
        self.sums.clear();
    }
}

/// AdamW state: the step count and the moments of each named parameter.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub config: AdamWConfig,
    /// Optimizer steps taken.
    pub step: u64,
    pub exp_avg: BTreeMap<String, Tensor<1>>,
    pub exp_avg_sq: BTreeMap<String, Tensor<1>>,
}

struct Update<'a> {
    prefix: &'a str,
    paths: KeyPath,
    grads: &'a GradAccumulator,
    lr: f64,
    opt: &'a mut AdamW,
}

impl ModuleMapper for Update<'_> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.paths.enter(name, container);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.paths.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.paths.name(self.prefix);
        let Some(g) = self.grads.sums.get(&name) else {
            return param;
        };
        let (lr, c, t) = (self.lr, self.opt.config, self.opt.step as i32);
        let m = match self.opt.exp_avg.remove(&name) {
            Some(m) => m.mul_scalar(c.beta1) + g.clone().mul_scalar(1.0 - c.beta1),
            None => g.clone().mul_scalar(1.0 - c.beta1),
        };
        let v = match self.opt.exp_avg_sq.remove(&name) {
            Some(v) => v.mul_scalar(c.beta2) + g.clone().powi_scalar(2).mul_scalar(1.0 - c.beta2),
            None => g.clone().powi_scalar(2).mul_scalar(1.0 - c.beta2),
        };
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let step_size = lr / bc1;
        let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(c.eps);
        let delta = m.clone().div(denom).mul_scalar(step_size);
        self.opt.exp_avg_sq.insert(name.clone(), v);
        self.opt.exp_avg.insert(name, m);
        param.map(|p| {
            let tracked = p.is_autodiff();
            let shape = p.shape();
            let flat = p.without_autodiff().reshape([shape.num_elements()]);
            let flat = if c.weight_decay != 0.0 {
                flat.mul_scalar(1.0 - lr * c.weight_decay)
            } else {
                flat
            };
            let new: Tensor<D> = (flat - delta).reshape(shape);
            if tracked {
                new.autodiff().require_grad()
            } else {
                new
            }
        })
    }
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            step: 0,
            exp_avg: BTreeMap::new(),
            exp_avg_sq: BTreeMap::new(),
        }
    }

    /// Counts one optimizer step; call once before [`AdamW::apply`] on each of the
    /// step's modules.
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// Updates the parameters of `module` (named `prefix` + path) that have an
    /// accumulated gradient, at learning rate `lr`; the others are left as they are.
    pub fn apply<M: Module>(
        &mut self,
        module: M,
        prefix: &str,
        grads: &GradAccumulator,
        lr: f64,
    ) -> M {
        assert!(self.step > 0, "AdamW::begin_step before apply");
        let mut u = Update {
            prefix,
            paths: KeyPath::default(),
            grads,
            lr,
            opt: self,
        };
        module.map(&mut u)
    }
}
