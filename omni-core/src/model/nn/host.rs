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
