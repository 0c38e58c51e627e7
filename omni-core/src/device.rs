//! Run-time device choice. The model code is device-agnostic; a device is picked
//! by a string such as `cpu`, `wgpu`, `wgpu:cpu`, `cuda:0`.

use crate::error::{clip, ECHO_CHARS};
use crate::{Error, Result};
pub use burn::tensor::Device;

/// The backends compiled into this build, in the spelling [`parse_device`] accepts.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// Parses a device string:
/// - `cpu` (or `flex`): the pure-Rust CPU backend (always available);
/// - `wgpu` (default adapter), `wgpu:cpu` (a software adapter such as lavapipe),
///   `wgpu:N` (discrete GPU N): needs the `wgpu` feature;
/// - `cuda` / `cuda:N`: needs the `cuda` feature.
///
/// Asking for a backend that was not compiled in is an error listing those that were.
/// The message echoes at most [`ECHO_CHARS`] characters of `spec`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    let (name, arg) = match spec.split_once(':') {
        Some((n, a)) => (n.to_string(), Some(a.to_string())),
        None => (spec.clone(), None),
    };
    let not_compiled = |backend: &str| {
        Error::Device {
        requested: spec.clone(),
        reason: format!(
            "the `{backend}` backend is not compiled in (build with `--features {backend}`); compiled backends: {}",
            compiled_backends().join(", ")
        ),
    }
    };
    let bad_index = |a: &str| Error::Device {
        requested: spec.clone(),
        reason: format!("`{}` is not a device index", clip(a, ECHO_CHARS)),
    };
    match name.as_str() {
        "cpu" | "flex" => {
            if arg.is_some() {
                return Err(bad_index(arg.as_deref().unwrap_or_default()));
            }
            Ok(Device::flex())
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            {
                use burn::tensor::DeviceKind;
                let kind = match arg.as_deref() {
                    None | Some("") | Some("default") => DeviceKind::DefaultDevice,
                    Some("cpu") => DeviceKind::Cpu,
                    Some(a) => DeviceKind::DiscreteGpu(a.parse().map_err(|_| bad_index(a))?),
                };
                Ok(Device::wgpu(kind))
            }
            #[cfg(not(feature = "wgpu"))]
            {
                let _ = (&arg, &bad_index);
                Err(not_compiled("wgpu"))
            }
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            {
                let idx: usize = match arg.as_deref() {
                    None | Some("") => 0,
                    Some(a) => a.parse().map_err(|_| bad_index(a))?,
                };
                Ok(Device::cuda(idx))
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = (&arg, &bad_index);
                Err(not_compiled("cuda"))
            }
        }
        other => Err(Error::Device {
            requested: spec.clone(),
            reason: format!(
                "unknown backend `{}`; compiled backends: {}",
                clip(other, ECHO_CHARS),
                compiled_backends().join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1_mib_device_string_is_refused_with_a_short_message() {
        for spec in ["x".repeat(1 << 20), format!("cpu:{}", "7".repeat(1 << 20))] {
            let err = parse_device(&spec).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Device);
            let msg = err.to_string();
            assert!(
                msg.len() < 400,
                "{} bytes: {}…",
                msg.len(),
                msg.chars().take(200).collect::<String>()
            );
            assert!(msg.contains("bytes)"), "{msg}");
        }
    }
}
