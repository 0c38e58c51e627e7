//! Checked reads of C arguments: pointers, strings, sample buffers, sized structs.

use std::ffi::{c_char, CStr};
use std::path::PathBuf;

use crate::error::{FfiError, FfiResult};

/// Most samples one push may carry (2^28: 1 GiB of f32, ~4.6 h at 16 kHz).
/// Longer input is pushed in pieces; a bigger `n` is an error, so a garbage
/// count is refused before anything is read.
pub(crate) const MAX_PUSH_SAMPLES: usize = 1 << 28;

/// `&*p`, or `Null(name)`.
///
/// Safety: `p` is NULL or points to a live `T` that stays valid (and is not mutably
/// aliased) for `'a`.
pub(crate) unsafe fn obj<'a, T>(p: *const T, name: &'static str) -> FfiResult<&'a T> {
    // SAFETY: per this function's contract, a non-NULL `p` is a live `T`;
    // `as_ref` handles NULL.
    unsafe { p.as_ref() }.ok_or(FfiError::Null(name))
}

/// An out-parameter `T**`: checked for NULL and set to NULL at once, so every
/// error path leaves `*out == NULL`.
pub(crate) struct OutPtr<T>(*mut *mut T);

impl<T> OutPtr<T> {
    /// Safety: `p` is NULL or valid for writing one pointer.
    pub(crate) unsafe fn new(p: *mut *mut T, name: &'static str) -> FfiResult<Self> {
        if p.is_null() {
            return Err(FfiError::Null(name));
        }
        // SAFETY: non-NULL, and valid for writes per this function's contract.
        unsafe { p.write(std::ptr::null_mut()) };
        Ok(OutPtr(p))
    }

    pub(crate) fn set(self, v: *mut T) {
        // SAFETY: checked non-NULL and writable when `self` was made (`new`'s contract).
        unsafe { self.0.write(v) };
    }
}

/// A writable scalar out-parameter.
///
/// Safety: `p` is NULL or valid for writing one `T`.
pub(crate) unsafe fn write_out<T>(p: *mut T, name: &'static str, v: T) -> FfiResult<()> {
    if p.is_null() {
        return Err(FfiError::Null(name));
    }
    // SAFETY: non-NULL, and valid for writes per this function's contract.
    unsafe { p.write(v) };
    Ok(())
}

/// A NUL-terminated UTF-8 string, `None` for NULL.
///
/// Safety: `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn opt_str<'a>(
    p: *const c_char,
    name: &'static str,
) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map(Some)
        .map_err(|_| FfiError::Invalid(format!("`{name}` is not valid UTF-8")))
}

/// A file-system path from a NUL-terminated string, `None` for NULL (bytes
/// taken as they are on Unix, UTF-8 elsewhere).
///
/// Safety: As [`opt_str`].
pub(crate) unsafe fn opt_path(p: *const c_char, name: &'static str) -> FfiResult<Option<PathBuf>> {
    if p.is_null() {
        return Ok(None);
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        // Bytes need no UTF-8 check on Unix.
        let _ = name;
        // SAFETY: non-NULL and NUL-terminated per this function's contract.
        let c = unsafe { CStr::from_ptr(p) };
        Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(
            c.to_bytes(),
        ))))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: forwarded contract.
        Ok(unsafe { opt_str(p, name) }?.map(PathBuf::from))
    }
}

/// A required path.
///
/// Safety: As [`opt_str`].
pub(crate) unsafe fn path(p: *const c_char, name: &'static str) -> FfiResult<PathBuf> {
    // SAFETY: forwarded contract.
    unsafe { opt_path(p, name) }?.ok_or(FfiError::Null(name))
}

/// `n` samples at `p`. `n == 0` is an empty slice whatever `p` is; otherwise
/// `p` must be non-NULL and aligned, and `n` at most [`MAX_PUSH_SAMPLES`].
///
/// Safety: When `p` is non-NULL and `n` passes the checks, `p` points to `n`
/// initialised `T`s that stay valid and unmodified for `'a`.
pub(crate) unsafe fn sample_slice<'a, T>(
    p: *const T,
    n: usize,
    name: &'static str,
) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::Null(name));
    }
    if n > MAX_PUSH_SAMPLES {
        return Err(FfiError::Invalid(format!(
            "{n} samples in one push; at most {MAX_PUSH_SAMPLES} (push long audio in pieces)"
        )));
    }
    if !p.is_aligned() {
        return Err(FfiError::Invalid(format!(
            "`{name}` is not aligned for its sample type"
        )));
    }
    // SAFETY: non-NULL and aligned (checked), `n * size_of::<T>()` ≤ 2^30 <
    // isize::MAX (checked), and the caller guarantees `n` readable samples.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Options structs: plain C data (integers, floats, raw pointers: every bit
