//! # mixed-r1-data
//!
//! The data engine of Mixed-R1: many raw sources in, one clean, deduplicated, difficulty-filtered,
//! balanced training set out (the paper's "Mixed-45K").
//!
//! ```text
//! adapters (ingest) -> normalise -> validate -> dedup -> difficulty -> mix -> write + card
//! ```
//!
//! Every row that leaves the pipeline leaves at one stage with a reason and its file and line
//! ([`schema::Reject`]), so the counts always add up: in = kept + rejected + deduplicated +
//! filtered.

pub mod error;
pub mod schema;

// Sources, reading and writing, normalise and validate.
pub mod adapters;
pub mod inspect;
pub mod jsonl;
pub mod normalise;
pub mod options;
pub mod parquet_io;
pub mod paths;
pub mod validate;

// A sample -> the policy's prompt, shared by the trainer and the eval harness.
pub mod prompt;

// Synthesis, deduplication, difficulty, mixing, the card and the build.
pub mod card;
pub mod dedup;
pub mod difficulty;
pub mod mix;
pub mod pipeline;
pub mod report;
pub mod synth;

pub use error::DataError;
pub use schema::{
    scoring_sample, Answer, Draft, Origin, Reject, Row, Sample, SourceFormat, SourceSpec, Stage,
    Task,
};
