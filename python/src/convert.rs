//! Python objects -> samples the reward crate scores, without copying their text.
//!
//! A sample dict (or one row of columns) is read field by field into a [`Sample`] whose strings
//! are *borrowed*: a [`PyText`] is the UTF-8 buffer inside the caller's `str` object (CPython
//! keeps it there for the object's lifetime; for an ASCII `str` it is the object's own data).
//! The object is kept alive by a strong reference in the batch's [`Keep`] until the workers are
//! done, so the workers read the text in place, without the GIL, and nothing is copied at all;
//! the scorer takes it as a [`SampleRef`].
//!
//! The common shapes (exact `str`, `list`, `int`, `float`) are read with a few direct C-API
//! calls; everything else (tuples, NumPy values, subclasses, bad values) goes through the general
//! readers below, with the same rules and messages. The rules match the JSON schema the command
//! line reads (DESIGN.md), so a dict and its `json.dumps` line score the same: unknown keys are
//! ignored, a number or a boolean `answer` is text, a null `answer` is an error. One leniency:
//! `None` for an optional field means "not given".

use std::os::raw::c_int;
use std::ptr::{self, NonNull};

use mixed_r1_reward::iou::Frame;
use mixed_r1_reward::sample::{AnswerRef, SampleRef};
use mixed_r1_reward::Answer;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::value::{Error as DeError, StrDeserializer};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is not a sample (and would overflow the stack on a cyclic list).
const MAX_DEPTH: usize = 64;

/// The UTF-8 text of a Python `str`, borrowed in place.
///
/// Safety: a `PyText` is only made by [`PyText::of`], whose caller guarantees that the `str`
/// stays alive (a strong reference in a [`Keep`], or in a private list the batch owns) for as
/// long as the `PyText` is read. A `str` is immutable and its UTF-8 buffer lives as long as the
/// object, so reading it from any thread, without the GIL, is then sound.
#[derive(Clone, Copy)]
pub struct PyText {
    // Never null (so an `Option<PyText>` takes no more room than a `PyText`).
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: see the type's documentation: the bytes are immutable and outlive every reader.
unsafe impl Send for PyText {}
unsafe impl Sync for PyText {}

impl PyText {
    /// The UTF-8 of `s` (an exact `str` or a subclass). `Err`: it has no UTF-8 form (lone
    /// surrogates), with Python's message.
    ///
    /// # Safety
    /// The GIL is held, `s` is a live `str`, and the caller keeps it alive while the result is
    /// read (see the type's documentation).
    pub unsafe fn of(py: Python<'_>, s: *mut ffi::PyObject) -> Result<PyText, PyErr> {
        let mut len: ffi::Py_ssize_t = 0;
        match NonNull::new(ffi::PyUnicode_AsUTF8AndSize(s, &mut len).cast_mut()) {
            Some(p) => Ok(PyText {
                ptr: p.cast(),
                len: len as usize,
            }),
            None => Err(PyErr::fetch(py)),
        }
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: CPython's UTF-8 form of a `str` is valid UTF-8, alive (type documentation).
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr.as_ptr(), self.len))
        }
    }
}

/// Strong references that keep borrowed [`PyText`]s alive until a batch's workers are done.
/// Released with the GIL ([`Keep::release`]); dropped unreleased, it takes the GIL to release.
#[derive(Default)]
pub struct Keep(Vec<NonNull<ffi::PyObject>>);

impl Keep {
    /// Takes a new strong reference to `o` (the GIL is held: a `Python` token is proof).
    pub fn hold(&mut self, _py: Python<'_>, o: *mut ffi::PyObject) {
        if let Some(o) = NonNull::new(o) {
            // SAFETY: the GIL is held and `o` is a live object.
            unsafe { ffi::Py_IncRef(o.as_ptr()) };
            self.0.push(o);
        }
    }

    /// Gives every reference back.
    pub fn release(&mut self, _py: Python<'_>) {
        for o in self.0.drain(..) {
            // SAFETY: the GIL is held; each pointer is a strong reference taken by `hold`.
            unsafe { ffi::Py_DecRef(o.as_ptr()) };
        }
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            Python::attach(|py| self.release(py));
        }
    }
}

