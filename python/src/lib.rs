//! `mixed_r1._native`: the Mixed-R1 reward crate as a Python extension module.
//!
//! One class, [`PyScorer`] (`mixed_r1._native.Scorer`), wraps a [`Scorer`]. A batch goes
//! through three phases:
//!
//! 1. with the GIL, the samples are read into [`RawSample`]s: fields are looked up and numbers
//!    read, but strings are only *referenced* (no copy);
//! 2. without the GIL, rayon's pool (`RAYON_NUM_THREADS` sets its size) copies each sample's
//!    strings and scores it, in parallel;
//! 3. with the GIL, the results become Python objects, in input order.
//!
//! Nothing here raises for a bad *sample*: like the command line, such a sample gets a result
//! whose `error` says what was wrong. Only a bad *configuration* or argument raises.
//!
//! The user-facing API (`mixed_r1.Rewards`, `mixed_r1.score`, the framework adapters) is the
//! Python package around this module.

mod convert;

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use mixed_r1_reward::extract::extract_answer;
use mixed_r1_reward::format::format_score;
use mixed_r1_reward::{RewardConfig, RewardError, ScoreResult, Scorer};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use rayon::prelude::*;

use convert::{raw_from_dict, value_to_py, RawSample};

// Rust-side allocations (the copied sample strings, results) are many, small, and made on one
// thread and freed on another; mimalloc keeps them cheap (pydantic-core's wheel does the same).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn config_err(e: RewardError) -> PyErr {
    match e {
        RewardError::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// What one element of a batch turned out to be.
enum Input {
    Raw(RawSample),
    /// A JSON line, parsed (and its errors reported) exactly as the command line does.
    Line(PyBackedStr),
    Bad(String),
}

/// Result fields as Python objects. The common reward values (0, 0.5, 1, 1.5...) are created
/// once per batch and shared: Python floats are immutable, and most rewards are one of them.
struct FloatCache<'py> {
    py: Python<'py>,
    slots: Vec<(u64, Bound<'py, PyFloat>)>,
}

impl<'py> FloatCache<'py> {
    fn new(py: Python<'py>) -> Self {
        FloatCache {
            py,
            slots: Vec::with_capacity(8),
        }
    }

    fn get(&mut self, v: Option<f64>) -> Bound<'py, PyAny> {
        let Some(v) = v else {
            return self.py.None().into_bound(self.py);
        };
        let bits = v.to_bits();
        if let Some((_, f)) = self.slots.iter().find(|(b, _)| *b == bits) {
            return f.clone().into_any();
        }
        let f = PyFloat::new(self.py, v);
        if self.slots.len() < 8 {
            self.slots.push((bits, f.clone()));
        }
        f.into_any()
    }
}

/// Task names are interned once per interpreter, so a result never allocates for them.
fn task_to_py<'py>(py: Python<'py>, task: Option<Cow<'static, str>>) -> Bound<'py, PyAny> {
    let Some(task) = task else {
        return py.None().into_bound(py);
    };
    let s = match task.as_ref() {
        "yes_no" => intern!(py, "yes_no"),
        "mcq" => intern!(py, "mcq"),
        "numeric" => intern!(py, "numeric"),
        "math" => intern!(py, "math"),
        "chart" => intern!(py, "chart"),
        "grounding" => intern!(py, "grounding"),
        "open_ended" => intern!(py, "open_ended"),
        other => return PyString::new(py, other).into_any(),
    };
    s.clone().into_any()
}

fn error_to_py<'py>(py: Python<'py>, error: Option<String>) -> Bound<'py, PyAny> {
    match error {
        Some(e) => PyString::new(py, &e).into_any(),
        None => py.None().into_bound(py),
    }
}

