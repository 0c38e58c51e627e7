//! The LLM: Llama 3.1 (GQA, llama3 RoPE scaling, RMSNorm, SwiGLU, KV cache),
//! its tokenizer and chat template, and generation; `host`: a prompt's layers on
//! host buffers (CPU backend, packed weights).

pub mod attention;
pub mod cache;
pub mod config;
pub mod generate;
pub mod host;
pub mod layer;
pub mod mlp;
pub mod model;
pub mod prompt;
pub mod rope;
pub mod sampling;
pub mod tokenizer;

pub use cache::KvCache;
pub use config::{LlamaConfig, OmniConfig};
pub use model::Llama;
