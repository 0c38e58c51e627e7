//! A lazy safetensors reader: the header is parsed and validated by the `safetensors`
//! crate (read alone, not the whole file), every tensor is checked to lie inside the
//! file, and one tensor's bytes are read on demand.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use safetensors::tensor::Metadata;
use safetensors::Dtype;

use super::store::{StoredDType, TensorInfo};
use crate::{Error, Result};

/// One tensor's place in a safetensors file.
#[derive(Debug, Clone)]
pub(crate) struct StEntry {
    pub info: TensorInfo,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    pub len: usize,
}

/// The parsed header of one safetensors file.
pub(crate) struct StFile {
    pub path: PathBuf,
    pub entries: HashMap<String, StEntry>,
}

/// Upper bound on a header's size (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

impl StFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        let mut f = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingFile {
                    path: path.to_path_buf(),
                    what: "safetensors checkpoint".into(),
                }
            } else {
                Error::io(path, e)
            }
        })?;
        let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut n = [0u8; 8];
        f.read_exact(&mut n).map_err(|_| {
            bad(format!(
                "file is {file_len} bytes, too short for a safetensors header"
            ))
        })?;
        let header_len = u64::from_le_bytes(n);
        if header_len > MAX_HEADER || 8 + header_len > file_len {
            return Err(bad(format!(
                "header length {header_len} does not fit in a {file_len}-byte file (truncated or not safetensors)"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
        // The `safetensors` crate parses and validates the header (dtypes, shapes,
        // contiguous data_offsets that match each shape); the data stays on disk.
        let meta: Metadata = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("bad safetensors header: {e}")))?;
        let data_start = 8 + header_len;
        let data_end = data_start + meta.data_len() as u64;
        if data_end > file_len {
            // Name the first tensor that does not fit, for the error message.
            let first_cut = meta
                .offset_keys()
                .into_iter()
                .find(|k| {
                    meta.info(k)
                        .is_some_and(|i| data_start + i.data_offsets.1 as u64 > file_len)
                })
                .unwrap_or_default();
            return Err(bad(format!(
                "truncated: tensor `{first_cut}` and the tensors after it end past the file's {file_len} bytes (the data ends at byte {data_end})"
            )));
        }
        let mut entries = HashMap::new();
        for (name, info) in meta.tensors() {
            let dtype = match info.dtype {
                Dtype::F32 => StoredDType::F32,
                Dtype::F16 => StoredDType::F16,
                Dtype::BF16 => StoredDType::BF16,
                Dtype::F64 => StoredDType::F64,
                // Non-float tensors (ids, masks) are never weights we load; keep them listed
                // so a lookup fails with a clear dtype error.
                _ => StoredDType::Unsupported,
            };
            let note = (dtype == StoredDType::Unsupported).then(|| info.dtype.to_string());
            let (b, e) = info.data_offsets;
            entries.insert(
                name,
                StEntry {
                    info: TensorInfo {
                        dtype,
                        shape: info.shape.clone(),
                        note,
                    },
                    offset: data_start + b as u64,
                    len: e - b,
                },
            );
        }
        Ok(StFile {
            path: path.to_path_buf(),
            entries,
        })
    }
}

/// Reads the bytes of one entry.
pub(crate) fn read_entry(path: &Path, e: &StEntry) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(|err| Error::io(path, err))?;
    f.seek(SeekFrom::Start(e.offset))
        .map_err(|err| Error::io(path, err))?;
    let mut buf = vec![0u8; e.len];
    f.read_exact(&mut buf).map_err(|err| Error::io(path, err))?;
    Ok(buf)
}