/// A result as the DESIGN.md object: `id` (when the sample had one), `reward`, `format`,
/// `accuracy`, `task`, `error`.
fn result_to_py<'py>(
    floats: &mut FloatCache<'py>,
    r: ScoreResult,
    id: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let py = floats.py;
    let d = PyDict::new(py);
    match (id, &r.id) {
        (Some(id), _) => d.set_item(intern!(py, "id"), id)?,
        (None, Some(v)) => d.set_item(intern!(py, "id"), value_to_py(py, v)?)?,
        (None, None) => {}
    }
    d.set_item(intern!(py, "reward"), floats.get(r.reward))?;
    d.set_item(intern!(py, "format"), floats.get(r.format))?;
    d.set_item(intern!(py, "accuracy"), floats.get(r.accuracy))?;
    d.set_item(intern!(py, "task"), task_to_py(py, r.task))?;
    d.set_item(intern!(py, "error"), error_to_py(py, r.error))?;
    Ok(d)
}

fn list_of<'py>(py: Python<'py>, items: Vec<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, items)
}

/// The values of one column argument (a list, tuple or any sequence), checked for length.
fn column<'py>(
    name: &str,
    values: Option<&Bound<'py, PyAny>>,
    n: usize,
) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
    let Some(values) = values.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if values.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be a list, not a string"
        )));
    }
    let items: Vec<_> = match values.cast::<PyList>() {
        Ok(list) => list.iter().collect(),
        Err(_) => values.try_iter()?.collect::<PyResult<_>>()?,
    };
    if items.len() != n {
        return Err(PyValueError::new_err(format!(
            "`{name}` has {} values for {n} responses",
            items.len()
        )));
    }
    Ok(Some(items))
}

/// The mixed reward scorer. Immutable, so one instance serves any number of threads.
#[pyclass(frozen, name = "Scorer", module = "mixed_r1._native")]
struct PyScorer {
    inner: Arc<Scorer>,
}

/// Samples per pipelined job: big enough that a job's hand-off is noise, small enough that the
/// pool starts scoring while the main thread is still reading.
const CHUNK: usize = 256;

impl PyScorer {
    fn build(py: Python<'_>, cfg: RewardConfig) -> PyResult<Self> {
        // Loading a BMAS table reads a tokenizer and maps a safetensors file: no GIL needed.
        let inner = py.detach(|| Scorer::new(cfg)).map_err(config_err)?;
        Ok(PyScorer {
            inner: Arc::new(inner),
        })
    }

    fn read<'py>(item: &Bound<'py, PyAny>) -> (Input, Option<Bound<'py, PyAny>>) {
        if let Ok(d) = item.cast::<PyDict>() {
            return match raw_from_dict(d, true) {
                Ok((raw, id)) => (Input::Raw(raw), id),
                Err(e) => (Input::Bad(e), d.get_item("id").ok().flatten()),
            };
        }
        if let Ok(s) = item.cast::<PyString>() {
            return match PyBackedStr::try_from(s.clone()) {
                Ok(line) => (Input::Line(line), None),
                Err(e) => (Input::Bad(format!("invalid JSON: {e}")), None),
            };
        }
        let msg = format!(
            "bad sample: expected a dict (or a JSON string), got {}",
            item.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        );
        (Input::Bad(msg), None)
    }

    /// Scores without the GIL; `inputs` are dropped by the caller, with the GIL, afterwards.
    fn score_inputs(&self, py: Python<'_>, inputs: &[Input]) -> Vec<ScoreResult> {
        let scorer: &Scorer = &self.inner;
        let one = |input: &Input| score_input(scorer, input);
        py.detach(|| {
            // Below a few samples the pool's hand-off costs more than the scoring.
            if inputs.len() < 4 {
                inputs.iter().map(one).collect()
            } else {
                inputs.par_iter().map(one).collect()
            }
        })
    }
}

