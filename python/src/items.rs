//! The batch and column arguments: read in place from the caller's list, or from a private
//! copy of any other iterable, checked for length.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::results::owned;

/// A private list of the items of `values` (any iterable): the batch's own strong references,
/// so no other thread can take them away while the workers read them.
///
/// It is taken off the garbage collector's books: it is never reachable from anything but this
/// call, so it cannot be part of a cycle, and otherwise each young-generation collection that
/// building the results triggers would visit every item of it (every sample dict, for
/// `score`), which costs more than reading them.
fn private_list<'py>(values: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    // SAFETY: the GIL is held; `PySequence_List` returns a new list or raises, and untracking a
    // list only this function has seen is sound (it is freed by reference counting).
    unsafe {
        let list = owned(values.py(), ffi::PySequence_List(values.as_ptr()))?;
        ffi::PyObject_GC_UnTrack(list.as_ptr().cast());
        Ok(list.cast_into::<PyList>()?)
    }
}

/// The items of a batch argument: read in place from the caller's list (an exact `list`), or
/// from a private copy of any other iterable. Read in place, an item is borrowed from a list
/// that other threads may change whenever the GIL is released (between chunks), so whatever a
/// sample borrows from it is held by its chunk's `Keep`, and a list that shrinks meanwhile
/// makes the batch raise. (Copying every list up front would cost one more pass over every
/// object of the batch, each a likely cache miss, for a case no trainer has.)
pub(crate) struct Items<'py> {
    list: Bound<'py, PyList>,
    /// The length when the batch started.
    len: usize,
    /// A private copy: its items stay alive, unchanged, for the whole batch.
    pub(crate) private: bool,
    name: &'static str,
}

impl<'py> Items<'py> {
    pub(crate) fn new(name: &'static str, values: &Bound<'py, PyAny>) -> PyResult<Self> {
        let (list, private) = match values.cast_exact::<PyList>() {
            Ok(list) => (list.clone(), false),
            Err(_) => (private_list(values)?, true),
        };
        Ok(Items {
            len: list.len(),
            list,
            private,
            name,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Item `i + k` (to prefetch), if there is one.
    pub(crate) fn ahead(&self, i: usize, k: usize) -> Option<*mut ffi::PyObject> {
        if i + k >= self.len {
            return None;
        }
        // SAFETY: the GIL is held; out of range (the list may have shrunk since), the error is
        // cleared.
        let p = unsafe { ffi::PyList_GetItem(self.list.as_ptr(), (i + k) as ffi::Py_ssize_t) };
        if p.is_null() {
            // SAFETY: the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(p)
    }

    /// Item `i`, borrowed: valid while the GIL is held (and while the batch lasts when
    /// `private`).
    pub(crate) fn get(&self, i: usize) -> PyResult<*mut ffi::PyObject> {
        // SAFETY: the GIL is held; an index out of range returns null with IndexError set.
        let p = unsafe { ffi::PyList_GetItem(self.list.as_ptr(), i as ffi::Py_ssize_t) };
        if p.is_null() {
            // SAFETY: the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return Err(PyRuntimeError::new_err(format!(
                "`{}` changed size while it was being scored",
                self.name
            )));
        }
        Ok(p)
    }
}

/// One column argument, checked for length (`n`; None: the first column, which sets it).
pub(crate) fn column<'py>(
    name: &'static str,
    values: Option<&Bound<'py, PyAny>>,
    n: Option<usize>,
) -> PyResult<Option<Items<'py>>> {
    let Some(values) = values.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if values.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be a list, not a string"
        )));
    }
    let items = Items::new(name, values)?;
    let n = n.unwrap_or(items.len());
    if items.len() != n {
        return Err(PyValueError::new_err(format!(
            "`{name}` has {} values for {n} responses",
            items.len()
        )));
    }
    Ok(Some(items))
}
