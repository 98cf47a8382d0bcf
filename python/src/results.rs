//! The Python side of results, built with the GIL held: result dicts, columns and floats, with
//! shared objects for the common values.

use mixed_r1_reward::router::TASKS;
use mixed_r1_reward::ScoreResult;
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString};

use crate::convert::value_to_py;

/// What a batch returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// One result dict per sample.
    Dicts,
    /// A dict of five lists (`score_columns`' default).
    Columns,
    /// One float per sample: the reward (None when skipped or unscorable).
    Floats,
}

impl Output {
    pub(crate) fn parse(value: Option<&str>, default: Output, what: &str) -> PyResult<Output> {
        Ok(match value {
            None => default,
            Some("dicts") if default == Output::Dicts => Output::Dicts,
            Some("columns") if default == Output::Columns => Output::Columns,
            Some("floats") => Output::Floats,
            Some(other) => {
                let expected = if default == Output::Dicts {
                    "'dicts' or 'floats'"
                } else {
                    "'columns' or 'floats'"
                };
                return Err(PyValueError::new_err(format!(
                    "{what}: output must be {expected}, not {other:?}"
                )));
            }
        })
    }
}

/// An owned reference from a C-API call, or the error it raised.
pub(crate) fn owned(py: Python<'_>, p: *mut ffi::PyObject) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: `p` is a new reference or null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, p) }
}

/// Builds the Python side of results, with the GIL held: result fields as shared objects. The
/// common reward values (0, 0.5, 1, 1.5...) are created once per batch: Python floats are
/// immutable, and most rewards are one of them. Task names are interned once per interpreter.
pub(crate) struct Results<'py> {
    py: Python<'py>,
    floats: Vec<(u64, Bound<'py, PyAny>)>,
    none: Bound<'py, PyAny>,
    tasks: [Bound<'py, PyAny>; 7],
    keys: [Bound<'py, PyAny>; 6],
    /// `{reward, format, accuracy, task, error}`, all None, without and with `id` first.
    templates: &'py [Py<PyDict>; 2],
}

/// The result dict templates, made once per interpreter (never changed, never handed out).
static TEMPLATES: PyOnceLock<[Py<PyDict>; 2]> = PyOnceLock::new();

impl<'py> Results<'py> {
    pub(crate) fn new(py: Python<'py>) -> PyResult<Self> {
        let s = |k: &Bound<'py, PyString>| k.clone().into_any();
        Ok(Results {
            py,
            floats: Vec::with_capacity(8),
            none: py.None().into_bound(py),
            tasks: [
                s(intern!(py, "yes_no")),
                s(intern!(py, "mcq")),
                s(intern!(py, "numeric")),
                s(intern!(py, "math")),
                s(intern!(py, "chart")),
                s(intern!(py, "grounding")),
                s(intern!(py, "open_ended")),
            ],
            keys: [
                s(intern!(py, "id")),
                s(intern!(py, "reward")),
                s(intern!(py, "format")),
                s(intern!(py, "accuracy")),
                s(intern!(py, "task")),
                s(intern!(py, "error")),
            ],
            templates: TEMPLATES.get_or_try_init(py, || -> PyResult<_> {
                let keys = ["id", "reward", "format", "accuracy", "task", "error"];
                let template = |keys: &[&str]| -> PyResult<Py<PyDict>> {
                    let d = PyDict::new(py);
                    for k in keys {
                        d.set_item(PyString::intern(py, k), py.None())?;
                    }
                    Ok(d.unbind())
                };
                Ok([template(&keys[1..])?, template(&keys)?])
            })?,
        })
    }

    pub(crate) fn float(&mut self, v: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let Some(v) = v else {
            return Ok(self.none.clone());
        };
        let bits = v.to_bits();
        if let Some((_, f)) = self.floats.iter().find(|(b, _)| *b == bits) {
            return Ok(f.clone());
        }
        // SAFETY: the GIL is held.
        let f = owned(self.py, unsafe { ffi::PyFloat_FromDouble(v) })?;
        if self.floats.len() < 8 {
            self.floats.push((bits, f.clone()));
        }
        Ok(f)
    }

    pub(crate) fn task(&self, r: &ScoreResult) -> Bound<'py, PyAny> {
        match r.task.as_deref() {
            None => self.none.clone(),
            Some(t) => match TASKS.iter().position(|k| *k == t) {
                Some(i) => self.tasks[i].clone(),
                None => PyString::new(self.py, t).into_any(),
            },
        }
    }

    pub(crate) fn error(&self, r: &ScoreResult) -> Bound<'py, PyAny> {
        match &r.error {
            Some(e) => PyString::new(self.py, e).into_any(),
            None => self.none.clone(),
        }
    }

    /// A result as the DESIGN.md object: `id` (when the sample had one: the caller's own
    /// object, else the JSON line's), `reward`, `format`, `accuracy`, `task`, `error`. Made as
    /// a copy of a template with every key (a copy of a small dict is one block copy), whose
    /// None values are then replaced where the result has a value.
    pub(crate) fn dict(
        &mut self,
        r: &ScoreResult,
        id: *mut ffi::PyObject,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let id = if !id.is_null() {
            // SAFETY: `id` is held by the batch's `Keep`.
            Some(unsafe { Bound::from_borrowed_ptr(py, id) })
        } else if let Some(v) = &r.id {
            Some(value_to_py(py, v)?)
        } else {
            None
        };
        let template = &self.templates[usize::from(id.is_some())];
        // SAFETY: the GIL is held; the template is a live dict.
        let d = owned(py, unsafe { ffi::PyDict_Copy(template.as_ptr()) })?;
        let set = |k: &Bound<'py, PyAny>, v: &Bound<'py, PyAny>| -> PyResult<()> {
            // SAFETY: `d` is our new dict; keys and values are live (it takes references).
            if unsafe { ffi::PyDict_SetItem(d.as_ptr(), k.as_ptr(), v.as_ptr()) } < 0 {
                return Err(PyErr::fetch(py));
            }
            Ok(())
        };
        if let Some(id) = &id {
            set(&self.keys[0], id)?;
        }
        for (k, v) in [(1, r.reward), (2, r.format), (3, r.accuracy)] {
            if v.is_some() {
                let v = self.float(v)?;
                set(&self.keys[k], &v)?;
            }
        }
        if r.task.is_some() {
            set(&self.keys[4], &self.task(r))?;
        }
        if r.error.is_some() {
            set(&self.keys[5], &self.error(r))?;
        }
        Ok(d)
    }
}

/// A list of `values`, made in one go once the batch is done. (A list made first and filled as
/// results come in would be traversed, every item of it, by each young-generation collection
/// that allocating the result dicts triggers.)
pub(crate) fn list_of<'py>(
    py: Python<'py>,
    values: Vec<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    // SAFETY: the GIL is held; the new list's slots are all filled before it is handed out.
    let list = owned(py, unsafe {
        ffi::PyList_New(values.len() as ffi::Py_ssize_t)
    })?
    .cast_into::<PyList>()?;
    for (i, v) in values.into_iter().enumerate() {
        // SAFETY: `i` is in range and the slot empty; `PyList_SetItem` takes the reference.
        unsafe { ffi::PyList_SetItem(list.as_ptr(), i as ffi::Py_ssize_t, v.into_ptr()) };
    }
    Ok(list)
}