// SAFETY: a `Keep` only hands its references back with the GIL held (`release` takes a
// `Python` token, `drop` takes the GIL).
unsafe impl Send for Keep {}

/// A gold answer: text borrowed from the caller's `str`, or read into an [`Answer`].
pub enum Gold {
    Text(PyText),
    Parsed(Answer),
}

/// `choices`: borrowed (a list of `str`), or read by the general reader.
pub enum Choices {
    None,
    Text(Vec<PyText>),
    Owned(Vec<String>),
}

/// A sample whose strings still live in the caller's Python objects.
pub struct Sample {
    pub response: Option<PyText>,
    pub answer: Option<Gold>,
    pub task: Option<PyText>,
    pub reward: Option<PyText>,
    pub choices: Choices,
    pub frame: Option<Frame>,
    pub pred_frame: Option<Frame>,
    pub image_size: Option<[f64; 2]>,
}

impl Sample {
    pub fn empty() -> Self {
        Sample {
            response: None,
            answer: None,
            task: None,
            reward: None,
            choices: Choices::None,
            frame: None,
            pred_frame: None,
            image_size: None,
        }
    }

    /// The checks serde makes when it reads a line: the required fields are there.
    pub fn check(&self, require_response: bool) -> Result<(), String> {
        if self.answer.is_none() {
            return Err("bad sample: missing field `answer`".into());
        }
        if require_response && self.response.is_none() {
            return Err("bad sample: missing field `response`".into());
        }
        Ok(())
    }

    /// Calls `f` with the sample as the scorer reads it (no copies, but of borrowed `choices`:
    /// the MCQ reward takes them as `String`s).
    pub fn with_ref<R>(&self, f: impl FnOnce(&SampleRef<'_>) -> R) -> R {
        let copied: Vec<String>;
        let choices: &[String] = match &self.choices {
            Choices::None => &[],
            Choices::Owned(v) => v,
            Choices::Text(t) => {
                copied = t.iter().map(|c| c.as_str().to_owned()).collect();
                &copied
            }
        };
        f(&SampleRef {
            task: self.task.as_ref().map(PyText::as_str),
            reward: self.reward.as_ref().map(PyText::as_str),
            answer: match &self.answer {
                Some(Gold::Text(t)) => AnswerRef::Text(t.as_str()),
                Some(Gold::Parsed(a)) => a.borrowed(),
                None => AnswerRef::Text(""),
            },
            choices,
            frame: self.frame,
            pred_frame: self.pred_frame,
            image_size: self.image_size,
            response: self.response.as_ref().map_or("", PyText::as_str),
        })
    }
}

/// The fields of the schema a sample dict may have.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Id,
    Response,
    Answer,
    Task,
    Reward,
    Choices,
    Frame,
    PredFrame,
    ImageSize,
}

impl Field {
    const ALL: [(Field, &'static str); 9] = [
        (Field::Response, "response"),
        (Field::Answer, "answer"),
        (Field::Task, "task"),
        (Field::Id, "id"),
        (Field::Choices, "choices"),
        (Field::Frame, "frame"),
        (Field::PredFrame, "pred_frame"),
        (Field::ImageSize, "image_size"),
        (Field::Reward, "reward"),
    ];

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("", |(_, n)| n)
    }
}

fn is_type(o: *mut ffi::PyObject, t: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: `o` is a live object (every caller holds the GIL and a reference).
    unsafe { ffi::Py_TYPE(o) == t }
}

fn is_str(o: *mut ffi::PyObject) -> bool {
    // SAFETY: as above; the exact type first, a cheap pointer comparison.
    unsafe { is_type(o, &raw mut ffi::PyUnicode_Type) || ffi::PyUnicode_Check(o) != 0 }
}

fn is_none(o: *mut ffi::PyObject) -> bool {
    // SAFETY: `Py_None` is the interpreter's singleton.
    unsafe { o == ffi::Py_None() }
}

