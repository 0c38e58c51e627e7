//! Parameters and gradients by their published names (HF / PyTorch layout), for
//! tests against the reference, optimizers and checkpoints.
//!
//! burn's field names are the reference's module names (`layers.0.self_attn.q_proj.weight`),
//! so a module's key is `prefix` + its burn path (the LLM's prefix is `model.`;
//! see [`KeyPath::name`] for its two exceptions). Linear weights are stored
//! `[in, out]` in omni (see `WeightStore::linear`) and are transposed back to
//! PyTorch's `[out, in]` here.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Gradients, Tensor};

/// One host tensor in PyTorch layout.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The dotted path of the parameter being visited, with its containers' types.
#[derive(Debug, Default)]
pub(crate) struct KeyPath {
    path: Vec<String>,
    parents: Vec<String>,
}

impl KeyPath {
    pub(crate) fn enter(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.parents.push(container_type.to_string());
    }

    pub(crate) fn exit(&mut self) {
        self.path.pop();
        self.parents.pop();
    }

    /// The published key: `prefix` + path, except for the two Llama tensors HF
    /// names differently: `embed_tokens` is an `nn.Embedding` (`….embed_tokens.weight`)
    /// and `lm_head` sits beside `model.` (`lm_head.weight`, no prefix).
    pub(crate) fn name(&self, prefix: &str) -> String {
        let in_llama = self.parents.first().map(String::as_str) == Some("Struct:Llama");
        // A `Proj` (nn/proj.rs) holds its burn layer as `dense`: not part of the published key.
        let path: Vec<&str> = self
            .path
            .iter()
            .zip(&self.parents)
            .filter(|(p, c)| !(p.as_str() == "dense" && c.as_str() == "Struct:Proj"))
            .map(|(p, _)| p.as_str())
            .collect();
        match path.first().copied() {
            Some("embed_tokens") if in_llama && path.len() == 1 => {
                format!("{prefix}embed_tokens.weight")
            }
            Some("lm_head") if in_llama => path.join("."),
            _ => format!("{prefix}{}", path.join(".")),
        }
    }

    /// Whether the parameter is a `Linear` weight (stored `[in, out]` in omni).
    pub(crate) fn is_linear_weight(&self, rank: usize) -> bool {
        rank == 2
            && self.path.last().map(String::as_str) == Some("weight")
            && self.parents.last().map(String::as_str) == Some("Struct:Linear")
    }
}

struct Collect<'a> {
    prefix: &'a str,
    key: KeyPath,
    grads: Option<&'a Gradients>,
    out: Vec<NamedTensor>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.key.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.key.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        let t = match self.grads {
            None => value,
            Some(g) => match value.grad(g) {
                Some(t) => t,
                None => return,
            },
        };
        let t = if self.key.is_linear_weight(D) {
            t.swap_dims(0, 1)
        } else {
            t
        };
        let shape = t.dims().to_vec();
        let data = t
            .cast(DType::F32)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.out.push(NamedTensor {
            name: self.key.name(self.prefix),
            shape,
            data,
        });
    }
}

/// Every float parameter of `module`, named `prefix` + path, in PyTorch layout.
pub fn named_values<M: Module>(module: &M, prefix: &str) -> Vec<NamedTensor> {
    let mut v = Collect {
        prefix,
        key: KeyPath::default(),
        grads: None,
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

/// The gradient of every parameter of `module` that has one in `grads`
/// (frozen parameters have none), named and laid out as [`named_values`].
pub fn named_grads<M: Module>(module: &M, prefix: &str, grads: &Gradients) -> Vec<NamedTensor> {
    let mut v = Collect {
        prefix,
        key: KeyPath::default(),
        grads: Some(grads),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}