/// pattern valid) whose first field is `size_t struct_size`.
///
/// ABI versions only append fields. `VERSION_ENDS` lists, per ABI version
/// that changed the struct, the byte offset where its last field ends
/// (ascending; the last one is this library's). A caller built against an
/// older header passes a smaller `struct_size`: the fields it knows are read,
/// the rest keep their defaults. Bytes past a version's last field (trailing
/// padding in an older struct) are never read as a newer field.
///
/// Safety: Implementors are `#[repr(C)]`, start with a `usize` `struct_size`, and
/// hold no type with invalid bit patterns (no `bool`, enum or reference);
/// every entry of `VERSION_ENDS` is a field end within `size_of::<Self>()`.
pub(crate) unsafe trait SizedStruct: Copy {
    const NAME: &'static str;
    const VERSION_ENDS: &'static [usize];
}

/// How many leading bytes of the caller's struct to use: the end of the
/// newest ABI version that fits in the `struct_size` the caller set.
///
/// Safety: `p` is NULL or points to an aligned, readable `size_t`.
unsafe fn known_prefix<T: SizedStruct>(p: *const T) -> FfiResult<(usize, usize)> {
    if p.is_null() {
        return Err(FfiError::Null(T::NAME));
    }
    // SAFETY: non-NULL, aligned and readable (contract); `struct_size` is the
    // first field of every `SizedStruct`.
    let size = unsafe { p.cast::<usize>().read() };
    let full = std::mem::size_of::<T>();
    let n = if size >= full {
        full
    } else {
        T::VERSION_ENDS
            .iter()
            .copied()
            .filter(|&e| e <= size)
            .max()
            .unwrap_or(0)
    };
    if n == 0 {
        let need = T::VERSION_ENDS.first().copied().unwrap_or(full);
        return Err(FfiError::StructSize {
            what: T::NAME,
            got: size,
            need,
        });
    }
    Ok((size, n))
}

/// Reads an options struct whose caller set `struct_size`: the fields its
/// ABI version has; the others are taken from `defaults` (bytes past this
/// library's struct, from a newer header, are not read).
///
/// Safety: `p` is NULL or points to at least `min((*p).struct_size, size_of::<T>())`
/// readable, aligned bytes.
pub(crate) unsafe fn read_sized<T: SizedStruct>(p: *const T, defaults: T) -> FfiResult<T> {
    // SAFETY: forwarded contract.
    let (_, n) = unsafe { known_prefix(p) }?;
    let mut out = defaults;
    // SAFETY: the caller declared at least `n` readable bytes (n ≤ its
    // struct_size, checked), `out` has size_of::<T>() ≥ n writable bytes, the
    // two do not overlap, and any bit pattern is a valid `T` (`SizedStruct`).
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), std::ptr::addr_of_mut!(out).cast::<u8>(), n)
    };
    Ok(out)
}

/// Writes `value` into an options struct whose caller set `struct_size`
/// (the fields of the caller's ABI version), keeping the caller's `struct_size`.
///
/// Safety: As [`read_sized`], and the bytes are writable.
pub(crate) unsafe fn write_sized<T: SizedStruct>(p: *mut T, value: T) -> FfiResult<()> {
    // SAFETY: forwarded contract.
    let (size, n) = unsafe { known_prefix(p.cast_const()) }?;
    // SAFETY: `n` ≤ the caller's writable struct_size (checked), `value` is
    // a local of size_of::<T>() ≥ n bytes; then the first field, a `usize`,
    // gets the caller's size back.
    unsafe {
        std::ptr::copy_nonoverlapping(std::ptr::addr_of!(value).cast::<u8>(), p.cast::<u8>(), n);
        p.cast::<usize>().write(size);
    }
    Ok(())
}
