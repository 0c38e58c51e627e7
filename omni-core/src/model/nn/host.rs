//! Tensors to and from host f32 buffers, for the parts that run in `omni_kernels` on
//! the CPU backend (attention, fused activations, packed linear layers).

use burn::tensor::{DType, Device, Tensor, TensorData};

/// `x` as row-major f32 values (cast first if it is another dtype).
pub fn to_host_f32<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.cast(DType::F32)
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 tensor data")
}

/// Row-major f32 `values` of shape `dims` as a tensor on `device`, cast to `dtype`.
pub fn from_host_f32<const D: usize>(
    values: Vec<f32>,
    dims: [usize; D],
    device: &Device,
    dtype: DType,
) -> Tensor<D> {
    Tensor::<D>::from_data(TensorData::new(values, dims), (device, DType::F32)).cast(dtype)
}

thread_local! {
    /// [`with_scratch`]'s buffer, kept per thread between calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` on `len` f32 of scratch (contents unspecified), for the host paths'
/// intermediate buffers (the Whisper encoder's, the prompt's decoder layers'). The
/// buffer is kept per calling thread and grows to the largest `len` asked: fresh
/// buffers of tens of megabytes cost the kernel's zeroing of their pages at every
/// call (measured: ~6 ms per 30 MB buffer). A nested call on the same thread (a
/// rayon worker that picks up another model's job while it waits) gets a fresh
/// buffer instead.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0f32; len]),
    })
}
