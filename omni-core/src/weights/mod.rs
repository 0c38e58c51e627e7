//! Checkpoint reading: safetensors (single file or sharded with an index) and
//! PyTorch pickles (`.pt`, fairseq `g_*`), read lazily tensor by tensor and
//! cast to the run dtype at load.
//!
//! Every failure names the file and the key. Files are checked at open time
//! (a truncated safetensors shard or a shard missing from the index is reported
//! before any tensor is read).

mod convert;
mod safetensors;
mod store;

pub use convert::RunDType;
pub use store::{StoredDType, TensorInfo, WeightStore};
