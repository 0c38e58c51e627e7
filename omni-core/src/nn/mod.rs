//! Small building blocks shared by the model parts.

pub mod norm;
pub mod rms_norm;
