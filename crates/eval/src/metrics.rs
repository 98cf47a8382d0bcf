//! Aggregate metrics over scored samples: per task, per source, per task and source, overall.
//!
//! | metric | over | definition |
//! |---|---|---|
//! | `accuracy` | responses with an accuracy | mean of the task's accuracy reward |
//! | `relaxed_accuracy` | chart responses | mean chart (ChartQA relaxed) accuracy |
//! | `acc@0.5` | grounding responses | share with continuous IoU >= 0.5 |
//! | `mean_iou` | grounding responses | mean continuous IoU |
//! | `bmas` | open-ended responses with an accuracy | mean BMAS |
//! | `rouge_l` | open-ended responses | mean ROUGE-L F1 ([`crate::rouge`]) |
//! | `format_rate` | responses with a format score | mean format reward (share well formatted) |
//! | `mean_reward` | responses with a reward | mean total reward |
//! | `mean_tokens` | responses with a token count | mean generated tokens |
//! | `mean_chars` | responses | mean length in characters |
//! | `truncation_rate` | responses | share stopped by the token limit |
//! | `pass_at_k` | samples with >= k judged responses | unbiased pass@k (Chen et al. 2021) |
//!
//! Samples are counted once each: `samples` evaluated, `scored` with an accuracy, `not_scored`
//! when their gold cannot be used (or open-ended without an embedding table). Sums run in data
//! order, so the same records always give bit-identical metrics.

use std::collections::BTreeMap;

use mixed_r1_data::Task;
use serde::{Deserialize, Serialize};

use crate::record::SampleRecord;

/// The metrics of one group of samples. Fields that do not apply (no sample of that task in the
/// group, or no value) are `None` and left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub samples: usize,
    pub scored: usize,
    pub not_scored: usize,
    pub responses: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaxed_accuracy: Option<f64>,
    #[serde(default, rename = "acc@0.5", skip_serializing_if = "Option::is_none")]
    pub acc_at_05: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_iou: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmas: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rouge_l: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_reward: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_tokens: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_chars: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation_rate: Option<f64>,
    /// pass@k by k, when samples have more than one response.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pass_at_k: BTreeMap<usize, f64>,
}

impl Metrics {
    /// The named metric (`accuracy`, `acc@0.5`, `pass@4`, `samples`, ...), for reports.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "samples" => self.samples as f64,
            "scored" => self.scored as f64,
            "not_scored" => self.not_scored as f64,
            "responses" => self.responses as f64,
            "accuracy" => self.accuracy?,
            "relaxed_accuracy" => self.relaxed_accuracy?,
            "acc@0.5" => self.acc_at_05?,
            "mean_iou" => self.mean_iou?,
            "bmas" => self.bmas?,
            "rouge_l" => self.rouge_l?,
            "format_rate" => self.format_rate?,
            "mean_reward" => self.mean_reward?,
            "mean_tokens" => self.mean_tokens?,
            "mean_chars" => self.mean_chars?,
            "truncation_rate" => self.truncation_rate?,
            other => {
                let k: usize = other.strip_prefix("pass@")?.parse().ok()?;
                *self.pass_at_k.get(&k)?
            }
        })
    }

    /// Every metric this group has, in report order.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = METRIC_ORDER
            .iter()
            .filter(|n| self.get(n).is_some())
            .map(|n| n.to_string())
            .collect();
        out.extend(self.pass_at_k.keys().map(|k| format!("pass@{k}")));
        out
    }
}

/// Report order of the metrics (pass@k follow).
pub const METRIC_ORDER: [&str; 15] = [
    "samples",
    "scored",
    "not_scored",
    "responses",
    "accuracy",
    "relaxed_accuracy",
    "acc@0.5",
    "mean_iou",
    "bmas",
    "rouge_l",
    "format_rate",
    "mean_reward",
    "mean_tokens",
    "mean_chars",
    "truncation_rate",
];

/// Metrics whose values are shares in [0, 1] (shown as percentages).
pub fn is_rate(name: &str) -> bool {
    !matches!(
        name,
        "samples"
            | "scored"
            | "not_scored"
            | "responses"
            | "mean_tokens"
            | "mean_chars"
            | "mean_reward"
    )
}