/// Asks the CPU to fetch the cache line at `p` (a Python object's header) ahead of its use. A
/// batch's objects were made long before and are mostly out of cache; fetching the next
/// samples' while reading this one overlaps those waits. Only a hint: it never faults.
#[inline(always)]
pub fn prefetch(p: *const ffi::PyObject) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Reads samples (dicts, or rows of columns) on the thread that holds the GIL.
pub struct Reader<'py> {
    py: Python<'py>,
    /// The interned key strings, in [`Field::ALL`] order: a dict written in Python source (or
    /// by most libraries) uses these very objects as keys, so a pointer comparison finds them.
    keys: [*mut ffi::PyObject; 9],
}

impl<'py> Reader<'py> {
    pub fn new(py: Python<'py>) -> Self {
        let keys = [
            intern!(py, "response").as_ptr(),
            intern!(py, "answer").as_ptr(),
            intern!(py, "task").as_ptr(),
            intern!(py, "id").as_ptr(),
            intern!(py, "choices").as_ptr(),
            intern!(py, "frame").as_ptr(),
            intern!(py, "pred_frame").as_ptr(),
            intern!(py, "image_size").as_ptr(),
            intern!(py, "reward").as_ptr(),
        ];
        Reader { py, keys }
    }

    pub fn py(&self) -> Python<'py> {
        self.py
    }

    /// The field a dict key names (None: a key the schema does not have).
    fn field(&self, key: *mut ffi::PyObject) -> Result<Option<Field>, String> {
        if let Some(i) = self.keys.iter().position(|&k| k == key) {
            return Ok(Some(Field::ALL[i].0));
        }
        // Non-string keys cannot name a field of the schema.
        if !is_str(key) {
            return Ok(None);
        }
        // SAFETY: the GIL is held and the dict holds `key`; the text is only read right here.
        match unsafe { PyText::of(self.py, key) } {
            Ok(t) => Ok(Field::from_name(t.as_str())),
            Err(e) => Err(format!("bad sample: {e}")),
        }
    }

    /// Reads one sample dict into `sample`; returns its `id` (not None), borrowed from the dict
    /// and held by `keep`. On a bad field, `Err` says why (the id is then looked up again by
    /// [`Reader::id_of`]).
    ///
    /// # Safety
    /// `d` is a live dict (or subclass) and the GIL is held.
    pub unsafe fn dict(
        &self,
        d: *mut ffi::PyObject,
        sample: &mut Sample,
        keep: &mut Keep,
        require_response: bool,
    ) -> Result<*mut ffi::PyObject, String> {
        let mut id = ptr::null_mut();
        let mut pos: ffi::Py_ssize_t = 0;
        let (mut key, mut value) = (ptr::null_mut(), ptr::null_mut());
        while ffi::PyDict_Next(d, &mut pos, &mut key, &mut value) != 0 {
            let Some(field) = self.field(key)? else {
                continue;
            };
            if field == Field::Id {
                if !is_none(value) {
                    keep.hold(self.py, value);
                    id = value;
                }
                continue;
            }
            // The value is borrowed from the dict, which the general readers may call into
            // Python code (`tolist()`) that could change it: hold it first.
            self.set(sample, field, value, keep, false)?;
        }
        sample.check(require_response)?;
        Ok(id)
    }

    /// Prefetches the values of a sample dict that will be read soon (see [`prefetch`]).
    ///
    /// # Safety
    /// `d` is a live object and the GIL is held.
    pub unsafe fn prefetch_dict(&self, d: *mut ffi::PyObject) {
        if !is_type(d, &raw mut ffi::PyDict_Type) {
            return;
        }
        let mut pos: ffi::Py_ssize_t = 0;
        let (mut key, mut value) = (ptr::null_mut(), ptr::null_mut());
        while ffi::PyDict_Next(d, &mut pos, &mut key, &mut value) != 0 {
            prefetch(value);
        }
    }

    /// The `id` entry of a dict (None included), held by `keep`; null when there is none.
    ///
    /// # Safety
    /// `d` is a live dict (or subclass) and the GIL is held.
    pub unsafe fn id_of(&self, d: *mut ffi::PyObject, keep: &mut Keep) -> *mut ffi::PyObject {
        let id = ffi::PyDict_GetItem(d, self.keys[3]);
        keep.hold(self.py, id);
        id
    }

    /// Sets one field of `sample` from a Python value. `None` for an optional field means "not
    /// given". `kept`: `value` is already kept alive for the batch (an item of a private list);
    /// otherwise the strings borrowed from it are held by `keep`.
    ///
    /// # Safety
    /// `value` is a live object and the GIL is held.
    pub unsafe fn set(
        &self,
        sample: &mut Sample,
        field: Field,
        value: *mut ffi::PyObject,
        keep: &mut Keep,
        kept: bool,
    ) -> Result<(), String> {
        let name = field.name();
        match field {
            Field::Id => {}
            Field::Response => sample.response = Some(self.text(value, name, keep, kept)?),
            Field::Answer => {
                sample.answer = Some(if is_str(value) {
                    Gold::Text(self.text(value, name, keep, kept)?)
                } else {
                    Gold::Parsed(answer_from_py(&self.bound(value))?)
                })
            }
            Field::Task => sample.task = self.opt_text(value, name, keep, kept)?,
            Field::Reward => sample.reward = self.opt_text(value, name, keep, kept)?,
            Field::Frame => sample.frame = self.opt_frame(value, name)?,
            Field::PredFrame => sample.pred_frame = self.opt_frame(value, name)?,
            Field::Choices if !is_none(value) => {
                sample.choices = match self.str_list(value, keep) {
                    Some(texts) => Choices::Text(texts),
                    None => Choices::Owned(from_value(to_value(&self.bound(value))?, name)?),
                }
            }
            Field::ImageSize if !is_none(value) => {
                sample.image_size = Some(match number_pair(value) {
                    Some(size) => size,
                    None => image_size(&self.bound(value))?,
                })
            }
            Field::Choices | Field::ImageSize => {}
        }
        Ok(())
    }

    fn bound(&self, o: *mut ffi::PyObject) -> Bound<'py, PyAny> {
        // SAFETY: callers pass a live object with the GIL held; this takes a new reference.
        unsafe { Bound::from_borrowed_ptr(self.py, o) }
    }

    /// A required string field, borrowed.
    unsafe fn text(
        &self,
        v: *mut ffi::PyObject,
        field: &str,
        keep: &mut Keep,
        kept: bool,
    ) -> Result<PyText, String> {
        if !is_str(v) {
            return Err(format!(
                "bad sample: `{field}` must be a string, got {}",
                type_name(&self.bound(v))
            ));
        }
        let t = PyText::of(self.py, v).map_err(|e| format!("bad sample: `{field}`: {e}"))?;
        if !kept {
            keep.hold(self.py, v);
        }
        Ok(t)
    }

    unsafe fn opt_text(
        &self,
        v: *mut ffi::PyObject,
        field: &str,
        keep: &mut Keep,
        kept: bool,
    ) -> Result<Option<PyText>, String> {
        if is_none(v) {
            return Ok(None);
        }
        self.text(v, field, keep, kept).map(Some)
    }

    /// A frame name, read in place (nothing to keep: the result is a `Frame`).
    unsafe fn opt_frame(
        &self,
        v: *mut ffi::PyObject,
        field: &str,
    ) -> Result<Option<Frame>, String> {
        if is_none(v) {
            return Ok(None);
        }
        let mut scratch = Keep::default();
        let name = self.text(v, field, &mut scratch, true)?;
        Frame::deserialize(StrDeserializer::<DeError>::new(name.as_str()))
            .map(Some)
            .map_err(|e| format!("bad sample: `{field}`: {e}"))
    }

    /// An exact list whose items are all `str`: their text, each item held by `keep` (the list
    /// is the caller's and may change while the workers read). None: any other value.
    unsafe fn str_list(&self, v: *mut ffi::PyObject, keep: &mut Keep) -> Option<Vec<PyText>> {
        if !is_type(v, &raw mut ffi::PyList_Type) {
            return None;
        }
        let n = ffi::PyList_Size(v);
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for i in 0..n {
            let item = ffi::PyList_GetItem(v, i);
            if item.is_null() || !is_type(item, &raw mut ffi::PyUnicode_Type) {
                ffi::PyErr_Clear();
                return None;
            }
            match PyText::of(self.py, item) {
                Ok(t) => out.push(t),
                Err(_) => return None, // the general reader reports it
            }
        }
        // Held only once all of them read: an early `None` above holds nothing.
        for i in 0..n {
            keep.hold(self.py, ffi::PyList_GetItem(v, i));
        }
        Some(out)
    }
}

