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
/// # Safety
/// `p` is NULL or points to a live `T` that stays valid (and is not mutably
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
    /// # Safety
    /// `p` is NULL or valid for writing one pointer.
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
/// # Safety
/// `p` is NULL or valid for writing one `T`.
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
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
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
/// # Safety
/// As [`opt_str`].
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
/// # Safety
/// As [`opt_str`].
pub(crate) unsafe fn path(p: *const c_char, name: &'static str) -> FfiResult<PathBuf> {
    // SAFETY: forwarded contract.
    unsafe { opt_path(p, name) }?.ok_or(FfiError::Null(name))
}

/// `n` samples at `p`. `n == 0` is an empty slice whatever `p` is; otherwise
/// `p` must be non-NULL and aligned, and `n` at most [`MAX_PUSH_SAMPLES`].
///
/// # Safety
/// When `p` is non-NULL and `n` passes the checks, `p` points to `n`
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
/// # Safety
/// Implementors are `#[repr(C)]`, start with a `usize` `struct_size`, and
/// hold no type with invalid bit patterns (no `bool`, enum or reference).
pub(crate) unsafe trait SizedStruct: Copy {
    const NAME: &'static str;
}

/// The `struct_size` the caller set, checked against this library's struct.
///
/// # Safety
/// `p` is NULL or points to an aligned, readable `size_t`.
unsafe fn struct_size<T: SizedStruct>(p: *const T) -> FfiResult<usize> {
    if p.is_null() {
        return Err(FfiError::Null(T::NAME));
    }
    // SAFETY: non-NULL, aligned and readable (contract); `struct_size` is the
    // first field of every `SizedStruct`.
    let size = unsafe { p.cast::<usize>().read() };
    let need = std::mem::size_of::<T>();
    if size < need {
        return Err(FfiError::StructSize {
            what: T::NAME,
            got: size,
            need,
        });
    }
    Ok(size)
}

/// Reads an options struct whose caller set `struct_size` (bytes past this
/// library's struct, from a newer header, are not read).
///
/// # Safety
/// `p` is NULL or points to at least `min((*p).struct_size, size_of::<T>())`
/// readable, aligned bytes.
pub(crate) unsafe fn read_sized<T: SizedStruct>(p: *const T) -> FfiResult<T> {
    // SAFETY: forwarded contract.
    unsafe { struct_size(p) }?;
    // SAFETY: the caller declared at least size_of::<T>() readable bytes
    // (checked), and any bit pattern is a valid `T` (`SizedStruct`).
    Ok(unsafe { p.read() })
}

/// Writes `value` into an options struct whose caller set `struct_size`,
/// keeping the caller's `struct_size`.
///
/// # Safety
/// As [`read_sized`], and the bytes are writable.
pub(crate) unsafe fn write_sized<T: SizedStruct>(p: *mut T, value: T) -> FfiResult<()> {
    // SAFETY: forwarded contract.
    let size = unsafe { struct_size(p.cast_const()) }?;
    // SAFETY: non-NULL, aligned, at least size_of::<T>() writable bytes
    // (checked); then the first field, a `usize`, gets the caller's size back.
    unsafe {
        p.write(value);
        p.cast::<usize>().write(size);
    }
    Ok(())
}
