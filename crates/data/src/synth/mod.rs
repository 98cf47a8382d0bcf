//! `mixed-r1 data synth`: a procedural, seeded generator of a mixed multimodal training set in
//! which every answer is exact, because the generator built the scene the question is about.
//!
//! Four scene kinds, each asking several questions about one picture (so 200,000 candidates need
//! far fewer images):
//!
//! | scene  | image | questions (task)                                                               |
//! |--------|-------|--------------------------------------------------------------------------------|
//! | shapes | PNG 128-224 px | count (`numeric`), presence + spatial relation (`yes_no`), colour / shape / count (`mcq`), "locate the red triangle" (`grounding`, exact pixel box, `frame: abs`), caption (`open_ended`) |
//! | bar    | PNG 320x240 | value of a bar, which label is highest / lowest, max - min (`chart`)    |
//! | line   | PNG 320x240 | value at a point, the extreme, how many points lie above a value (`chart`) |
//! | math   | none  | word problems with a number (`numeric`) or a LaTeX fraction / exact form (`math`) |
//!
//! When matplotlib's `Stocks.csv` is given, half the charts use its real numbers (source
//! `synth-stocks`); the others, and all charts without it, use generated numbers (`synth-chart`).
//!
//! Determinism: scene `i` draws everything from its own ChaCha8 stream seeded by `(seed, i)`, so
//! the output is byte-identical for a seed whatever the thread count or scheduling.
//!
//! Output folder: `samples.jsonl` (DESIGN.md schema, image paths relative to the folder),
//! `images/NNN/NNNNNNN.png`, and `synth.json` (the configuration and counts).

mod charts;
mod math;
mod shapes;
pub mod stocks;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use image::RgbImage;
use indicatif::ProgressBar;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::schema::{Answer, Sample, Task};
use mixed_r1_reward::iou::Frame;
pub use shapes::COLOURS;
pub use stocks::Stocks;

pub(crate) const LETTERS: [&str; 8] = ["A", "B", "C", "D", "E", "F", "G", "H"];

/// What `data synth` and a recipe's `[synth]` table configure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Number of samples (questions) to generate.
    pub count: usize,
    #[serde(default)]
    pub seed: u64,
    /// matplotlib's `Stocks.csv`; charts use generated numbers without it.
    #[serde(default)]
    pub stocks: Option<PathBuf>,
    /// Relative weights of the scene kinds.
    #[serde(default)]
    pub scenes: SceneWeights,
}

/// Relative frequency of each scene kind (per scene, not per sample: a shapes scene yields six
/// samples, a chart three, a math problem one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SceneWeights {
    pub shapes: f64,
    pub bar: f64,
    pub line: f64,
    pub math: f64,
}