/// `[width, height]` as an exact list or tuple of two exact `int`s or `float`s (None: any other
/// value, for the general reader).
unsafe fn number_pair(v: *mut ffi::PyObject) -> Option<[f64; 2]> {
    let item = |i: ffi::Py_ssize_t| -> *mut ffi::PyObject {
        if is_type(v, &raw mut ffi::PyList_Type) {
            ffi::PyList_GetItem(v, i)
        } else {
            ffi::PyTuple_GetItem(v, i)
        }
    };
    let len = if is_type(v, &raw mut ffi::PyList_Type) {
        ffi::PyList_Size(v)
    } else if is_type(v, &raw mut ffi::PyTuple_Type) {
        ffi::PyTuple_Size(v)
    } else {
        return None;
    };
    if len != 2 {
        return None;
    }
    let num = |x: *mut ffi::PyObject| -> Option<f64> {
        if is_type(x, &raw mut ffi::PyFloat_Type) {
            return Some(ffi::PyFloat_AsDouble(x));
        }
        if is_type(x, &raw mut ffi::PyLong_Type) {
            let f = ffi::PyLong_AsDouble(x);
            if f == -1.0 && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            return Some(f);
        }
        None
    };
    Some([num(item(0))?, num(item(1))?])
}

/// `[width, height]`: two numbers in a list or tuple, or any sequence `to_value` understands (a
/// NumPy array).
fn image_size(v: &Bound<'_, PyAny>) -> Result<[f64; 2], String> {
    let pair = |a: Bound<'_, PyAny>, b: Bound<'_, PyAny>| -> Option<[f64; 2]> {
        let num = |x: &Bound<'_, PyAny>| {
            (x.is_instance_of::<PyFloat>()
                || (x.is_instance_of::<PyInt>() && !x.is_instance_of::<PyBool>()))
            .then(|| x.extract::<f64>().ok())
            .flatten()
        };
        Some([num(&a)?, num(&b)?])
    };
    let direct = if let Ok(l) = v.cast::<PyList>() {
        (l.len() == 2)
            .then(|| pair(l.get_item(0).ok()?, l.get_item(1).ok()?))
            .flatten()
    } else if let Ok(t) = v.cast::<PyTuple>() {
        (t.len() == 2)
            .then(|| pair(t.get_item(0).ok()?, t.get_item(1).ok()?))
            .flatten()
    } else {
        None
    };
    match direct {
        Some(size) => Ok(size),
        None => from_value(to_value(v)?, "image_size"),
    }
}

