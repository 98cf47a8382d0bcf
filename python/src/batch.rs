//! Scoring a batch, pipelined chunk by chunk: while the main thread (with the GIL) reads
//! chunk k+1 and turns finished results into Python objects, a helper pool (without the GIL)
//! scores chunk k.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use mixed_r1_reward::{ScoreResult, Scorer};
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::convert::{type_name, Keep, PyText, Reader, Sample};
use crate::scorer::PyScorer;

/// What one element of a batch turned out to be.
pub(crate) enum Item {
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

/// Samples per pipelined job: big enough that a job's hand-off is noise, small enough that the
/// pool starts scoring while the main thread is still reading.
const CHUNK: usize = 256;

/// How many samples ahead of the one being read to prefetch.
pub(crate) const AHEAD: usize = 4;

/// One chunk of samples as read: the items go to a worker; `keep` (what the items' borrowed
/// text lives in) and `ids` (borrowed, held by `keep`; null for none) stay on the main thread
/// until the chunk's results are out.
#[derive(Default)]
pub(crate) struct Chunk {
    pub(crate) items: Vec<Item>,
    pub(crate) ids: Vec<*mut ffi::PyObject>,
    pub(crate) keep: Keep,
}

impl Chunk {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Chunk {
            items: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            keep: Keep::default(),
        }
    }

    pub(crate) fn push(&mut self, item: Item, id: *mut ffi::PyObject) {
        self.items.push(item);
        self.ids.push(id);
    }
}

impl PyScorer {
    /// Reads one element of a `score` batch: a dict, or a JSON line. `kept`: something else
    /// holds `item` for the whole batch; otherwise the chunk holds it.
    pub(crate) fn read_item(
        reader: &Reader<'_>,
        item: *mut ffi::PyObject,
        kept: bool,
        chunk: &mut Chunk,
    ) {
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
    pub(crate) fn run<'py>(
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
