//! The eval run: load the data, render prompts, ask the responder in batches, score, append to
//! `samples.jsonl`, and compute the results from that file.
//!
//! Output folder:
//!
//! | file | what |
//! |---|---|
//! | `samples.jsonl` | every evaluated sample: prompt, gold, responses, scores (appended per batch) |
//! | `fingerprint.json` | the settings the samples were made with; a resumed run must match |
//! | `runs.jsonl` | one line per invocation: wall time, samples done, generation / scoring time |
//! | `results.json` | [`Results`]: counts, metrics per task / source / both / overall, skips, timing |
//! | `results.md` | the same as tables |
//! | `charts/<task>.png`, `charts/overview.png` | bar charts |
//!
//! **Resume.** Records are flushed after each batch. A rerun of the same command reads
//! `samples.jsonl`, cuts off a torn last line, skips the ids already there and evaluates the
//! rest; the results are always computed from the file, in data order, so an interrupted and
//! resumed run gives the same metrics as one uninterrupted run (given a responder whose outputs
//! do not depend on batch composition; see [`Responder`]). A rerun with different settings
//! (responder, data content, n, seed, generation, prompt, reward, threshold) is refused, naming
//! what differs; `batch_size` and `limit` may change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::EvalConfig;
use crate::data::{load_data, EvalData, EvalSample, SkipKind, Skipped};
use crate::metrics::{pass_ks, Accumulator};
use crate::record::{read_records, RecordWriter, SampleRecord};
use crate::report::{markdown, Counts, Results, Timing, RESULTS_VERSION};
use crate::responder::{EvalPrompt, Responder};
use crate::score::{EvalScorer, ScoredResponse};
use crate::seed::sample_seed;

/// How to run (what does not change the results).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Data files (any format `mixed-r1 data` reads).
    pub data: Vec<PathBuf>,
    /// The output folder.
    pub out: PathBuf,
    /// Evaluate only the first `limit` usable samples (the rest stay for a later run).
    pub limit: Option<usize>,
    /// Discard a previous run in `out` instead of resuming it.
    pub overwrite: bool,
    /// A progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Write PNG charts.
    pub charts: bool,
}

/// The files of an output folder.
#[derive(Debug, Clone)]
pub struct OutPaths {
    pub dir: PathBuf,
    pub samples: PathBuf,
    pub fingerprint: PathBuf,
    pub runs: PathBuf,
    pub results_json: PathBuf,
    pub results_md: PathBuf,
    pub charts: PathBuf,
}

impl OutPaths {
    pub fn new(dir: &Path) -> OutPaths {
        OutPaths {
            dir: dir.to_path_buf(),
            samples: dir.join("samples.jsonl"),
            fingerprint: dir.join("fingerprint.json"),
            runs: dir.join("runs.jsonl"),
            results_json: dir.join("results.json"),
            results_md: dir.join("results.md"),
            charts: dir.join("charts"),
        }
    }

    fn clear(&self) -> Result<()> {
        for f in [
            &self.samples,
            &self.fingerprint,
            &self.runs,
            &self.results_json,
            &self.results_md,
        ] {
            match fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", f.display())),
            }
        }
        if self.charts.is_dir() {
            fs::remove_dir_all(&self.charts)
                .with_context(|| format!("cannot remove {}", self.charts.display()))?;
        }
        Ok(())
    }
}

/// The settings that decide what a sample's record holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub version: u32,
    pub responder: String,
    /// Content hashes of the data files, in order.
    pub data: Vec<String>,
    pub n: usize,
    pub seed: u64,
    pub open_ended_threshold: f64,
    pub generation: Value,
    pub prompt: Value,
    pub reward: Value,
}

impl Fingerprint {
    pub fn new(cfg: &EvalConfig, responder: &str, data: &EvalData) -> Fingerprint {
        let cfg = cfg.resolved();
        Fingerprint {
            version: RESULTS_VERSION,
            responder: responder.to_string(),
            data: data.files.iter().map(|f| f.hash.clone()).collect(),
            n: cfg.n,
            seed: cfg.seed,
            open_ended_threshold: cfg.open_ended_threshold,
            generation: serde_json::to_value(&cfg.generation).unwrap_or(Value::Null),
            prompt: serde_json::to_value(&cfg.prompt).unwrap_or(Value::Null),
            reward: serde_json::to_value(&cfg.reward).unwrap_or(Value::Null),
        }
    }

