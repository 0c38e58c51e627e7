//! Small building blocks shared by the model parts.

pub mod host;
pub mod lora;
pub mod norm;
pub mod proj;
pub mod rms_norm;
