//! # mixed-r1-eval
//!
//! The eval harness of Mixed-R1: prompts rendered with the trainer's own template, responses
//! from a [`Responder`] (a model generating in batches, or a file of given responses), scored by
//! the mixed reward, and reported per task and per source with each task's standard metrics.
//!
//! ```text
//! data files -> load (mixed-r1-data; bad rows and missing images reported, skipped)
//!            -> PromptTemplate::render_for -> Responder::respond (batches, n responses each)
//!            -> EvalScorer::score (mixed-r1-reward; + IoU, ROUGE-L, correct-for-pass@k)
//!            -> samples.jsonl (appended per batch) -> summarize -> results.json / .md / charts
//! ```
//!
//! ```no_run
//! use mixed_r1_eval::{run, EvalConfig, GivenResponses, RunOptions};
//!
//! let mut responder = GivenResponses::load("responses.jsonl".as_ref())?;
//! let opts = RunOptions {
//!     data: vec!["bench.jsonl".into()],
//!     out: "eval-out".into(),
//!     charts: true,
//!     ..Default::default()
//! };
//! let results = run(&EvalConfig::default(), &opts, &mut responder)?;
//! println!("{} scored, accuracy {:?}", results.counts.scored, results.overall.accuracy);
//! # anyhow::Ok(())
//! ```

pub mod base64;
pub mod compare;
pub mod config;
pub mod convert;
pub mod data;
pub mod image_type;
pub mod json_id;
pub mod metrics;
pub mod plot;
/// The prompt template lives with the data (`mixed_r1_data::prompt`), so the trainer and this
/// harness share it without the trainer depending on the harness.
pub use mixed_r1_data::prompt;
pub mod record;
pub mod report;
pub mod responder;
pub mod rouge;
pub mod run;
pub mod score;
pub mod seed;
pub mod util {
    //! Where the small helpers lived before each got a file named for it; re-exported here so
    //! `mixed_r1_eval::util::*` paths keep working.
    pub use crate::base64::base64_decode;
    pub use crate::image_type::image_extension;
    pub use crate::json_id::id_text;
    pub use crate::seed::{fnv64, response_seed, sample_seed};
    pub use mixed_r1_data::paths::{absolute, relative_to};
}

// The model-backed responder: batched generation with mixed-r1-model.
pub mod model_responder;

pub use compare::{compare, compare_markdown, write_comparison, Comparison};
pub use config::{EvalConfig, GenerationSettings};
pub use convert::{convert, BenchFormat, ConvertOptions, ConvertReport};
pub use data::{load_data, EvalData, EvalSample, SkipKind, Skipped};
pub use metrics::Metrics;
pub use prompt::PromptTemplate;
pub use record::SampleRecord;
pub use report::{Counts, Results, Timing};
pub use responder::{check_model_path, EvalPrompt, GivenResponses, Responder, Response};
pub use run::{run, summarize, OutPaths, RunOptions};
pub use score::{EvalScorer, ScoredResponse};