impl PyScorer {
    /// A batch of `n` samples, pipelined: while the main thread (with the GIL) reads chunk k+1
    /// and turns finished results into Python objects, the pool (without the GIL) scores chunk
    /// k. Waiting for the last chunks releases the GIL. `read(i)` reads sample i; `emit` gets
    /// every result, in input order. Each chunk's inputs come back to the main thread and are
    /// dropped there, so their Python references are released at once.
    fn pipeline<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        mut read: impl FnMut(usize) -> PyResult<(Input, Option<Bound<'py, PyAny>>)>,
        mut emit: impl FnMut(ScoreResult, Option<Bound<'py, PyAny>>) -> PyResult<()>,
    ) -> PyResult<()> {
        type Done = (usize, Vec<Input>, Result<Vec<ScoreResult>, ()>);
        let chunks = n.div_ceil(CHUNK);
        let (tx, rx) = mpsc::channel::<Done>();
        let mut ids: Vec<Vec<Option<Bound<'py, PyAny>>>> = Vec::with_capacity(chunks);
        let mut ready: Vec<Option<Vec<ScoreResult>>> = (0..chunks).map(|_| None).collect();
        let (mut next, mut pending) = (0usize, 0usize);
        let bug = || PyValueError::new_err("internal error while scoring (a bug)");

        // Files a finished chunk, then emits every chunk that is now next in order.
        let mut finish = |done: Done,
                          ids: &mut Vec<Vec<Option<Bound<'py, PyAny>>>>,
                          next: &mut usize|
         -> PyResult<()> {
            let (k, inputs, results) = done;
            drop(inputs);
            ready[k] = Some(results.map_err(|()| bug())?);
            while *next < ready.len() {
                let Some(results) = ready[*next].take() else {
                    break;
                };
                let chunk_ids = std::mem::take(&mut ids[*next]);
                for (r, id) in results.into_iter().zip(chunk_ids) {
                    emit(r, id)?;
                }
                *next += 1;
            }
            Ok(())
        };

        for k in 0..chunks {
            let mut inputs = Vec::with_capacity(CHUNK);
            let mut chunk_ids = Vec::with_capacity(CHUNK);
            for i in k * CHUNK..((k + 1) * CHUNK).min(n) {
                let (input, id) = read(i)?;
                inputs.push(input);
                chunk_ids.push(id);
            }
            ids.push(chunk_ids);
            let scorer = Arc::clone(&self.inner);
            let tx = tx.clone();
            pending += 1;
            rayon::spawn(move || {
                // A panic must not unwind out of a rayon job (it would abort the process).
                let results = catch_unwind(AssertUnwindSafe(|| {
                    inputs
                        .iter()
                        .map(|input| score_input(&scorer, input))
                        .collect()
                }))
                .map_err(|_| ());
                let _ = tx.send((k, inputs, results));
            });
            while let Ok(done) = rx.try_recv() {
                pending -= 1;
                finish(done, &mut ids, &mut next)?;
            }
        }
        drop(tx);
        let mut rx = rx;
        while pending > 0 {
            // The receiver moves into the GIL-free wait and back (it is Send, not Sync).
            let (back, done) = py.detach(move || {
                let done = rx.recv();
                (rx, done)
            });
            rx = back;
            pending -= 1;
            finish(done.map_err(|_| bug())?, &mut ids, &mut next)?;
        }
        Ok(())
    }

    /// Whether a batch is big enough, and the pool wide enough, to pipeline.
    fn pipelines(n: usize) -> bool {
        n >= 4 * CHUNK && rayon::current_num_threads() > 1
    }
}

fn score_input(scorer: &Scorer, input: &Input) -> ScoreResult {
    match input {
        Input::Raw(raw) => scorer.score(&raw.to_sample()),
        Input::Line(line) => scorer.score_json_line(line),
        Input::Bad(e) => ScoreResult::failed(e.clone()),
    }
}

#[pymethods]
impl PyScorer {
    /// A scorer from the JSON form of a `reward.toml` (the same keys; `{}` for the defaults).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let cfg: RewardConfig = serde_json::from_str(text)
            .map_err(|e| PyValueError::new_err(format!("invalid reward configuration: {e}")))?;
        cfg.validate().map_err(config_err)?;
        Self::build(py, cfg)
    }