pub fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn from_value<T: serde::de::DeserializeOwned>(v: Value, field: &str) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("bad sample: `{field}`: {e}"))
}

/// A gold answer that is not a `str`, read as serde reads it from JSON (see [`Answer`]'s
/// `Deserialize`).
fn answer_from_py(v: &Bound<'_, PyAny>) -> Result<Answer, String> {
    Ok(match to_value(v)? {
        Value::String(s) => Answer::Text(s),
        Value::Number(n) => Answer::Text(n.to_string()),
        Value::Bool(b) => Answer::Text(if b { "yes" } else { "no" }.into()),
        Value::Null => return Err("bad sample: `answer` is null".into()),
        other => Answer::Json(other),
    })
}

/// Any JSON-like Python value as a [`Value`]: None, bool, int, float, str, list, tuple, dict,
/// and anything with a `tolist()` (NumPy arrays and scalars, which is what verl's Parquet rows
/// hold for list columns).
pub fn to_value(v: &Bound<'_, PyAny>) -> Result<Value, String> {
    to_value_at(v, 0)
}

/// Exact `int`s, `float`s and lists of them (gold boxes), read with direct calls; None for
/// anything else, which [`to_value_at`] reads.
fn fast_value(v: *mut ffi::PyObject, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    // SAFETY: `v` is alive (held by its container, which the caller holds) and the GIL is held.
    unsafe {
        if is_type(v, &raw mut ffi::PyLong_Type) {
            let mut overflow: c_int = 0;
            let n = ffi::PyLong_AsLongLongAndOverflow(v, &mut overflow);
            if overflow != 0 || (n == -1 && !ffi::PyErr_Occurred().is_null()) {
                ffi::PyErr_Clear();
                return None;
            }
            return Some(Value::Number(n.into()));
        }
        if is_type(v, &raw mut ffi::PyFloat_Type) {
            let f = ffi::PyFloat_AsDouble(v);
            return Some(Number::from_f64(f).map_or(Value::Null, Value::Number));
        }
        if is_type(v, &raw mut ffi::PyList_Type) {
            let n = ffi::PyList_Size(v);
            let mut out = Vec::with_capacity(n.max(0) as usize);
            for i in 0..n {
                let item = ffi::PyList_GetItem(v, i);
                if item.is_null() {
                    ffi::PyErr_Clear();
                    return None;
                }
                out.push(fast_value(item, depth + 1)?);
            }
            return Some(Value::Array(out));
        }
    }
    None
}

