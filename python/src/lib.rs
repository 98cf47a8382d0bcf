//! `mixed_r1._native`: the Mixed-R1 reward crate as a Python extension module.
//!
//! One class, [`PyScorer`](scorer::PyScorer) (`mixed_r1._native.Scorer`), wraps a
//! [`Scorer`](mixed_r1_reward::Scorer). A batch goes through three phases, pipelined chunk by
//! chunk (see `PyScorer::run` in [`batch`]):
//!
//! 1. with the GIL, the samples are read into [`Sample`](convert::Sample)s: fields are looked
//!    up and numbers read, but strings are only *borrowed* from the caller's `str` objects (no
//!    copy; the objects are kept alive until the batch is done);
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
//!
//! Files: [`scorer`] (the `Scorer` class and its methods, what Python sees), [`batch`] (the
//! pipelined scoring of a batch), [`items`] (reading batch and column arguments), [`results`]
//! (building result dicts, columns and floats) and [`convert`] (Python objects <-> samples).

mod batch;
mod convert;
mod items;
mod results;
mod scorer;

use pyo3::prelude::*;

use scorer::PyScorer;

// Rust-side allocations (results, the odd `choices` copy) are many, small, and made on one
// thread and freed on another; mimalloc keeps them cheap (pydantic-core's wheel does the same).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScorer>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("TASKS", mixed_r1_reward::router::TASKS.to_vec())?;
    Ok(())
}
