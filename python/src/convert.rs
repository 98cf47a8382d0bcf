//! Python objects <-> the reward crate's types, without a JSON round trip.
//!
//! A sample dict is read field by field into a [`RawSample`]: strings are referenced in place
//! (the UTF-8 of a `str` object), numbers read directly, and only the rare, small fields
//! (`choices`, box lists, odd `image_size` values) go through a [`serde_json::Value`]. The
//! rules match the JSON schema the command line reads (DESIGN.md), so a dict and its `json.dumps`
//! line score the same: unknown keys are ignored, a number or a boolean `answer` is text, a null
//! `answer` is an error. One leniency: `None` for an optional field means "not given".

use mixed_r1_reward::iou::Frame;
use mixed_r1_reward::{Answer, ScoringSample};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::value::{Error as DeError, StrDeserializer};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is not a sample (and would overflow the stack on a cyclic list).
const MAX_DEPTH: usize = 64;

/// A gold answer as read on the main thread: text stays in the caller's `str` until a worker
/// copies it.
pub enum RawAnswer {
    Text(PyBackedStr),
    Parsed(Answer),
}

/// A sample whose strings still live in the caller's Python objects. Reading a `str` this way
/// costs no copy on the main thread (which holds the GIL); the copies into a [`ScoringSample`]
/// are made by the workers in parallel, without the GIL ([`PyBackedStr`] keeps each object
/// alive and is `Send + Sync`: a Python `str` is immutable).
pub struct RawSample {
    pub response: Option<PyBackedStr>,
    pub answer: Option<RawAnswer>,
    pub task: Option<PyBackedStr>,
    pub reward: Option<PyBackedStr>,
    pub choices: Vec<String>,
    pub frame: Option<Frame>,
    pub pred_frame: Option<Frame>,
    pub image_size: Option<[f64; 2]>,
}

impl RawSample {
    pub fn empty() -> Self {
        RawSample {
            response: None,
            answer: None,
            task: None,
            reward: None,
            choices: Vec::new(),
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

    /// The owned sample the scorer takes (no id: results carry the caller's own id object).
    pub fn to_sample(&self) -> ScoringSample {
        let text = |s: &Option<PyBackedStr>| s.as_deref().map(str::to_owned);
        ScoringSample {
            id: None,
            source: None,
            task: text(&self.task),
            answer: match &self.answer {
                Some(RawAnswer::Text(s)) => Answer::Text(s.to_string()),
                Some(RawAnswer::Parsed(a)) => a.clone(),
                None => Answer::default(),
            },
            choices: self.choices.clone(),
            frame: self.frame,
            pred_frame: self.pred_frame,
            image_size: self.image_size,
            reward: text(&self.reward),
            response: self.response.as_deref().unwrap_or("").to_owned(),
        }
    }

    /// Sets one field of the schema from a Python value; unknown names are ignored. `None` for
    /// an optional field means "not given".
    pub fn set(&mut self, name: &str, value: &Bound<'_, PyAny>) -> Result<(), String> {
        match name {
            "response" => self.response = Some(backed_str(value, "response")?),
            "answer" => self.answer = Some(answer_from_py(value)?),
            "task" => self.task = opt_backed_str(value, "task")?,
            "reward" => self.reward = opt_backed_str(value, "reward")?,
            "frame" => self.frame = opt_frame(value, "frame")?,
            "pred_frame" => self.pred_frame = opt_frame(value, "pred_frame")?,
            "choices" if !value.is_none() => {
                self.choices = from_value(to_value(value)?, "choices")?;
            }
            "image_size" if !value.is_none() => self.image_size = Some(image_size(value)?),
            _ => {}
        }
        Ok(())
    }
}

/// Reads one sample dict; returns it with its `id` kept as the caller's own object.
pub fn raw_from_dict<'py>(
    d: &Bound<'py, PyDict>,
    require_response: bool,
) -> Result<(RawSample, Option<Bound<'py, PyAny>>), String> {
    let mut raw = RawSample::empty();
    let mut id = None;
    for (key, value) in d.iter() {
        // Non-string keys cannot name a field of the schema.
        let Ok(key) = key.cast::<PyString>() else {
            continue;
        };
        let key = key.to_cow().map_err(|e| format!("bad sample: {e}"))?;
        if key == "id" {
            if !value.is_none() {
                id = Some(value);
            }
        } else {
            raw.set(&key, &value)?;
        }
    }
    raw.check(require_response)?;
    Ok((raw, id))
}

fn backed_str(v: &Bound<'_, PyAny>, field: &str) -> Result<PyBackedStr, String> {
    match v.cast::<PyString>() {
        Ok(s) => {
            PyBackedStr::try_from(s.clone()).map_err(|e| format!("bad sample: `{field}`: {e}"))
        }
        Err(_) => Err(format!(
            "bad sample: `{field}` must be a string, got {}",
            type_name(v)
        )),
    }
}

fn opt_backed_str(v: &Bound<'_, PyAny>, field: &str) -> Result<Option<PyBackedStr>, String> {
    if v.is_none() {
        Ok(None)
    } else {
        backed_str(v, field).map(Some)
    }
}

/// `[width, height]`: two numbers in a list or tuple (the common case, read directly), or any
/// sequence `to_value` understands (a NumPy array).
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

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn string_field(v: &Bound<'_, PyAny>, field: &str) -> Result<String, String> {
    backed_str(v, field).map(|s| s.to_string())
}

fn opt_frame(v: &Bound<'_, PyAny>, field: &str) -> Result<Option<Frame>, String> {
    if v.is_none() {
        return Ok(None);
    }
    let name = string_field(v, field)?;
    Frame::deserialize(StrDeserializer::<DeError>::new(&name))
        .map(Some)
        .map_err(|e| format!("bad sample: `{field}`: {e}"))
}

fn from_value<T: serde::de::DeserializeOwned>(v: Value, field: &str) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("bad sample: `{field}`: {e}"))
}

/// The gold answer, read as serde reads it from JSON (see [`Answer`]'s `Deserialize`).
fn answer_from_py(v: &Bound<'_, PyAny>) -> Result<RawAnswer, String> {
    if v.is_instance_of::<PyString>() {
        return backed_str(v, "answer").map(RawAnswer::Text);
    }
    Ok(RawAnswer::Parsed(match to_value(v)? {
        Value::String(s) => Answer::Text(s),
        Value::Number(n) => Answer::Text(n.to_string()),
        Value::Bool(b) => Answer::Text(if b { "yes" } else { "no" }.into()),
        Value::Null => return Err("bad sample: `answer` is null".into()),
        other => Answer::Json(other),
    }))
}

/// Any JSON-like Python value as a [`Value`]: None, bool, int, float, str, list, tuple, dict,
/// and anything with a `tolist()` (NumPy arrays and scalars, which is what verl's Parquet rows
/// hold for list columns).
pub fn to_value(v: &Bound<'_, PyAny>) -> Result<Value, String> {
    to_value_at(v, 0)
}

fn to_value_at(v: &Bound<'_, PyAny>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("bad sample: value nested too deeply".into());
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
