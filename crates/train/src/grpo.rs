//! The GRPO trainer: rollouts from the policy, the mixed reward, group advantages, the clipped
//! objective with an optional KL to a frozen reference, `mu` optimisation passes over each
//! batch, gradient accumulation, AdamW with warm-up + cosine and grad-norm clipping;
//! checkpoints that resume exactly; metrics to JSONL / TensorBoard and PNG plots.
//!
//! Determinism: the data order of epoch `e` is a shuffle seeded by `(seed, e)` and the sampling
//! seed of step `s` is a function of `(seed, s)`, so a run resumed from a checkpoint draws the
//! same prompts and the same tokens as an uninterrupted one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::TrainConfig;
use anyhow::{bail, Context, Result};
use candle_core::{Tensor, Var};
use mixed_r1_data::prompt::PromptTemplate;
use mixed_r1_data::Sample;
use mixed_r1_grpo::advantage::{AdvantageInput, AdvantageRegistry, Groups};
use mixed_r1_grpo::checkpoint::{
    latest_checkpoint, load_checkpoint, save_checkpoint, CheckpointData, RngState, TrainerState,
};
use mixed_r1_grpo::loss::{LossInputs, PolicyLossRegistry};
use mixed_r1_grpo::metrics::MetricsLogger;
use mixed_r1_grpo::optim::{clip_grad_norm, AdamW, GradAccumulator};
use mixed_r1_grpo::sampling::{keeps, reward_std};
use mixed_r1_model::generate::SamplingConfig;
use mixed_r1_model::logprobs::{completion_logprobs, Sequence};
use mixed_r1_model::lora::LoraConfig;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_reward::Scorer;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::prompts::PromptMaker;
use crate::rollout::{rollout, Group};

/// What one step did (also written to metrics.jsonl).
#[derive(Debug, Clone)]
pub struct StepReport {
    pub step: u64,
    pub metrics: BTreeMap<String, f64>,
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub policy: Model,
    reference: Option<Model>,
    opt: AdamW,
    /// What the optimizer updates (the f32 masters in mixed precision).
    vars: Vec<Var>,
    /// The trainable weights the forward uses, whose gradients backward returns.
    work_vars: Vec<Var>,
    scorer: Scorer,
    maker: PromptMaker,
    samples: Vec<Sample>,
    epoch: u64,
    cursor: usize,
    order: Vec<usize>,
    pub step: u64,
    logger: MetricsLogger,
    records: Vec<Value>,
    advantages: AdvantageRegistry,
    losses: PolicyLossRegistry,
}

/// The model crate's LoRA settings for a run (the adapters' init is seeded by the run's seed).
pub fn lora_config(cfg: &TrainConfig) -> LoraConfig {
    let l = &cfg.lora;
    LoraConfig {
        rank: l.rank,
        alpha: l.alpha,
        dropout: l.dropout,
        targets: l.targets.clone(),
        vision: l.vision,
        rslora: l.rslora,
        seed: cfg.seed,
    }
}

/// Where a LoRA run keeps its base model: written once at the start, so a resumed run (and
/// PEFT, through `base_model_name_or_path`) puts the checkpoint's adapters on the same weights.
pub fn lora_base_dir(cfg: &TrainConfig) -> PathBuf {
    cfg.output_dir.join("base")
}

/// The working dtype `model.dtype` names.
pub fn run_dtype(cfg: &TrainConfig) -> Result<candle_core::DType> {
    Ok(LoadOptions::default()
        .with_dtype_name(&cfg.model.dtype)?
        .dtype)
}

/// Mixed precision and gradient checkpointing as the config asks: a half-precision
/// `model.dtype` gives the trainable weights f32 masters (the policy's weights, whatever dtype
/// they were loaded in, become the working copy in that dtype).
pub fn prepare_precision(cfg: &TrainConfig, policy: &mut Model) -> Result<()> {
    let dtype = run_dtype(cfg)?;
    if policy.master_weights().is_none() {
        policy
            .enable_master_weights(dtype)
            .context("setting up the f32 master weights")?;
    }
    policy.set_gradient_checkpointing(cfg.gradient_checkpointing);
    Ok(())
}

fn epoch_order(n: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0xA076_1D64_78BD_642F));
        order.shuffle(&mut rng);
    }
    order
}