    /// A scorer from `reward.toml` text.
    #[staticmethod]
    fn from_toml(py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::build(py, RewardConfig::from_toml_str(text).map_err(config_err)?)
    }

    /// A scorer from a `reward.toml` file; relative BMAS paths are taken from the file's folder.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        Self::build(py, RewardConfig::from_file(&path).map_err(config_err)?)
    }

    /// The full configuration (defaults filled in) as JSON.
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.config()).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Whether an embedding table is loaded (`open_ended` samples skip without one).
    #[getter]
    fn has_bmas(&self) -> bool {
        self.inner.bmas().is_some()
    }

    /// Scores a list of samples (dicts, or JSON strings) in parallel without the GIL; returns a
    /// list of result dicts in input order.
    fn score<'py>(
        &self,
        py: Python<'py>,
        samples: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        if samples.is_instance_of::<PyString>() || samples.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err(
                "score() takes a list of samples; use score_one() for a single sample",
            ));
        }
        if let Ok(list) = samples.cast::<PyList>() {
            if Self::pipelines(list.len()) {
                let mut floats = FloatCache::new(py);
                let mut out = Vec::with_capacity(list.len());
                self.pipeline(
                    py,
                    list.len(),
                    |i| Ok(Self::read(&list.get_item(i)?)),
                    |r, id| {
                        out.push(result_to_py(&mut floats, r, id)?.into_any());
                        Ok(())
                    },
                )?;
                return list_of(py, out);
            }
        }
        let n = samples.len().unwrap_or(0);
        let mut inputs = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut push = |item: &Bound<'py, PyAny>| {
            let (input, id) = Self::read(item);
            inputs.push(input);
            ids.push(id);
        };
        if let Ok(list) = samples.cast::<PyList>() {
            list.iter().for_each(|item| push(&item));
        } else {
            for item in samples.try_iter()? {
                push(&item?);
            }
        }
        let results = self.score_inputs(py, &inputs);
        drop(inputs);
        let mut floats = FloatCache::new(py);
        let mut out = Vec::with_capacity(results.len());
        for (r, id) in results.into_iter().zip(ids) {
            out.push(result_to_py(&mut floats, r, id)?.into_any());
        }
        list_of(py, out)
    }

    /// Scores one sample (a dict or a JSON string).
    fn score_one<'py>(
        &self,
        py: Python<'py>,
        sample: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (input, id) = Self::read(sample);
        let inputs = [input];
        let result = self.score_inputs(py, &inputs).pop().unwrap_or_default();
        result_to_py(&mut FloatCache::new(py), result, id)
    }

    /// Scores samples given as columns (one list per field, one value per sample, None for
    /// "not given"), the shape TRL hands reward functions. Returns columns too: a dict of lists
    /// `reward`, `format`, `accuracy`, `task`, `error`.
    #[pyo3(signature = (responses, answers, tasks=None, rewards=None, choices=None, frames=None, pred_frames=None, image_sizes=None))]
    #[allow(clippy::too_many_arguments)]
    fn score_columns<'py>(
        &self,
        py: Python<'py>,
        responses: &Bound<'py, PyAny>,
        answers: &Bound<'py, PyAny>,
        tasks: Option<&Bound<'py, PyAny>>,
        rewards: Option<&Bound<'py, PyAny>>,
        choices: Option<&Bound<'py, PyAny>>,
        frames: Option<&Bound<'py, PyAny>>,
        pred_frames: Option<&Bound<'py, PyAny>>,
        image_sizes: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let responses = column("responses", Some(responses), responses.len()?)?.unwrap_or_default();
        let n = responses.len();
        let answers = column("answers", Some(answers), n)?.unwrap_or_default();
        let fields = [
            ("task", column("tasks", tasks, n)?),
            ("reward", column("rewards", rewards, n)?),
            ("choices", column("choices", choices, n)?),
            ("frame", column("frames", frames, n)?),
            ("pred_frame", column("pred_frames", pred_frames, n)?),
            ("image_size", column("image_sizes", image_sizes, n)?),
        ];
        let read = |i: usize| -> PyResult<(Input, Option<Bound<'py, PyAny>>)> {
            let mut raw = RawSample::empty();
            let outcome = (|| {
                raw.set("response", &responses[i])?;
                if !answers[i].is_none() {
                    raw.set("answer", &answers[i])?;
                }
                for (name, values) in &fields {
                    if let Some(values) = values {
                        raw.set(name, &values[i])?;
                    }
                }
                raw.check(true)
            })();
            Ok((
                match outcome {
                    Ok(()) => Input::Raw(raw),
                    Err(e) => Input::Bad(e),
                },
                None,
            ))
        };
        let mut floats = FloatCache::new(py);
        let (mut reward, mut format, mut accuracy, mut task, mut error) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut emit = |r: ScoreResult, _id: Option<Bound<'py, PyAny>>| -> PyResult<()> {
            reward.push(floats.get(r.reward));
            format.push(floats.get(r.format));
            accuracy.push(floats.get(r.accuracy));
            task.push(task_to_py(py, r.task));
            error.push(error_to_py(py, r.error));
            Ok(())
        };
        if Self::pipelines(n) {
            self.pipeline(py, n, read, emit)?;
        } else {
            let inputs = (0..n)
                .map(|i| read(i).map(|(input, _)| input))
                .collect::<PyResult<Vec<_>>>()?;
            let results = self.score_inputs(py, &inputs);
            drop(inputs);
            for r in results {
                emit(r, None)?;
            }
        }
        let out = PyDict::new(py);
        out.set_item(intern!(py, "reward"), list_of(py, reward)?)?;
        out.set_item(intern!(py, "format"), list_of(py, format)?)?;
        out.set_item(intern!(py, "accuracy"), list_of(py, accuracy)?)?;
        out.set_item(intern!(py, "task"), list_of(py, task)?)?;
        out.set_item(intern!(py, "error"), list_of(py, error)?)?;
        Ok(out)
    }

    /// The format reward of one response under the configured mode (None for mode `none`).
    fn format_score(&self, response: &str) -> Option<f64> {
        format_score(response, self.inner.config().format.mode)
    }

    /// The answer that accuracy rewards judge (None: the response has none).
    fn extract_answer(&self, response: &str) -> Option<String> {
        let cfg = self.inner.config();
        extract_answer(response, cfg.format.mode, cfg.extract.fallback).map(str::to_owned)
    }

    /// Accuracy of a bare `prediction` (no answer extraction) against `sample` (its task or
    /// reward, answer and box fields; no response needed). Returns `(accuracy, error)`: a
    /// skipped or unreadable sample has accuracy None and says why.
    fn accuracy(
        &self,
        py: Python<'_>,
        sample: &Bound<'_, PyDict>,
        prediction: Option<&str>,
    ) -> (Option<f64>, Option<String>) {
        let sample = match raw_from_dict(sample, false) {
            Ok((raw, _)) => raw.to_sample(),
            Err(e) => return (None, Some(e)),
        };
        let kind = match Scorer::kind_of(&sample) {
            Ok(k) => k,
            Err(e) => return (None, Some(e)),
        };
        let scorer: &Scorer = &self.inner;
        let outcome = py.detach(|| {
            catch_unwind(AssertUnwindSafe(|| {
                scorer.accuracy(kind, prediction, &sample)
            }))
        });
        match outcome {
            Ok(Ok(a)) => (
                Some(if a.is_finite() {
                    a.clamp(0.0, 1.0)
                } else {
                    0.0
                }),
                None,
            ),
            Ok(Err(skip)) => (None, Some(skip.0)),
            Err(_) => (None, Some("internal error while scoring (a bug)".into())),
        }
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScorer>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("TASKS", mixed_r1_reward::router::TASKS.to_vec())?;
    Ok(())
}