    /// The fields that differ from `other`.
    pub fn differences(&self, other: &Fingerprint) -> Vec<&'static str> {
        let mut d = Vec::new();
        let mut check = |name, same: bool| {
            if !same {
                d.push(name);
            }
        };
        check("version", self.version == other.version);
        check("responder", self.responder == other.responder);
        check("data", self.data == other.data);
        check("n", self.n == other.n);
        check("seed", self.seed == other.seed);
        check(
            "open_ended_threshold",
            self.open_ended_threshold == other.open_ended_threshold,
        );
        check("generation", self.generation == other.generation);
        check("prompt", self.prompt == other.prompt);
        check("reward", self.reward == other.reward);
        d
    }
}

/// One line of `runs.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub wall_s: f64,
    pub samples: usize,
    pub generation_s: f64,
    pub scoring_s: f64,
}

/// Checks (or writes) the fingerprint; errors when `out` holds samples made otherwise.
fn check_fingerprint(paths: &OutPaths, fp: &Fingerprint) -> Result<()> {
    let has_samples = fs::metadata(&paths.samples).is_ok_and(|m| m.len() > 0);
    let refuse = |what: String| -> anyhow::Error {
        anyhow::anyhow!(
            "{} holds samples of a run with different settings ({what}); resuming needs the same \
             responder, data, n, seed, generation, prompt and reward settings. Use another --out, \
             or --overwrite to discard the old run",
            paths.dir.display()
        )
    };
    match fs::read_to_string(&paths.fingerprint) {
        Ok(text) => {
            let old: Fingerprint = serde_json::from_str(&text).map_err(|e| {
                refuse(format!(
                    "{} is unreadable: {e}",
                    paths.fingerprint.display()
                ))
            })?;
            let diff = fp.differences(&old);
            if !diff.is_empty() {
                if has_samples {
                    return Err(refuse(format!("differs in: {}", diff.join(", "))));
                }
                write_fingerprint(paths, fp)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if has_samples {
                return Err(refuse(format!(
                    "{} is missing",
                    paths.fingerprint.display()
                )));
            }
            write_fingerprint(paths, fp)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", paths.fingerprint.display())),
    }
}

fn write_fingerprint(paths: &OutPaths, fp: &Fingerprint) -> Result<()> {
    let text = serde_json::to_string_pretty(fp)?;
    fs::write(&paths.fingerprint, text + "\n")
        .with_context(|| format!("cannot write {}", paths.fingerprint.display()))
}

fn progress_bar(len: usize, show: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || len == 0 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "eval {bar:32} {pos}/{len} samples  {per_sec}  eta {eta}  {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Runs an eval (or resumes one) and writes every output. See the module docs.
pub fn run(cfg: &EvalConfig, opts: &RunOptions, responder: &mut dyn Responder) -> Result<Results> {
    let started = Instant::now();
    cfg.validate()?;
    let mut cfg = cfg.resolved();
    // Predicted boxes default to the frame the model writes (the prompt names it too).
    responder.follow_frame(&mut cfg.reward);
    let template = cfg.prompt_template();
    if opts.data.is_empty() {
        bail!("no data: give at least one --data file");
    }
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let paths = OutPaths::new(&opts.out);
    if opts.overwrite {
        paths.clear()?;
    }
    let data = load_data(&opts.data)?;
    let fp = Fingerprint::new(&cfg, &responder.fingerprint(), &data);
    check_fingerprint(&paths, &fp)?;
    let existing = read_records(&paths.samples, true)?;
    let done: HashSet<&str> = existing.records.iter().map(|r| r.id.as_str()).collect();
    let eligible = &data.samples[..opts.limit.unwrap_or(usize::MAX).min(data.samples.len())];
    let todo: Vec<&EvalSample> = eligible
        .iter()
        .filter(|s| !done.contains(s.sample.id.as_str()))
        .collect();
    let scorer = EvalScorer::new(&cfg.reward, cfg.open_ended_threshold)?;

    let mut writer = RecordWriter::append(&paths.samples)?;
    let bar = progress_bar(todo.len(), opts.progress);
    let (mut gen_total, mut score_total) = (0.0f64, 0.0f64);
    let mut finished = existing.records.len();
    for chunk in todo.chunks(cfg.batch_size) {
        let prompts: Vec<EvalPrompt> = chunk
            .iter()
            .map(|s| EvalPrompt {
                id: s.sample.id.clone(),
                system: template.system.clone(),
                text: template.render_for(&s.sample, &cfg.reward),
                images: s.sample.images.iter().map(PathBuf::from).collect(),
                seed: sample_seed(cfg.seed, &s.sample.id),
            })
            .collect();
        let t = Instant::now();
        let answers = responder.respond(&prompts, cfg.n).with_context(|| {
            format!(
                "{} failed; the {finished} samples finished so far are saved in {}: run the same \
                 command again to resume",
                responder.name(),
                paths.samples.display()
            )
        })?;
        let gen_s = t.elapsed().as_secs_f64();
        if answers.len() != chunk.len() {
            bail!(
                "{} returned {} answers for {} prompts",
                responder.name(),
                answers.len(),
                chunk.len()
            );
        }
        let t = Instant::now();
        let scored: Vec<Vec<ScoredResponse>> = chunk
            .par_iter()
            .zip(answers.par_iter())
            .map(|(s, rs)| rs.iter().map(|r| scorer.score(&s.sample, r)).collect())
            .collect();
        let score_s = t.elapsed().as_secs_f64();
        gen_total += gen_s;
        score_total += score_s;
        let share = 1.0 / chunk.len() as f64;
        let records: Vec<SampleRecord> = chunk
            .iter()
            .zip(prompts)
            .zip(scored)
            .map(|((s, p), responses)| SampleRecord {
                id: p.id,
                source: s.sample.source.clone(),
                task: s.sample.task,
                file: s.file.clone(),
                line: s.line,
                system: p.system,
                prompt: p.text,
                images: s.sample.images.clone(),
                answer: s.sample.answer.clone(),
                choices: s.sample.choices.clone(),
                responses,
                generate_s: gen_s * share,
                score_s: score_s * share,
            })
            .collect();
        writer.write_batch(&records)?;
        finished += records.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    drop(writer);
    append_invocation(
        &paths,
        &Invocation {
            wall_s: started.elapsed().as_secs_f64(),
            samples: todo.len(),
            generation_s: gen_total,
            scoring_s: score_total,
        },
    )?;
    let results = summarize(&cfg, &responder.name(), &data, opts.limit, &paths)?;
    write_outputs(&results, &paths, opts.charts)?;
    Ok(results)
}

fn append_invocation(paths: &OutPaths, inv: &Invocation) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.runs)
        .with_context(|| format!("cannot write {}", paths.runs.display()))?;
    let mut line = serde_json::to_vec(inv)?;
    line.push(b'\n');
    f.write_all(&line)
        .with_context(|| format!("cannot write {}", paths.runs.display()))
}

fn read_invocations(path: &Path) -> Vec<Invocation> {
    fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Computes the results from `samples.jsonl` for the data's first `limit` usable samples.
pub fn summarize(
    cfg: &EvalConfig,
    responder: &str,
    data: &EvalData,
    limit: Option<usize>,
    paths: &OutPaths,
) -> Result<Results> {
    let cfg = cfg.resolved();
    let existing = read_records(&paths.samples, false)?;
    let by_id: HashMap<&str, &SampleRecord> = existing
        .records
        .iter()
        .map(|r| (r.id.as_str(), r))
        .collect();
    let eligible = &data.samples[..limit.unwrap_or(usize::MAX).min(data.samples.len())];
    let records: Vec<&SampleRecord> = eligible
        .iter()
        .filter_map(|s| by_id.get(s.sample.id.as_str()).copied())
        .collect();
    let ks = pass_ks(cfg.n);

    let mut overall = Accumulator::default();
    let mut tasks: BTreeMap<String, Accumulator> = BTreeMap::new();
    let mut sources: BTreeMap<String, Accumulator> = BTreeMap::new();
    let mut task_sources: BTreeMap<String, BTreeMap<String, Accumulator>> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut skipped: Vec<Skipped> = data.skipped.clone();
    let mut counts = Counts::default();
    let (mut gen_s, mut score_s) = (0.0, 0.0);
    for r in &records {
        gen_s += r.generate_s;
        score_s += r.score_s;
        if r.responses.is_empty() {
            counts.no_response += 1;
            skipped.push(Skipped {
                kind: SkipKind::NoResponse,
                id: Some(r.id.clone()),
                task: Some(r.task.as_str().to_string()),
                source: Some(r.source.clone()),
                file: r.file.clone(),
                line: r.line,
                reason: format!("{responder} has no response for this sample"),
            });
            continue;
        }
        counts.evaluated += 1;
        if r.responses.iter().all(|x| x.accuracy.is_none()) {
            let why = r
                .responses
                .iter()
                .find_map(|x| x.error.clone())
                .unwrap_or_else(|| "no accuracy".into());
            *reasons
                .entry(format!("{}: {why}", r.task.as_str()))
                .or_default() += 1;
        }
        let task = r.task.as_str().to_string();
        overall.add(r, &ks);
        tasks.entry(task.clone()).or_default().add(r, &ks);
        sources.entry(r.source.clone()).or_default().add(r, &ks);
        task_sources
            .entry(task)
            .or_default()
            .entry(r.source.clone())
            .or_default()
            .add(r, &ks);
    }
    let overall = overall.finish();
    counts.scored = overall.scored;
    counts.not_scored = overall.not_scored;
    for s in &data.skipped {
        match s.kind {
            SkipKind::Invalid => counts.invalid += 1,
            SkipKind::MissingImage => counts.missing_image += 1,
            SkipKind::Duplicate => counts.duplicate += 1,
            SkipKind::NoResponse => counts.no_response += 1,
        }
    }
    // Skips in data order: by file (as given), then line.
    let file_rank: HashMap<&str, usize> = data
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    skipped.sort_by_key(|k| {
        (
            file_rank
                .get(k.file.as_str())
                .copied()
                .unwrap_or(usize::MAX),
            k.line,
        )
    });
    counts.remaining = data.samples.len() - records.len();
    counts.rows = data.samples.len() + data.skipped.len();

    let invocations = read_invocations(&paths.runs);
    let wall_s: f64 = invocations.iter().map(|i| i.wall_s).sum();
    let wall_s = if wall_s > 0.0 {
        wall_s
    } else {
        gen_s + score_s
    };
    let per = |x: f64| (wall_s > 0.0).then(|| x / wall_s);
    let timing = Timing {
        generation_s: gen_s,
        scoring_s: score_s,
        wall_s,
        invocations: invocations.len(),
        samples_per_s: per(records.len() as f64),
        generation_share: per(gen_s),
        scoring_share: per(score_s),
    };
    Ok(Results {
        version: RESULTS_VERSION,
        complete: counts.remaining == 0,
        responder: responder.to_string(),
        data: data.files.clone(),
        config: cfg,
        counts,
        overall,
        tasks: tasks.iter().map(|(k, a)| (k.clone(), a.finish())).collect(),
        sources: sources
            .iter()
            .map(|(k, a)| (k.clone(), a.finish()))
            .collect(),
        task_sources: task_sources
            .iter()
            .map(|(t, by)| {
                (
                    t.clone(),
                    by.iter().map(|(s, a)| (s.clone(), a.finish())).collect(),
                )
            })
            .collect(),
        not_scored_reasons: reasons,
        skipped,
        timing,
    })
}

/// Writes `results.json`, `results.md` and (optionally) the charts.
pub fn write_outputs(r: &Results, paths: &OutPaths, charts: bool) -> Result<()> {
    let json = serde_json::to_string_pretty(r)?;
    fs::write(&paths.results_json, json + "\n")
        .with_context(|| format!("cannot write {}", paths.results_json.display()))?;
    fs::write(&paths.results_md, markdown(r))
        .with_context(|| format!("cannot write {}", paths.results_md.display()))?;
    if charts {
        crate::plot::write_charts(r, &paths.charts)?;
    }
    Ok(())
}