impl Default for SceneWeights {
    /// Per sample this gives about yes_no 22%, chart 25%, numeric 15%, mcq / grounding /
    /// open_ended 11% each and math 5%: every task of the Mixed-45K shape with room to spare
    /// at 200,000 candidates.
    fn default() -> Self {
        SceneWeights {
            shapes: 0.40,
            bar: 0.15,
            line: 0.15,
            math: 0.30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the stocks file {}: {source}", path.display())]
    Stocks {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding an image failed: {0}")]
    Image(#[from] image::ImageError),
    #[error("invalid synth configuration: {0}")]
    Config(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    pub samples: usize,
    pub images: usize,
    pub scenes: usize,
    pub per_task: BTreeMap<String, usize>,
    pub per_source: BTreeMap<String, usize>,
    /// Whether chart numbers came from `Stocks.csv`.
    pub real_chart_numbers: bool,
}

/// One question about a scene, before it becomes a [`Sample`].
#[derive(Debug, Clone)]
pub(crate) struct Question {
    pub task: Task,
    pub template: String,
    pub problem: String,
    pub answer: Answer,
    pub choices: Vec<String>,
    /// `[width, height]` for grounding questions (their boxes are in `abs` frame).
    pub grounding: Option<[u32; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SceneKind {
    Shapes,
    Bar,
    Line,
    Math,
}

impl SceneKind {
    fn questions(self) -> usize {
        match self {
            SceneKind::Shapes => 6,
            SceneKind::Bar | SceneKind::Line => 3,
            SceneKind::Math => 1,
        }
    }
}

/// A scene's own random stream: seeded by the run's seed and the scene's index only.
fn scene_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

fn draw_kind(rng: &mut ChaCha8Rng, w: &SceneWeights) -> SceneKind {
    let total = w.shapes + w.bar + w.line + w.math;
    let x = rng.random_range(0.0..total);
    if x < w.shapes {
        SceneKind::Shapes
    } else if x < w.shapes + w.bar {
        SceneKind::Bar
    } else if x < w.shapes + w.bar + w.line {
        SceneKind::Line
    } else {
        SceneKind::Math
    }
}

/// One generated scene: its samples and its image (with the path the samples use).
pub struct Scene {
    pub samples: Vec<Sample>,
    pub image: Option<(String, RgbImage)>,
}

/// The generator: configuration plus the loaded stock series.
pub struct Synth {
    cfg: SynthConfig,
    stocks: Option<Stocks>,
    /// `(kind, index of the scene's first sample, samples it contributes)` per scene.
    plan: Vec<(SceneKind, usize, usize)>,
}

impl Synth {
    pub fn new(cfg: SynthConfig) -> Result<Synth, SynthError> {
        let w = cfg.scenes;
        let weights = [w.shapes, w.bar, w.line, w.math];
        if weights.iter().any(|x| !x.is_finite() || *x < 0.0) || weights.iter().sum::<f64>() <= 0.0
        {
            return Err(SynthError::Config(format!(
                "scene weights must be non-negative with a positive sum, got {w:?}"
            )));
        }
        let stocks = match &cfg.stocks {
            Some(path) => Some(Stocks::load(path).map_err(|source| SynthError::Stocks {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        // Planning draws only each scene's kind, so it is cheap and sequential; rendering (the
        // expensive part) runs in parallel and redraws the same kind from the same stream.
        let mut plan = Vec::new();
        let mut next = 0usize;
        let mut index = 0u64;
        while next < cfg.count {
            let kind = draw_kind(&mut scene_rng(cfg.seed, index), &cfg.scenes);
            let n = kind.questions().min(cfg.count - next);
            plan.push((kind, next, n));
            next += n;
            index += 1;
        }
        Ok(Synth { cfg, stocks, plan })
    }

    pub fn scenes(&self) -> usize {
        self.plan.len()
    }

    /// Generates scene `index` (`0..scenes()`).
    pub fn scene(&self, index: usize) -> Scene {
        let (kind, first, n) = self.plan[index];
        let mut rng = scene_rng(self.cfg.seed, index as u64);
        let _ = draw_kind(&mut rng, &self.cfg.scenes);
        let image_path = format!("images/{:03}/{:07}.png", index / 1000, index);
        let (image, questions, source) = match kind {
            SceneKind::Shapes => {
                let (img, qs) = shapes::scene(&mut rng);
                (Some(img), qs, "synth-shapes")
            }
            SceneKind::Bar | SceneKind::Line => {
                let (img, qs, real) =
                    charts::scene(&mut rng, self.stocks.as_ref(), kind == SceneKind::Line);
                (
                    Some(img),
                    qs,
                    if real { "synth-stocks" } else { "synth-chart" },
                )
            }
            SceneKind::Math => (None, vec![math::problem(&mut rng)], "synth-math"),
        };
        let size = image.as_ref().map(|i| [i.width(), i.height()]);
        let samples = questions
            .into_iter()
            .take(n)
            .enumerate()
            .map(|(k, q)| {
                let mut meta = Map::new();
                meta.insert("template".into(), json!(q.template));
                meta.insert("scene".into(), json!(index));
                Sample {
                    id: format!("synth-{}-{:07}", self.cfg.seed, first + k),
                    source: source.to_string(),
                    task: q.task,
                    images: image
                        .as_ref()
                        .map(|_| vec![image_path.clone()])
                        .unwrap_or_default(),
                    problem: q.problem,
                    answer: q.answer,
                    choices: q.choices,
                    frame: q.grounding.map(|_| Frame::Abs),
                    pred_frame: None,
                    image_size: size,
                    reward: None,
                    meta,
                }
            })
            .collect();
        Scene {
            samples,
            image: image.map(|i| (image_path, i)),
        }
    }

    /// Writes `samples.jsonl`, the images and `synth.json` under `out`.
    pub fn write(&self, out: &Path, progress: &ProgressBar) -> Result<SynthSummary, SynthError> {
        std::fs::create_dir_all(out.join("images")).map_err(io_err(out))?;
        progress.set_length(self.plan.len() as u64);
        // Chunks bound the memory held at once (encoded PNGs are small; samples are kept).
        let mut samples_out = BufWriter::new(
            std::fs::File::create(out.join("samples.jsonl"))
                .map_err(io_err(&out.join("samples.jsonl")))?,
        );
        let mut summary = SynthSummary {
            scenes: self.plan.len(),
            real_chart_numbers: self.stocks.is_some(),
            ..Default::default()
        };
        for chunk_start in (0..self.plan.len()).step_by(4096) {
            let end = (chunk_start + 4096).min(self.plan.len());
            let scenes: Vec<Result<Vec<Sample>, SynthError>> = (chunk_start..end)
                .into_par_iter()
                .map(|i| {
                    let scene = self.scene(i);
                    if let Some((rel, img)) = &scene.image {
                        let path = out.join(rel);
                        if let Some(dir) = path.parent() {
                            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
                        }
                        let png = mixed_r1_plot::encode_png(img)?;
                        std::fs::write(&path, png).map_err(io_err(&path))?;
                    }
                    progress.inc(1);
                    Ok(scene.samples)
                })
                .collect();
            for scene in scenes {
                let samples = scene?;
                if samples.first().is_some_and(|s| !s.images.is_empty()) {
                    summary.images += 1;
                }
                for s in samples {
                    *summary
                        .per_task
                        .entry(s.task.as_str().to_string())
                        .or_default() += 1;
                    *summary.per_source.entry(s.source.clone()).or_default() += 1;
                    summary.samples += 1;
                    serde_json::to_writer(&mut samples_out, &s).map_err(|e| SynthError::Io {
                        path: out.join("samples.jsonl"),
                        source: e.into(),
                    })?;
                    samples_out.write_all(b"\n").map_err(io_err(out))?;
                }
            }
        }
        samples_out.flush().map_err(io_err(out))?;
        let manifest = json!({"config": self.cfg, "summary": summary});
        let path = out.join("synth.json");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&manifest).unwrap() + "\n",
        )
        .map_err(io_err(&path))?;
        progress.finish_and_clear();
        Ok(summary)
    }
}

/// Generates `cfg.count` samples into `out` (see the module documentation).
pub fn generate(
    cfg: &SynthConfig,
    out: &Path,
    progress: &ProgressBar,
) -> Result<SynthSummary, SynthError> {
    Synth::new(cfg.clone())?.write(out, progress)
}

/// The configuration a previous run recorded in `out/synth.json`, if any: a build reuses the
/// folder when it matches instead of rendering again.
pub fn previous_config(out: &Path) -> Option<SynthConfig> {
    let text = std::fs::read_to_string(out.join("synth.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(v.get("config")?.clone()).ok()
}
