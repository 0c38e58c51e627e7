//! A lazy safetensors reader: parses the header, checks that every tensor lies
//! inside the file, and reads one tensor's bytes on demand.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
        let json: serde_json::Value = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| bad("header is not a JSON object".into()))?;
        let data_start = 8 + header_len;
        let mut entries = HashMap::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                continue;
            }
            let dtype_s = v.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
            let dtype = match dtype_s {
                "F32" => StoredDType::F32,
                "F16" => StoredDType::F16,
                "BF16" => StoredDType::BF16,
                "F64" => StoredDType::F64,
                other => {
                    // Non-float tensors (ids, masks) are never weights we load; keep them listed
                    // so a lookup fails with a clear dtype error.
                    entries.insert(
                        name.clone(),
                        StEntry {
                            info: TensorInfo {
                                dtype: StoredDType::Unsupported,
                                shape: vec![],
                                note: Some(other.to_string()),
                            },
                            offset: 0,
                            len: 0,
                        },
                    );
                    continue;
                }
            };
            let shape: Vec<usize> = v
                .get("shape")
                .and_then(|s| s.as_array())
                .ok_or_else(|| bad(format!("tensor `{name}` has no shape")))?
                .iter()
                .map(|d| d.as_u64().map(|x| x as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("tensor `{name}` has a bad shape")))?;
            let offs = v
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .filter(|a| a.len() == 2)
                .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
                .ok_or_else(|| bad(format!("tensor `{name}` has bad data_offsets")))?;
            let (b, e) = offs;
            let want = shape.iter().product::<usize>() as u64 * dtype.size() as u64;
            if e < b || e - b != want {
                return Err(bad(format!(
                    "tensor `{name}`: data_offsets [{b}, {e}] do not match shape {shape:?} of {dtype_s}"
                )));
            }
            if data_start + e > file_len {
                return Err(bad(format!(
                    "truncated: tensor `{name}` ends at byte {} but the file has {file_len} bytes",
                    data_start + e
                )));
            }
            entries.insert(
                name.clone(),
                StEntry {
                    info: TensorInfo {
                        dtype,
                        shape,
                        note: None,
                    },
                    offset: data_start + b,
                    len: (e - b) as usize,
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
