//! The `mixed_r1._native.Scorer` class: constructors from a configuration and the methods the
//! Python package calls (batches, columns, single samples, format, extraction, accuracy).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;

use mixed_r1_reward::extract::extract_answer;
use mixed_r1_reward::format::format_score;
use mixed_r1_reward::strip_vision_tokens;
use mixed_r1_reward::{RewardConfig, RewardError, Scorer};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::batch::{Chunk, Item, AHEAD};
use crate::convert::{prefetch, Field, Keep, Reader, Sample};
use crate::items::{column, Items};
use crate::results::{list_of, Output, Results};

pub(crate) fn config_err(e: RewardError) -> PyErr {
    match e {
        RewardError::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// The mixed reward scorer. Immutable, so one instance serves any number of threads.
#[pyclass(frozen, name = "Scorer", module = "mixed_r1._native")]
pub(crate) struct PyScorer {
    pub(crate) inner: Arc<Scorer>,
}

impl PyScorer {
    pub(crate) fn build(py: Python<'_>, cfg: RewardConfig) -> PyResult<Self> {
        // Loading a BMAS table reads a tokenizer and maps a safetensors file: no GIL needed.
        let inner = py.detach(|| Scorer::new(cfg)).map_err(config_err)?;
        Ok(PyScorer {
            inner: Arc::new(inner),
        })
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
    /// list of result dicts in input order (`output="dicts"`), or of rewards (`"floats"`: a
    /// float, or None where the result dict's `reward` is None).
    #[pyo3(signature = (samples, output=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        samples: &Bound<'py, PyAny>,
        output: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let output = Output::parse(output, Output::Dicts, "score()")?;
        if samples.is_instance_of::<PyString>() || samples.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err(
                "score() takes a list of samples; use score_one() for a single sample",
            ));
        }
        let samples = Items::new("samples", samples)?;
        let n = samples.len();
        let reader = Reader::new(py);
        let mut results = Results::new(py)?;
        let mut out = Vec::with_capacity(n);
        self.run(
            py,
            n,
            |i, chunk| {
                // Two stages: the dict of a sample further ahead, the values of a nearer one.
                if let Some(far) = samples.ahead(i, 2 * AHEAD) {
                    prefetch(far);
                }
                if let Some(near) = samples.ahead(i, AHEAD) {
                    // SAFETY: the GIL is held and `near` is alive (the list holds it).
                    unsafe { reader.prefetch_dict(near) };
                }
                Self::read_item(&reader, samples.get(i)?, samples.private, chunk);
                Ok(())
            },
            |_, r, id| {
                out.push(match output {
                    Output::Floats => results.float(r.reward)?,
                    _ => results.dict(r, id)?,
                });
                Ok(())
            },
        )?;
        list_of(py, out)
    }

    /// Scores one sample (a dict or a JSON string).
    fn score_one<'py>(
        &self,
        py: Python<'py>,
        sample: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reader = Reader::new(py);
        let mut results = Results::new(py)?;
        let mut out = None;
        self.run(
            py,
            1,
            |_, chunk| {
                // The caller's object: the call holds it for as long as this runs.
                Self::read_item(&reader, sample.as_ptr(), true, chunk);
                Ok(())
            },
            |_, r, id| {
                out = Some(results.dict(r, id)?);
                Ok(())
            },
        )?;
        out.ok_or_else(|| PyValueError::new_err("internal error while scoring (a bug)"))
    }

    /// Scores samples given as columns (one list per field, one value per sample, None for
    /// "not given"), the shape TRL hands reward functions. Returns columns too: a dict of lists
    /// `reward`, `format`, `accuracy`, `task`, `error` (`output="columns"`), or just the list
    /// of rewards (`"floats"`).
    #[pyo3(signature = (responses, answers, tasks=None, rewards=None, choices=None, frames=None, pred_frames=None, image_sizes=None, output=None))]
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
        output: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let output = Output::parse(output, Output::Columns, "score_columns()")?;
        let responses = column("responses", Some(responses), None)?
            .ok_or_else(|| PyTypeError::new_err("`responses` must be a list"))?;
        let n = responses.len();
        let answers = column("answers", Some(answers), Some(n))?
            .ok_or_else(|| PyTypeError::new_err("`answers` must be a list"))?;
        let fields: Vec<(Field, Items<'py>)> = [
            (Field::Task, column("tasks", tasks, Some(n))?),
            (Field::Reward, column("rewards", rewards, Some(n))?),
            (Field::Choices, column("choices", choices, Some(n))?),
            (Field::Frame, column("frames", frames, Some(n))?),
            (
                Field::PredFrame,
                column("pred_frames", pred_frames, Some(n))?,
            ),
            (
                Field::ImageSize,
                column("image_sizes", image_sizes, Some(n))?,
            ),
        ]
        .into_iter()
        .filter_map(|(f, c)| Some((f, c?)))
        .collect();
        let reader = Reader::new(py);
        let read = |i: usize, chunk: &mut Chunk| -> PyResult<()> {
            let mut sample = Sample::empty();
            let keep = &mut chunk.keep;
            let values = [(Field::Response, &responses), (Field::Answer, &answers)]
                .into_iter()
                .chain(fields.iter().map(|(f, c)| (*f, c)));
            for (_, column) in values.clone() {
                if let Some(ahead) = column.ahead(i, AHEAD) {
                    prefetch(ahead);
                }
            }
            let mut outcome = Ok(());
            for (field, column) in values {
                let value = column.get(i)?;
                // A None answer is "not given" (the check below reports it).
                // SAFETY: the GIL is held; `value` is alive (see `Items`), and borrowed text
                // is held by `keep` unless the column is a private copy.
                if field != Field::Answer || value != unsafe { ffi::Py_None() } {
                    outcome =
                        unsafe { reader.set(&mut sample, field, value, keep, column.private) };
                    if outcome.is_err() {
                        break;
                    }
                }
            }
            let outcome = outcome.and_then(|()| sample.check(true));
            chunk.push(
                match outcome {
                    Ok(()) => Item::Sample(sample),
                    Err(e) => Item::Bad(e),
                },
                ptr::null_mut(),
            );
            Ok(())
        };
        let mut results = Results::new(py)?;
        if output == Output::Floats {
            let mut out = Vec::with_capacity(n);
            self.run(py, n, read, |_, r, _| {
                out.push(results.float(r.reward)?);
                Ok(())
            })?;
            return Ok(list_of(py, out)?.into_any());
        }
        let mut lists: [Vec<Bound<'py, PyAny>>; 5] = Default::default();
        lists.iter_mut().for_each(|l| l.reserve_exact(n));
        self.run(py, n, read, |_, r, _| {
            lists[0].push(results.float(r.reward)?);
            lists[1].push(results.float(r.format)?);
            lists[2].push(results.float(r.accuracy)?);
            lists[3].push(results.task(r));
            lists[4].push(results.error(r));
            Ok(())
        })?;
        let out = PyDict::new(py);
        for (key, list) in ["reward", "format", "accuracy", "task", "error"]
            .into_iter()
            .zip(lists)
        {
            out.set_item(key, list_of(py, list)?)?;
        }
        Ok(out.into_any())
    }

    /// The format reward of one response under the configured mode (None for mode `none`).
    /// Vision placeholder tokens are removed first, as the mixed reward does.
    fn format_score(&self, response: &str) -> Option<f64> {
        format_score(
            &strip_vision_tokens(response),
            self.inner.config().format.mode,
        )
    }

    /// The answer that accuracy rewards judge (None: the response has none), read from the
    /// response without its vision placeholder tokens, as the mixed reward reads it.
    fn extract_answer(&self, response: &str) -> Option<String> {
        let cfg = self.inner.config();
        let response = strip_vision_tokens(response);
        extract_answer(&response, cfg.format.mode, cfg.extract.fallback).map(str::to_owned)
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
        let reader = Reader::new(py);
        let mut keep = Keep::default();
        let mut raw = Sample::empty();
        // SAFETY: the GIL is held and `sample` is a live dict.
        let read = unsafe { reader.dict(sample.as_ptr(), &mut raw, &mut keep, false) };
        let outcome = match read {
            Err(e) => Err(e),
            Ok(_) => {
                let scorer: &Scorer = &self.inner;
                py.detach(|| {
                    raw.with_ref(|s| {
                        let kind = Scorer::kind_of_ref(s)?;
                        catch_unwind(AssertUnwindSafe(|| {
                            scorer.accuracy_ref(kind, prediction, s)
                        }))
                        .map_err(|_| "internal error while scoring (a bug)".to_string())
                    })
                })
            }
        };
        keep.release(py);
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
            Err(e) => (None, Some(e)),
        }
    }
}
