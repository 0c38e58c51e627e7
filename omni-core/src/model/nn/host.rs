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

/// `x += y` elementwise (the host paths' residual adds), parallel over blocks.
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    use rayon::prelude::*;
    assert_eq!(x.len(), y.len(), "residual of another shape");
    x.par_chunks_mut(1 << 15)
        .zip(y.par_chunks(1 << 15))
        .for_each(|(x, y)| x.iter_mut().zip(y).for_each(|(x, y)| *x += y));
}

thread_local! {
    /// [`with_scratch`]'s buffer, kept per thread between calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most f32 values [`with_scratch`] keeps between calls (256 MiB).
pub const SCRATCH_KEEP: usize = 64 << 20;

/// `f` on `len` f32 of scratch (contents unspecified), for the host paths'
/// intermediate buffers (the Whisper encoder's, the decoder layers'). The
/// buffer is kept per calling thread and grows to the largest `len` asked, up to
/// [`SCRATCH_KEEP`] values (Whisper large-v3: 19 M; an 8B prompt of 340 positions:
/// 15 M; the speech decoder's 1250 frames at once, the reference's way: 53 M): fresh
/// buffers of tens of megabytes cost the kernel's zeroing of their
/// pages at every call (measured: ~6 ms per 30 MB buffer). Longer requests (a
/// prompt of thousands of positions) and a nested call on the same thread (a rayon
/// worker that picks up another model's job while it waits) get a fresh buffer.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    if len > SCRATCH_KEEP {
        return f(&mut vec![0.0f32; len]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The scratch is reused (the second call sees the first one's values), a
    /// nested call gets a buffer of its own, and a request past `SCRATCH_KEEP` does
    /// not replace the kept one.
    #[test]
    fn scratch_is_reused_nested_calls_get_their_own_and_huge_ones_are_not_kept() {
        with_scratch(1000, |b| b.fill(7.0));
        with_scratch(1000, |b| {
            assert!(b.iter().all(|&v| v == 7.0), "the scratch was not reused");
            with_scratch(10, |inner| {
                inner.fill(1.0);
                assert_eq!(inner.len(), 10);
            });
            assert!(
                b.iter().all(|&v| v == 7.0),
                "a nested call wrote into the outer buffer"
            );
        });
        with_scratch(SCRATCH_KEEP + 1, |b| b[0] = 3.0);
        SCRATCH.with(|c| assert!(c.borrow().len() <= SCRATCH_KEEP));
        with_scratch(1000, |b| assert_eq!(b[0], 7.0));
    }
}
