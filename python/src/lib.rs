//! `mixed_r1._native`: the Mixed-R1 reward crate as a Python extension module.
//!
//! One class, [`PyScorer`] (`mixed_r1._native.Scorer`), wraps a [`Scorer`]. A batch goes
//! through three phases, pipelined chunk by chunk (see [`PyScorer::run`]):
//!
//! 1. with the GIL, the samples are read into [`Sample`]s: fields are looked up and numbers
//!    read, but strings are only *borrowed* from the caller's `str` objects (no copy; the
//!    objects are kept alive until the batch is done);
//! 2. without the GIL, rayon's pool (`RAYON_NUM_THREADS` sets its size) scores each sample in
//!    place, as a borrowed [`mixed_r1_reward::sample::SampleRef`];
//! 3. with the GIL, the results become Python objects, in input order: result dicts, columns,
//!    or (the fastest) one float per sample.
//!
//! Nothing here raises for a bad *sample*: like the command line, such a sample gets a result
//! whose `error` says what was wrong. Only a bad *configuration* or argument raises.
//!
//! The user-facing API (`mixed_r1.Rewards`, `mixed_r1.score`, the framework adapters) is the
//! Python package around this module.

mod convert;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use mixed_r1_reward::extract::extract_answer;
use mixed_r1_reward::format::format_score;
use mixed_r1_reward::router::TASKS;
use mixed_r1_reward::strip_vision_tokens;
use mixed_r1_reward::{RewardConfig, RewardError, ScoreResult, Scorer};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString};
use rayon::prelude::*;

use convert::{prefetch, type_name, value_to_py, Field, Keep, PyText, Reader, Sample};

// Rust-side allocations (results, the odd `choices` copy) are many, small, and made on one
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
enum Item {
    Sample(Sample),
    /// A JSON line, parsed (and its errors reported) exactly as the command line does.
    Line(PyText),
    Bad(String),
}

fn score_item(scorer: &Scorer, item: &Item) -> ScoreResult {
    match item {
        Item::Sample(s) => s.with_ref(|r| scorer.score_ref(r)),
        Item::Line(line) => scorer.score_json_line(line.as_str()),
        Item::Bad(e) => ScoreResult::failed(e.clone()),
    }
}

/// What a batch returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// One result dict per sample.
    Dicts,
    /// A dict of five lists (`score_columns`' default).
    Columns,
    /// One float per sample: the reward (None when skipped or unscorable).
    Floats,
}

