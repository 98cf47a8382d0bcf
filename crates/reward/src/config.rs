//! `reward.toml`: weights, modes, tolerances and BMAS options in one file.
//!
//! Every key has a default (DESIGN.md's), unknown keys are errors (a typo must not silently fall
//! back to a default), and [`RewardConfig::validate`] rejects out-of-range values. Example:
//!
//! ```toml
//! accuracy_weight = 1.0
//! format_weight = 0.5
//!
//! [format]
//! mode = "think_answer"      # think_answer | answer_only | boxed | none
//! [extract]
//! fallback = "strict"        # strict | lenient
//! [chart]
//! mode = "partial"           # binary | partial
//! tolerance = 0.05
//! [iou]
//! mode = "continuous"        # continuous | threshold
//! pred_frame = "abs_resized" # abs | abs_resized | rel1000 | rel1
//! [bmas]
//! model = "checkpoints/policy"   # or tokenizer = ... + embeddings = ...
//! [tasks.grounding]
//! accuracy_weight = 2.0
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bmas::BmasConfig;
use crate::chart::ChartConfig;
use crate::extract::ExtractConfig;
use crate::format::FormatConfig;
use crate::iou::IouConfig;
use crate::math::MathConfig;
use crate::number::NumericConfig;
use crate::router::TASKS;
use crate::RewardError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    pub accuracy_weight: f64,
    pub format_weight: f64,
    pub format: FormatConfig,
    pub extract: ExtractConfig,
    pub numeric: NumericConfig,
    pub math: MathConfig,
    pub chart: ChartConfig,
    pub iou: IouConfig,
    pub bmas: BmasConfig,
    /// Per-task weights, keyed by task name.
    pub tasks: BTreeMap<String, TaskWeights>,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            accuracy_weight: 1.0,
            format_weight: 0.5,
            format: Default::default(),
            extract: Default::default(),
            numeric: Default::default(),
            math: Default::default(),
            chart: Default::default(),
            iou: Default::default(),
            bmas: Default::default(),
            tasks: Default::default(),
        }
    }
}

/// Weights of one task; unset ones take the global weight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskWeights {
    pub accuracy_weight: Option<f64>,
    pub format_weight: Option<f64>,
}

impl RewardConfig {
    /// Parses TOML text and validates it.
    pub fn from_toml_str(text: &str) -> Result<Self, RewardError> {
        let cfg: RewardConfig =
            toml::from_str(text).map_err(|e| RewardError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads a `reward.toml`. Relative BMAS paths are taken relative to the file's folder, so a
    /// config works from any working directory.
    pub fn from_file(path: &Path) -> Result<Self, RewardError> {
        let text = std::fs::read_to_string(path).map_err(|e| RewardError::io(path, e))?;
        let mut cfg: RewardConfig =
            toml::from_str(&text).map_err(|e| RewardError::load(path, e.to_string()))?;
        cfg.validate()
            .map_err(|e| RewardError::load(path, e.to_string()))?;
        if let Some(dir) = path.parent() {
            for p in [
                &mut cfg.bmas.tokenizer,
                &mut cfg.bmas.embeddings,
                &mut cfg.bmas.model,
            ]
            .into_iter()
            .flatten()
            {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(cfg)
    }

    /// Rejects values no reward can work with.
    pub fn validate(&self) -> Result<(), RewardError> {
        let bad = |m: String| Err(RewardError::Config(m));
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(RewardError::Config(format!(
                    "{name} must be a finite number, got {v}"
                )))
            }
        };
        finite("accuracy_weight", self.accuracy_weight)?;
        finite("format_weight", self.format_weight)?;
        for (task, w) in &self.tasks {
            if !TASKS.contains(&task.as_str()) {
                return bad(format!(
                    "[tasks.{task}]: unknown task (expected one of {})",
                    TASKS.join(", ")
                ));
            }
            for v in [w.accuracy_weight, w.format_weight].into_iter().flatten() {
                finite(&format!("tasks.{task} weight"), v)?;
            }
        }
        let non_negative = [
            ("numeric.rel_tol", self.numeric.rel_tol),
            ("numeric.abs_tol", self.numeric.abs_tol),
            ("chart.tolerance", self.chart.tolerance),
            ("chart.tolerance_abs", self.chart.tolerance_abs),
        ];
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be >= 0, got {v}"));
            }
        }
        let iou = &self.iou;
        if !(0.0..=1.0).contains(&iou.threshold) {
            return bad(format!(
                "iou.threshold must be in [0, 1], got {}",
                iou.threshold
            ));
        }
        if !(iou.max_area_ratio > 0.0 && iou.max_area_ratio <= 1.0) {
            return bad(format!(
                "iou.max_area_ratio must be in (0, 1], got {}",
                iou.max_area_ratio
            ));
        }
        if iou.factor == 0 || iou.min_pixels > iou.max_pixels {
            return bad(format!(
                "iou: factor must be > 0 and min_pixels <= max_pixels (got factor {}, {} > {})",
                iou.factor, iou.min_pixels, iou.max_pixels
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let cfg = RewardConfig::from_toml_str(
            "format_weight = 0.1\n[chart]\nmode = \"partial\"\n[tasks.grounding]\naccuracy_weight = 2.0\n",
        )
        .unwrap();
        assert_eq!(cfg.format_weight, 0.1);
        assert_eq!(cfg.chart.mode, crate::chart::ChartMode::Partial);
        assert_eq!(cfg.tasks["grounding"].accuracy_weight, Some(2.0));
        for bad in [
            "formt_weight = 1",
            "[chart]\nmode = \"fuzzy\"",
            "[tasks.poetry]\naccuracy_weight = 1",
            "[iou]\nthreshold = 2.0",
            "[chart]\ntolerance = -1.0",
        ] {
            assert!(RewardConfig::from_toml_str(bad).is_err(), "{bad}");
        }
    }
}
