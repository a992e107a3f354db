//! A stand-in for libstdc++'s C++ name demangler, in static builds only.
//!
//! OpenH264 is C++, so a static binary links libstdc++'s exception runtime. Its default
//! terminate handler demangles the type name of an uncaught exception, which pulls in
//! `__cxa_demangle`: about 40 KiB of code and tables (cp-demangle.o) that nothing else uses.
//! Defining the symbol here keeps that object out of the link. The only effect: if OpenH264's
//! C++ ever terminated on an exception (it throws none; `new` failing is the only way), the
//! message names the type in its mangled form. Dynamic builds use the system's libstdc++ and
//! keep its demangler.

use std::ffi::{c_char, c_int};

/// `__cxa_demangle` as the C++ ABI specifies it, declining every name: status -2, "not a
/// valid name under the mangling rules", which callers handle by printing the name as is.
///
/// # Safety
/// `status` is null or points to an `int`, as the ABI requires of callers.
// `pub` says what it is, a symbol other objects link against; Rust callers there are none.
#[allow(unreachable_pub)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __cxa_demangle(
    _mangled: *const c_char,
    _buffer: *mut c_char,
    _length: *mut usize,
    status: *mut c_int,
) -> *mut c_char {
    if !status.is_null() {
        // SAFETY: the caller passes a valid pointer or null (checked above).
        unsafe { *status = -2 };
    }
    std::ptr::null_mut()
}