impl Output {
    fn parse(value: Option<&str>, default: Output, what: &str) -> PyResult<Output> {
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
fn owned(py: Python<'_>, p: *mut ffi::PyObject) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: `p` is a new reference or null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, p) }
}

/// Builds the Python side of results, with the GIL held: result fields as shared objects. The
/// common reward values (0, 0.5, 1, 1.5...) are created once per batch: Python floats are
/// immutable, and most rewards are one of them. Task names are interned once per interpreter.
struct Results<'py> {
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
    fn new(py: Python<'py>) -> PyResult<Self> {
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

    fn float(&mut self, v: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
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

    fn task(&self, r: &ScoreResult) -> Bound<'py, PyAny> {
        match r.task.as_deref() {
            None => self.none.clone(),
            Some(t) => match TASKS.iter().position(|k| *k == t) {
                Some(i) => self.tasks[i].clone(),
                None => PyString::new(self.py, t).into_any(),
            },
        }
    }

    fn error(&self, r: &ScoreResult) -> Bound<'py, PyAny> {
        match &r.error {
            Some(e) => PyString::new(self.py, e).into_any(),
            None => self.none.clone(),
        }
    }

    /// A result as the DESIGN.md object: `id` (when the sample had one: the caller's own
    /// object, else the JSON line's), `reward`, `format`, `accuracy`, `task`, `error`. Made as
    /// a copy of a template with every key (a copy of a small dict is one block copy), whose
    /// None values are then replaced where the result has a value.
    fn dict(&mut self, r: &ScoreResult, id: *mut ffi::PyObject) -> PyResult<Bound<'py, PyAny>> {
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
fn list_of<'py>(py: Python<'py>, values: Vec<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyList>> {
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
struct Items<'py> {
    list: Bound<'py, PyList>,
    /// The length when the batch started.
    len: usize,
    /// A private copy: its items stay alive, unchanged, for the whole batch.
    private: bool,
    name: &'static str,
}

impl<'py> Items<'py> {
    fn new(name: &'static str, values: &Bound<'py, PyAny>) -> PyResult<Self> {
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

    fn len(&self) -> usize {
        self.len
    }

    /// Item `i + k` (to prefetch), if there is one.
    fn ahead(&self, i: usize, k: usize) -> Option<*mut ffi::PyObject> {
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
    fn get(&self, i: usize) -> PyResult<*mut ffi::PyObject> {
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
fn column<'py>(
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

/// The mixed reward scorer. Immutable, so one instance serves any number of threads.
#[pyclass(frozen, name = "Scorer", module = "mixed_r1._native")]
struct PyScorer {
    inner: Arc<Scorer>,
}

/// Samples per pipelined job: big enough that a job's hand-off is noise, small enough that the
/// pool starts scoring while the main thread is still reading.
const CHUNK: usize = 256;

/// How many samples ahead of the one being read to prefetch.
const AHEAD: usize = 4;

/// One chunk of samples as read: the items go to a worker; `keep` (what the items' borrowed
/// text lives in) and `ids` (borrowed, held by `keep`; null for none) stay on the main thread
/// until the chunk's results are out.
#[derive(Default)]
struct Chunk {
    items: Vec<Item>,
    ids: Vec<*mut ffi::PyObject>,
    keep: Keep,
}

impl Chunk {
    fn with_capacity(n: usize) -> Self {
        Chunk {
            items: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            keep: Keep::default(),
        }
    }

    fn push(&mut self, item: Item, id: *mut ffi::PyObject) {
        self.items.push(item);
        self.ids.push(id);
    }
}

impl PyScorer {
    fn build(py: Python<'_>, cfg: RewardConfig) -> PyResult<Self> {
        // Loading a BMAS table reads a tokenizer and maps a safetensors file: no GIL needed.
        let inner = py.detach(|| Scorer::new(cfg)).map_err(config_err)?;
        Ok(PyScorer {
            inner: Arc::new(inner),
        })
    }

    /// Reads one element of a `score` batch: a dict, or a JSON line. `kept`: something else
    /// holds `item` for the whole batch; otherwise the chunk holds it.
    fn read_item(reader: &Reader<'_>, item: *mut ffi::PyObject, kept: bool, chunk: &mut Chunk) {
        let py = reader.py();
        let keep = &mut chunk.keep;
        if !kept {
            // A JSON line's text is borrowed from it; a dict must outlive its reading even if
            // a general reader runs Python code (`tolist()`) that lets other threads run.
            keep.hold(py, item);
        }
        // SAFETY: the GIL is held and `item` is alive (see above).
        unsafe {
            if ffi::Py_TYPE(item) == &raw mut ffi::PyDict_Type || ffi::PyDict_Check(item) != 0 {
                let mut sample = Sample::empty();
                match reader.dict(item, &mut sample, keep, true) {
                    Ok(id) => chunk.push(Item::Sample(sample), id),
                    Err(e) => {
                        let id = reader.id_of(item, keep);
                        chunk.push(Item::Bad(e), id)
                    }
                }
                return;
            }
            if ffi::PyUnicode_Check(item) != 0 {
                match PyText::of(py, item) {
                    Ok(line) => chunk.push(Item::Line(line), ptr::null_mut()),
                    Err(e) => chunk.push(Item::Bad(format!("invalid JSON: {e}")), ptr::null_mut()),
                }
                return;
            }
            let msg = format!(
                "bad sample: expected a dict (or a JSON string), got {}",
                type_name(&Bound::from_borrowed_ptr(py, item))
            );
            chunk.push(Item::Bad(msg), ptr::null_mut());
        }
    }

    /// Scores a batch of `n` samples, pipelined: while the main thread (with the GIL) reads
    /// chunk k+1 and turns finished results into Python objects, the pool (without the GIL)
    /// scores chunk k. `read(i, chunk)` reads sample i into `chunk`, holding in `chunk.keep`
    /// whatever its borrowed text lives in; `emit(i, result, id)` gets every result, in input
    /// order. A chunk's held objects are released only once no worker reads it any more (even
    /// on an error).
    fn run<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        mut read: impl FnMut(usize, &mut Chunk) -> PyResult<()>,
        mut emit: impl FnMut(usize, &ScoreResult, *mut ffi::PyObject) -> PyResult<()>,
    ) -> PyResult<()> {
        if n >= 4 * CHUNK && rayon::current_num_threads() > 1 {
            self.pipeline(py, n, &mut read, &mut emit)
        } else {
            self.all_at_once(py, n, &mut read, &mut emit)
        }
    }

    /// A small batch (or a pool of one): read everything, score, emit.
    fn all_at_once<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        read: &mut impl FnMut(usize, &mut Chunk) -> PyResult<()>,
        emit: &mut impl FnMut(usize, &ScoreResult, *mut ffi::PyObject) -> PyResult<()>,
    ) -> PyResult<()> {
        let mut chunk = Chunk::with_capacity(n);
        for i in 0..n {
            read(i, &mut chunk)?;
        }
        let scorer: &Scorer = &self.inner;
        let items = &chunk.items;
        let results: Vec<ScoreResult> = py.detach(|| {
            let one = |item: &Item| score_item(scorer, item);
            // Below a few samples the pool's hand-off costs more than the scoring.
            if items.len() < 4 {
                items.iter().map(one).collect()
            } else {
                items.par_iter().map(one).collect()
            }
        });
        let outcome = results
            .iter()
            .zip(&chunk.ids)
            .enumerate()
            .try_for_each(|(i, (r, id))| emit(i, r, *id));
        chunk.keep.release(py);
        outcome
    }

    fn pipeline<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        read: &mut impl FnMut(usize, &mut Chunk) -> PyResult<()>,
        emit: &mut impl FnMut(usize, &ScoreResult, *mut ffi::PyObject) -> PyResult<()>,
    ) -> PyResult<()> {
        let chunks = n.div_ceil(CHUNK);
        let (tx, rx) = mpsc::channel::<Done>();
        let queue: Queue = Arc::default();
        // Per chunk, what stays on the main thread: ids and held objects.
        let mut ids: Vec<(Vec<*mut ffi::PyObject>, Keep)> = Vec::with_capacity(chunks);
        let mut ready: Vec<Option<Vec<ScoreResult>>> = (0..chunks).map(|_| None).collect();
        let mut next = 0usize;
        let mut pending = 0usize;
        let bug = || PyValueError::new_err("internal error while scoring (a bug)");

        // Files a finished chunk, then emits every chunk that is now next in order.
        let mut finish = |done: Done,
                          ids: &mut Vec<(Vec<*mut ffi::PyObject>, Keep)>,
                          next: &mut usize|
         -> PyResult<()> {
            let (k, results) = done;
            ready[k] = Some(results.map_err(|()| bug())?);
            while *next < ready.len() {
                let Some(results) = ready[*next].take() else {
                    break;
                };
                let (chunk_ids, keep) = &mut ids[*next];
                for (j, (r, id)) in results.iter().zip(chunk_ids.iter()).enumerate() {
                    emit(*next * CHUNK + j, r, *id)?;
                }
                // Scored and emitted: nothing reads this chunk's objects any more.
                keep.release(py);
                *next += 1;
            }
            Ok(())
        };

        let mut rx = Some(rx);
        let outcome = (|| -> PyResult<()> {
            for k in 0..chunks {
                let mut chunk = Chunk::with_capacity(CHUNK);
                for i in k * CHUNK..((k + 1) * CHUNK).min(n) {
                    read(i, &mut chunk)?;
                }
                ids.push((chunk.ids, chunk.keep));
                take(&queue).push_back((k, chunk.items));
                pending += 1;
                // One job per chunk; it scores whichever chunk is first in line (the main
                // thread may have taken this one by then).
                let (queue, scorer, tx) = (Arc::clone(&queue), Arc::clone(&self.inner), tx.clone());
                spawn(move || {
                    let job = take(&queue).pop_front();
                    if let Some((k, items)) = job {
                        let _ = tx.send((k, score_chunk(&scorer, items)));
                    }
                });
                while let Some(done) = rx.as_ref().and_then(|rx| rx.try_recv().ok()) {
                    pending -= 1;
                    finish(done, &mut ids, &mut next)?;
                }
            }
            // Everything read: the main thread scores the chunks no worker has taken yet,
            // without the GIL, rather than wait.
            let scorer: &Scorer = &self.inner;
            let mine: Vec<Done> = py.detach(|| {
                std::iter::from_fn(|| take(&queue).pop_front())
                    .map(|(k, items)| (k, score_chunk(scorer, items)))
                    .collect()
            });
            for done in mine {
                pending -= 1;
                finish(done, &mut ids, &mut next)?;
            }
            while pending > 0 {
                let done = wait(py, &mut rx).ok_or_else(bug)?;
                pending -= 1;
                finish(done, &mut ids, &mut next)?;
            }
            Ok(())
        })();
        // On an error, chunks still being scored read text that `ids` holds: drop the ones no
        // worker has taken, wait for the others, and only then release it.
        pending -= take(&queue).drain(..).count();
        while pending > 0 && wait(py, &mut rx).is_some() {
            pending -= 1;
        }
        for (_, keep) in &mut ids {
            keep.release(py);
        }
        outcome
    }
}

/// A scored chunk: its index and results (`Err`: a panic, which is a bug).
type Done = (usize, Result<Vec<ScoreResult>, ()>);

/// Chunks read and waiting for a worker (or for the main thread, once it has read them all).
type Queue = Arc<Mutex<VecDeque<(usize, Vec<Item>)>>>;

fn take(queue: &Queue) -> std::sync::MutexGuard<'_, VecDeque<(usize, Vec<Item>)>> {
    // Nothing panics while holding the lock; a poisoned one is still a valid queue.
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// Scores a chunk (on any thread, without the GIL) and frees it there: its items hold no
/// Python reference.
fn score_chunk(scorer: &Scorer, items: Vec<Item>) -> Result<Vec<ScoreResult>, ()> {
    // A panic must not unwind out of a worker (it would abort the process).
    catch_unwind(AssertUnwindSafe(|| {
        items.iter().map(|item| score_item(scorer, item)).collect()
    }))
    .map_err(|_| ())
}

/// Runs a pipeline job on the helper pool: one thread fewer than rayon is configured for
/// (`RAYON_NUM_THREADS`, else one per core), because the main thread reads the batch, and
/// scores its last chunks, itself. One more thread than cores would make the main thread,
/// which holds the GIL and paces the whole batch, wait for a core now and then. Falls back to
/// rayon's global pool if the helper pool cannot be started.
fn spawn(job: impl FnOnce() + Send + 'static) {
    static HELPERS: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let helpers = HELPERS.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads().saturating_sub(1).max(1))
            .thread_name(|i| format!("mixed-r1-score-{i}"))
            .build()
            .ok()
    });
    match helpers {
        Some(pool) => pool.spawn(job),
        None => rayon::spawn(job),
    }
}

/// Waits for a finished chunk without the GIL (the receiver moves into the GIL-free wait and
/// back: it is `Send`, not `Sync`).
fn wait<T: Send>(py: Python<'_>, rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    let r = rx.take()?;
    let (r, done) = py.detach(move || {
        let done = r.recv();
        (r, done)
    });
    *rx = Some(r);
    done.ok()
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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScorer>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("TASKS", mixed_r1_reward::router::TASKS.to_vec())?;
    Ok(())
}