/// The headline metrics of a task, in order.
pub fn headline(task: Task) -> &'static [&'static str] {
    match task {
        Task::YesNo | Task::Mcq | Task::Numeric | Task::Math => &["accuracy"],
        Task::Chart => &["relaxed_accuracy"],
        Task::Grounding => &["acc@0.5", "mean_iou"],
        Task::OpenEnded => &["bmas", "rouge_l"],
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Mean {
    sum: f64,
    n: usize,
}

impl Mean {
    fn add(&mut self, v: f64) {
        self.sum += v;
        self.n += 1;
    }

    fn add_opt(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.add(v);
        }
    }

    fn get(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// Accumulates [`Metrics`] over records added in order.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    samples: usize,
    scored: usize,
    not_scored: usize,
    responses: usize,
    accuracy: Mean,
    chart: Mean,
    iou: Mean,
    iou_hit: Mean,
    bmas: Mean,
    rouge: Mean,
    format: Mean,
    reward: Mean,
    tokens: Mean,
    chars: Mean,
    truncated: Mean,
    pass: BTreeMap<usize, Mean>,
}

impl Accumulator {
    /// Adds one sample; `ks` are the k of pass@k to report (empty for one response a sample).
    pub fn add(&mut self, rec: &SampleRecord, ks: &[usize]) {
        if rec.responses.is_empty() {
            return;
        }
        self.samples += 1;
        if rec.responses.iter().any(|r| r.accuracy.is_some()) {
            self.scored += 1;
        } else {
            self.not_scored += 1;
        }
        for r in &rec.responses {
            self.responses += 1;
            self.accuracy.add_opt(r.accuracy);
            match rec.task {
                Task::Chart => self.chart.add_opt(r.accuracy),
                Task::OpenEnded => {
                    self.bmas.add_opt(r.accuracy);
                    self.rouge.add_opt(r.rouge_l);
                }
                _ => {}
            }
            if let Some(iou) = r.iou {
                self.iou.add(iou);
                self.iou_hit.add(if iou >= crate::score::IOU_THRESHOLD {
                    1.0
                } else {
                    0.0
                });
            }
            self.format.add_opt(r.format);
            self.reward.add_opt(r.reward);
            self.tokens.add_opt(r.tokens.map(|t| t as f64));
            self.chars.add(r.chars as f64);
            self.truncated.add(if r.truncated { 1.0 } else { 0.0 });
        }
        let judged: Vec<bool> = rec.responses.iter().filter_map(|r| r.correct).collect();
        let n = judged.len();
        let c = judged.iter().filter(|&&x| x).count();
        for &k in ks {
            if n >= k {
                self.pass.entry(k).or_default().add(pass_at_k(n, c, k));
            }
        }
    }

    pub fn finish(&self) -> Metrics {
        Metrics {
            samples: self.samples,
            scored: self.scored,
            not_scored: self.not_scored,
            responses: self.responses,
            accuracy: self.accuracy.get(),
            relaxed_accuracy: self.chart.get(),
            acc_at_05: self.iou_hit.get(),
            mean_iou: self.iou.get(),
            bmas: self.bmas.get(),
            rouge_l: self.rouge.get(),
            format_rate: self.format.get(),
            mean_reward: self.reward.get(),
            mean_tokens: self.tokens.get(),
            mean_chars: self.chars.get(),
            truncation_rate: self.truncated.get(),
            pass_at_k: self
                .pass
                .iter()
                .filter_map(|(k, m)| m.get().map(|v| (*k, v)))
                .collect(),
        }
    }
}

/// The unbiased pass@k estimator of Chen et al. (2021): `1 - C(n-c, k) / C(n, k)` for `n`
/// samples of which `c` are correct, computed as `1 - prod_{i=n-c+1}^{n} (1 - k / i)`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(k >= 1 && k <= n && c <= n, "pass@{k} with n = {n}, c = {c}");
    if n - c < k {
        return 1.0;
    }
    let mut prod = 1.0;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / i as f64;
    }
    1.0 - prod
}

/// The k reported for `n` responses a sample: powers of two below `n`, and `n` (none for 1).
pub fn pass_ks(n: usize) -> Vec<usize> {
    if n <= 1 {
        return Vec::new();
    }
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k < n)
        .collect();
    ks.push(n);
    ks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binom(n: u64, k: u64) -> f64 {
        if k > n {
            return 0.0;
        }
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn pass_at_k_matches_the_binomial_form() {
        assert_eq!(pass_at_k(4, 2, 1), 0.5);
        assert!((pass_at_k(4, 2, 2) - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 2, 4), 1.0);
        assert_eq!(pass_at_k(4, 0, 2), 0.0);
        for n in 1..=12u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let want = 1.0 - binom(n - c, k) / binom(n, k);
                    let got = pass_at_k(n as usize, c as usize, k as usize);
                    assert!(
                        (got - want).abs() < 1e-9,
                        "n {n} c {c} k {k}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn ks() {
        assert!(pass_ks(1).is_empty());
        assert_eq!(pass_ks(2), vec![1, 2]);
        assert_eq!(pass_ks(4), vec![1, 2, 4]);
        assert_eq!(pass_ks(10), vec![1, 2, 4, 8, 10]);
    }

    #[test]
    fn metric_names_round_trip() {
        let mut m = Metrics {
            samples: 3,
            accuracy: Some(0.5),
            acc_at_05: Some(0.25),
            ..Default::default()
        };
        m.pass_at_k.insert(2, 0.75);
        assert_eq!(
            m.names(),
            vec![
                "samples",
                "scored",
                "not_scored",
                "responses",
                "accuracy",
                "acc@0.5",
                "pass@2"
            ]
        );
        assert_eq!(m.get("pass@2"), Some(0.75));
        assert_eq!(m.get("acc@0.5"), Some(0.25));
        assert_eq!(m.get("bmas"), None);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["acc@0.5"], 0.25);
        assert_eq!(json["pass_at_k"]["2"], 0.75);
        let back: Metrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }
}