fn to_value_at(v: &Bound<'_, PyAny>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("bad sample: value nested too deeply".into());
    }
    if let Some(fast) = fast_value(v.as_ptr(), depth) {
        return Ok(fast);
    }
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return s
            .to_cow()
            .map(|c| Value::String(c.into_owned()))
            .map_err(|e| format!("bad sample: {e}"));
    }
    // bool before int: Python's bool is a subclass of int.
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        if let Ok(n) = i.extract::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        if let Ok(n) = i.extract::<u64>() {
            return Ok(Value::Number(n.into()));
        }
        // Beyond 64 bits: a float, as serde_json reads such a number from JSON text.
        let f: f64 = i.extract().map_err(|e| format!("bad sample: {e}"))?;
        return Ok(Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Number::from_f64(f.value()).map_or(Value::Null, Value::Number));
    }
    if let Ok(list) = v.cast::<PyList>() {
        return list
            .iter()
            .map(|x| to_value_at(&x, depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return t
            .iter()
            .map(|x| to_value_at(&x, depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, x) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_cow().map_err(|e| e.to_string())?.into_owned(),
                Err(_) => k
                    .str()
                    .map_err(|e| e.to_string())?
                    .to_cow()
                    .map_err(|e| e.to_string())?
                    .into_owned(),
            };
            map.insert(key, to_value_at(&x, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(tolist) = v.getattr(pyo3::intern!(v.py(), "tolist")) {
        if let Ok(plain) = tolist.call0() {
            // `tolist()` of a NumPy value gives plain Python objects; never the same object.
            if !plain.is(v) {
                return to_value_at(&plain, depth + 1);
            }
        }
    }
    Err(format!(
        "bad sample: cannot read a value of type {} (expected str, number, bool, list, dict or None)",
        type_name(v)
    ))
}

/// A [`Value`] as a plain Python object.
pub fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let out = PyList::empty(py);
            for x in items {
                out.append(value_to_py(py, x)?)?;
            }
            out.into_any()
        }
        Value::Object(map) => {
            let out = PyDict::new(py);
            for (k, x) in map {
                out.set_item(k, value_to_py(py, x)?)?;
            }
            out.into_any()
        }
    })
}
