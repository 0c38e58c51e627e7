pub use omni_core::*;