impl Trainer {
    /// A fresh run. `policy` is the starting model (from a folder, a tiny config or SFT).
    pub fn new(
        cfg: TrainConfig,
        mut policy: Model,
        samples: Vec<Sample>,
        template: PromptTemplate,
    ) -> Result<Trainer> {
        cfg.validate()?;
        anyhow::ensure!(!samples.is_empty(), "the training set is empty");
        if cfg.freeze_vision && policy.config.takes_images() {
            policy.freeze_vision()?;
        }
        if cfg.uses_lora() {
            if policy.lora().is_none() {
                policy
                    .add_lora(&lora_config(&cfg))
                    .context("adding the LoRA adapters")?;
            }
            prepare_precision(&cfg, &mut policy)?;
            let base = lora_base_dir(&cfg);
            policy
                .save(&base)
                .with_context(|| format!("saving the base model to {}", base.display()))?;
        }
        prepare_precision(&cfg, &mut policy)?;
        // With LoRA the reference is the policy with its adapters off: no second copy.
        let reference = if cfg.needs_reference() && !cfg.uses_lora() {
            let r = policy.reference_copy()?;
            // Kept on disk so a resumed run compares with the same reference.
            r.save(&cfg.output_dir.join("reference"))
                .context("saving the reference policy")?;
            Some(r)
        } else {
            None
        };
        std::fs::create_dir_all(&cfg.output_dir)
            .with_context(|| format!("creating {}", cfg.output_dir.display()))?;
        std::fs::write(cfg.output_dir.join("train.toml"), cfg.to_toml_string()?)
            .context("writing train.toml")?;
        let logger = MetricsLogger::open(&cfg.output_dir, None, cfg.tensorboard)?;
        Self::assemble(
            cfg,
            policy,
            reference,
            samples,
            template,
            logger,
            0,
            Vec::new(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        cfg: TrainConfig,
        policy: Model,
        reference: Option<Model>,
        samples: Vec<Sample>,
        template: PromptTemplate,
        logger: MetricsLogger,
        step: u64,
        records: Vec<Value>,
    ) -> Result<Trainer> {
        let opt = AdamW::new(policy.optimizer_params(), cfg.adamw_config())?
            .with_schedule(cfg.lr_schedule());
        let vars = opt.vars();
        let work_vars = policy
            .params()
            .trainable()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        // Predicted boxes are read in the frame the policy writes them (InternVL: rel1000)
        // unless the config names one; the saved config keeps what the user wrote.
        let mut reward = cfg.reward.clone();
        mixed_r1_model::box_frame::follow_model_frame(&mut reward, &policy);
        let scorer = Scorer::new(reward.clone())
            .map_err(|e| anyhow::anyhow!("setting up the rewards: {e}"))?;
        let maker = PromptMaker::new(template, reward);
        let order = epoch_order(samples.len(), cfg.seed, 0, cfg.data.shuffle);
        let advantages = AdvantageRegistry::builtin();
        advantages.get(&cfg.adv_estimator)?;
        let losses = PolicyLossRegistry::builtin();
        losses.get(&cfg.loss)?;
        Ok(Trainer {
            cfg,
            policy,
            reference,
            opt,
            vars,
            work_vars,
            scorer,
            maker,
            samples,
            epoch: 0,
            cursor: 0,
            order,
            step,
            logger,
            records,
            advantages,
            losses,
        })
    }

    /// Continues the run in `cfg.output_dir` from its latest checkpoint.
    pub fn resume(
        cfg: TrainConfig,
        samples: Vec<Sample>,
        template: PromptTemplate,
        opts: &LoadOptions,
    ) -> Result<Trainer> {
        Self::resume_with(cfg, samples, template, opts, false)
    }

    /// [`Trainer::resume`]; with `allow_changes`, a config that differs from the run's saved
    /// `train.toml` in keys that change the run is accepted (and the differences logged)
    /// instead of refused.
    pub fn resume_with(
        cfg: TrainConfig,
        samples: Vec<Sample>,
        template: PromptTemplate,
        opts: &LoadOptions,
        allow_changes: bool,
    ) -> Result<Trainer> {
        let dir = latest_checkpoint(&cfg.output_dir)?
            .with_context(|| format!("no checkpoint to resume in {}", cfg.output_dir.display()))?;
        let saved_path = cfg.output_dir.join("train.toml");
        if saved_path.is_file() {
            let text = std::fs::read_to_string(&saved_path)
                .with_context(|| format!("reading {}", saved_path.display()))?;
            let saved: TrainConfig = toml::from_str(&text).with_context(|| {
                format!("reading the saved run config {}", saved_path.display())
            })?;
            let changes = cfg.resume_changes(&saved)?;
            if !changes.is_empty() {
                let list = changes.join("\n  ");
                if !allow_changes {
                    anyhow::bail!(
                        "the config differs from the one this run was started with ({}) in keys \
                         that change the run:\n  {list}\nresume with the saved config, start a new \
                         output_dir, or pass --allow-config-change to continue anyway",
                        saved_path.display()
                    );
                }
                eprintln!("warning: resuming with a changed config:\n  {list}");
            }
            // The resumed run's config is the one saved from now on.
            std::fs::write(&saved_path, cfg.to_toml_string()?)
                .with_context(|| format!("writing {}", saved_path.display()))?;
        }
        // A half-precision run saved its f32 masters: load those in f32 (the working copy is
        // rounded from them below), so the run continues exactly.
        let policy_opts = LoadOptions {
            dtype: candle_core::DType::F32,
            ..opts.clone()
        };
        let policy_opts = if run_dtype(&cfg)? == candle_core::DType::F32 {
            opts
        } else {
            &policy_opts
        };
        let mut policy = if cfg.uses_lora() {
            let base = lora_base_dir(&cfg);
            let mut m = Model::load(&base, policy_opts)
                .with_context(|| format!("loading the base model from {}", base.display()))?;
            m.load_adapter(&dir)
                .with_context(|| format!("loading the LoRA adapters from {}", dir.display()))?;
            m
        } else {
            Model::load(&dir, policy_opts)
                .with_context(|| format!("loading the policy from {}", dir.display()))?
        };
        if cfg.freeze_vision && policy.config.takes_images() && !cfg.uses_lora() {
            policy.freeze_vision()?;
        }
        prepare_precision(&cfg, &mut policy)?;
        let reference = if cfg.needs_reference() && !cfg.uses_lora() {
            let r = Model::load(&cfg.output_dir.join("reference"), opts)
                .context("loading the saved reference policy")?;
            Some(r.reference_copy()?)
        } else {
            None
        };
        // The step first (to cut metrics.jsonl back to it), then the optimizer state.
        let step = load_checkpoint(&dir, None)?.state.step;
        let logger = MetricsLogger::open(&cfg.output_dir, Some(step), cfg.tensorboard)?;
        let mut probe = Trainer::assemble(
            cfg.clone(),
            policy,
            reference,
            samples,
            template,
            logger,
            step,
            Vec::new(),
        )?;
        let loaded = load_checkpoint(&dir, Some(&mut probe.opt))?;
        probe.records = loaded.metrics;
        probe.epoch = loaded.state.extra["epoch"].as_u64().unwrap_or(0);
        probe.cursor = loaded.state.extra["cursor"].as_u64().unwrap_or(0) as usize;
        probe.order = epoch_order(probe.samples.len(), cfg.seed, probe.epoch, cfg.data.shuffle);
        Ok(probe)
    }

    /// The next `n` sample indices, epoch after epoch.
    fn next_indices(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if self.cursor == self.order.len() {
                self.epoch += 1;
                self.cursor = 0;
                self.order = epoch_order(
                    self.samples.len(),
                    self.cfg.seed,
                    self.epoch,
                    self.cfg.data.shuffle,
                );
            }
            out.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        out
    }

    fn sampling(&self, round: u64) -> SamplingConfig {
        SamplingConfig {
            max_new_tokens: self.cfg.max_completion_len,
            temperature: self.cfg.temperature as f32,
            top_p: self.cfg.top_p as f32,
            top_k: self.cfg.top_k,
            seed: self.cfg.seed ^ (self.step * 1_000 + round).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            stop_token_ids: Vec::new(),
            ignore_eos: false,
            // A sampled image pad would ask the next forward for an image that is not there.
            banned_token_ids: self.policy.vision_token_ids(),
        }
    }

    /// Rolls out `n` new prompts.
    fn rollout_prompts(&mut self, n: usize, round: u64) -> Result<(Vec<Group>, usize)> {
        let mut items = Vec::with_capacity(n);
        let mut too_long = 0;
        // Prompts over the length limit are skipped (and counted), not truncated: a cut
        // question has no right answer.
        let mut attempts = 0;
        while items.len() < n && attempts < 4 * n + 8 {
            attempts += 1;
            let idx = self.next_indices(1)[0];
            let prompt = self.maker.prompt(&self.policy, &self.samples[idx])?;
            if prompt.ids.len() > self.cfg.max_prompt_len {
                too_long += 1;
                continue;
            }
            items.push((idx, prompt));
        }
        let refs: Vec<(usize, &Sample, _)> = items
            .into_iter()
            .map(|(i, p)| (i, &self.samples[i], p))
            .collect();
        let groups = rollout(
            &self.policy,
            &self.scorer,
            &refs,
            self.cfg.group_size,
            &self.sampling(round),
        )?;
        Ok((groups, too_long))
    }

    /// One training step: rollouts (with dynamic-sampling refills), advantages, `mu` passes.
    pub fn train_step(&mut self) -> Result<StepReport> {
        let t0 = Instant::now();
        let want = self.cfg.batch_prompts;
        let mut kept: Vec<Group> = Vec::new();
        let mut seen: Vec<Group> = Vec::new();
        let mut too_long = 0;
        let rounds = if self.cfg.dynamic_sampling {
            1 + self.cfg.max_refill_rounds
        } else {
            1
        };
        for round in 0..rounds as u64 {
            let (groups, skipped) = self.rollout_prompts(want - kept.len(), round)?;
            too_long += skipped;
            for g in groups {
                if !self.cfg.dynamic_sampling || keeps(&g.rewards, self.cfg.std_floor) {
                    kept.push(g.clone());
                }
                seen.push(g);
            }
            if kept.len() >= want {
                break;
            }
        }
        let rollout_s = t0.elapsed().as_secs_f64();
        let mut m = rollout_metrics(&seen, &kept);
        m.insert("prompts/too_long".into(), too_long as f64);

        let t1 = Instant::now();
        if !kept.is_empty() {
            self.optimise(&kept, &mut m)?;
        } else {
            m.insert("train/skipped_no_signal".into(), 1.0);
        }
        let train_s = t1.elapsed().as_secs_f64();
        self.step += 1;
        let tokens: usize = seen
            .iter()
            .flat_map(|g| {
                g.completions
                    .iter()
                    .map(|c| c.tokens.len() + g.prompt.ids.len())
            })
            .sum();
        let total = t0.elapsed().as_secs_f64();
        m.insert("time/step_s".into(), total);
        m.insert("time/rollout_s".into(), rollout_s);
        m.insert("time/train_s".into(), train_s);
        m.insert("perf/tokens_per_s".into(), tokens as f64 / total.max(1e-9));
        m.insert("lr".into(), self.opt.learning_rate());
        m.insert("epoch".into(), self.epoch as f64);
        self.logger.log(self.step, &m)?;
        let mut rec = serde_json::Map::new();
        rec.insert("step".into(), json!(self.step));
        for (k, v) in &m {
            rec.insert(k.clone(), json!(v));
        }
        self.records.push(Value::Object(rec));
        if self.cfg.save_every > 0 && self.step % self.cfg.save_every as u64 == 0 {
            self.save()?;
        }
        Ok(StepReport {
            step: self.step,
            metrics: m,
        })
    }

    fn optimise(&mut self, groups: &[Group], m: &mut BTreeMap<String, f64>) -> Result<()> {
        let sizes: Vec<usize> = groups.iter().map(|g| g.completions.len()).collect();
        let rewards: Vec<f32> = groups.iter().flat_map(|g| g.rewards.clone()).collect();
        let components: Vec<Vec<f32>> = vec![
            groups
                .iter()
                .flat_map(|g| g.completions.iter().map(|c| c.format))
                .collect(),
            groups
                .iter()
                .flat_map(|g| g.completions.iter().map(|c| c.accuracy.unwrap_or(0.0)))
                .collect(),
        ];
        let grouping = Groups::from_sizes(&sizes);
        let input = AdvantageInput::new(&rewards, &grouping).with_components(&components);
        let adv = self.advantages.compute(
            &self.cfg.adv_estimator,
            &input,
            &self.cfg.advantage_config(),
        )?;
        m.insert(
            "advantage/abs_mean".into(),
            adv.iter().map(|a| a.abs() as f64).sum::<f64>() / adv.len().max(1) as f64,
        );

        let mut seqs = Vec::new();
        let mut old = Vec::new();
        for g in groups {
            for c in &g.completions {
                seqs.push(Sequence {
                    prompt: g.prompt.ids.clone(),
                    completion: c.tokens.clone(),
                    images: g.prompt.images.clone(),
                });
                old.push(c.logprobs.clone());
            }
        }
        let dev = self.policy.device().clone();
        let temp = self.cfg.temperature as f32;
        let n = seqs.len();
        let accum = self.cfg.grad_accum.max(1).min(n);
        let per = n.div_ceil(accum);
        let total_tokens: f64 = seqs.iter().map(|s| s.completion.len().max(1) as f64).sum();
        let loss_cfg = self.cfg.loss_config();
        let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
        let mut evals = 0f64;
        let lora_kl = self.cfg.uses_lora() && self.cfg.needs_reference();
        for pass in 0..self.cfg.mu.max(1) {
            let mut acc = GradAccumulator::new(self.work_vars.clone());
            for start in (0..n).step_by(per) {
                let end = (start + per).min(n);
                let mb = &seqs[start..end];
                // Dropout masks are a function of (seed, step, pass, micro-batch): resumable.
                self.policy.reseed_lora_dropout(
                    self.cfg.seed
                        ^ (self.step.wrapping_mul(1 << 20) + (pass as u64) * 4096 + start as u64)
                            .wrapping_mul(0xD6E8_FEB8_6659_FD93),
                );
                let out = completion_logprobs(&self.policy, mb, temp, true, true)?;
                let c = out.logprobs.dim(1)?;
                let pad = |rows: &[Vec<f32>]| -> Result<Tensor> {
                    let mut flat = Vec::with_capacity(rows.len() * c);
                    for r in rows {
                        flat.extend(r.iter().copied().take(c));
                        flat.extend(std::iter::repeat_n(0f32, c - r.len().min(c)));
                    }
                    Ok(Tensor::from_vec(flat, (rows.len(), c), &dev)?)
                };
                let old_t = pad(&old[start..end])?;
                let ref_t = match &self.reference {
                    Some(r) => Some(completion_logprobs(r, mb, temp, false, false)?.logprobs),
                    None if lora_kl => Some(
                        self.policy
                            .with_adapters_disabled(|base| {
                                completion_logprobs(base, mb, temp, false, false)
                            })?
                            .logprobs,
                    ),
                    None => None,
                };
                let adv_t = Tensor::from_slice(&adv[start..end], end - start, &dev)?;
                let mut inputs = LossInputs::new(&out.logprobs, &adv_t, &out.mask);
                inputs.old_logp = Some(&old_t);
                inputs.ref_logp = ref_t.as_ref();
                inputs.entropy = out.entropy.as_ref();
                inputs.global_tokens = Some(total_tokens);
                inputs.global_seqs = Some(n as f64);
                let lo = self.losses.compute(&self.cfg.loss, &inputs, &loss_cfg)?;
                acc.add(self.policy.backward(&lo.loss)?)?;
                let w = (end - start) as f64 / n as f64;
                let lm = &lo.metrics;
                *sums.entry("loss").or_default() += lm.loss;
                *sums.entry("pg_loss").or_default() += lm.pg_loss;
                *sums.entry("kl").or_default() += lm.kl.unwrap_or(0.0) * w;
                *sums.entry("clip_frac").or_default() += lm.clip_frac * w;
                *sums.entry("approx_kl").or_default() += lm.approx_kl * w;
                *sums.entry("ratio_mean").or_default() += lm.ratio_mean * w;
                *sums.entry("entropy").or_default() += lm.entropy.unwrap_or(0.0) * w;
            }
            // Onto the f32 masters in mixed precision (the accumulator summed in f32).
            let mut grads = self.policy.optimizer_grads(acc.grads())?;
            let norm = clip_grad_norm(&mut grads, &self.vars, self.cfg.max_grad_norm)?;
            *sums.entry("grad_norm").or_default() += norm;
            self.opt.step(&grads)?;
            self.policy.sync_master_weights()?;
            evals += 1.0;
        }
        for (k, v) in sums {
            m.insert(format!("train/{k}"), v / evals);
        }
        Ok(())
    }

    /// Writes `checkpoint-<step>/` atomically (weights + optimizer + data cursor + metrics).
    pub fn save(&self) -> Result<PathBuf> {
        let rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        let mut state = TrainerState::new(self.step, RngState::from_chacha8(&rng));
        state.extra = json!({"epoch": self.epoch, "cursor": self.cursor});
        let keep = if self.cfg.keep_last == 0 {
            None
        } else {
            Some(self.cfg.keep_last)
        };
        let dir = save_checkpoint(
            &self.cfg.output_dir,
            &CheckpointData {
                state: &state,
                optimizer: Some(&self.opt),
                metrics: &self.records,
            },
            |dir: &Path| {
                if self.cfg.uses_lora() {
                    let base = std::path::absolute(lora_base_dir(&self.cfg))
                        .unwrap_or_else(|_| lora_base_dir(&self.cfg));
                    self.policy
                        .save_adapter(dir, Some(&base.display().to_string()))
                } else {
                    self.policy.save(dir)
                }
            },
            keep,
        )?;
        Ok(dir)
    }

    /// Runs until `total_steps`, calling `on_step` after each; saves at the end and draws the
    /// per-task reward plots.
    pub fn train(&mut self, mut on_step: impl FnMut(&StepReport)) -> Result<PathBuf> {
        if self.step as usize >= self.cfg.total_steps {
            bail!(
                "the run is already at step {} of {}",
                self.step,
                self.cfg.total_steps
            );
        }
        let remaining = self.cfg.total_steps - self.step as usize;
        let dir = self.train_for(remaining, &mut on_step)?;
        self.plots()?;
        Ok(dir)
    }

    /// Runs at most `steps` steps (never past `total_steps`) and saves a checkpoint: a run
    /// can be split across processes and resumed with [`Trainer::resume`].
    pub fn train_for(
        &mut self,
        steps: usize,
        mut on_step: impl FnMut(&StepReport),
    ) -> Result<PathBuf> {
        let stop = (self.step as usize + steps).min(self.cfg.total_steps);
        while (self.step as usize) < stop {
            let r = self.train_step()?;
            on_step(&r);
        }
        self.save()
    }

    /// PNG plots of reward and accuracy per task over steps, in `<output_dir>/plots/`.
    pub fn plots(&self) -> Result<Vec<PathBuf>> {
        let dir = self.cfg.output_dir.join("plots");
        std::fs::create_dir_all(&dir)?;
        let mut out = Vec::new();
        for metric in ["reward", "accuracy", "format"] {
            let path = dir.join(format!("{metric}_per_task.png"));
            mixed_r1_grpo::plot::plot_metric_per_task(&self.records, metric, &path)?;
            out.push(path);
        }
        Ok(out)
    }

    pub fn records(&self) -> &[Value] {
        &self.records
    }
}

/// Reward, accuracy and format per task and overall; lengths; zero-variance groups.
fn rollout_metrics(seen: &[Group], kept: &[Group]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut per: BTreeMap<&str, (f64, f64, f64, f64, f64)> = BTreeMap::new();
    let (mut n, mut rsum, mut r2, mut fsum, mut len, mut trunc) =
        (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    let mut zero_std = 0;
    for g in seen {
        if reward_std(&g.rewards) == 0.0 {
            zero_std += 1;
        }
        let e = per.entry(g.task.as_str()).or_default();
        for (c, r) in g.completions.iter().zip(&g.rewards) {
            let r = *r as f64;
            n += 1.0;
            rsum += r;
            r2 += r * r;
            fsum += c.format as f64;
            len += c.tokens.len() as f64;
            trunc += f64::from(!c.stopped);
            e.0 += r;
            e.1 += c.accuracy.unwrap_or(0.0) as f64;
            e.2 += c.format as f64;
            e.3 += 1.0;
            e.4 += f64::from(c.accuracy.is_some());
        }
    }
    if n > 0.0 {
        let mean = rsum / n;
        m.insert("reward/mean".into(), mean);
        m.insert("reward/std".into(), (r2 / n - mean * mean).max(0.0).sqrt());
        m.insert("format/mean".into(), fsum / n);
        m.insert("response/length_mean".into(), len / n);
        m.insert("response/truncated_frac".into(), trunc / n);
    }
    let mut acc_all = (0.0, 0.0);
    for (task, (r, a, f, k, scored)) in per {
        m.insert(format!("reward/{task}"), r / k);
        m.insert(format!("format/{task}"), f / k);
        if scored > 0.0 {
            m.insert(format!("accuracy/{task}"), a / scored);
            acc_all.0 += a;
            acc_all.1 += scored;
        }
    }
    if acc_all.1 > 0.0 {
        m.insert("accuracy/mean".into(), acc_all.0 / acc_all.1);
    }
    m.insert("groups/seen".into(), seen.len() as f64);
    m.insert("groups/kept".into(), kept.len() as f64);
    m.insert(
        "groups/zero_std_share".into(),
        if seen.is_empty() {
            0.0
        } else {
            zero_std as f64 / seen.len() as f64
        },
    );
    m
}
