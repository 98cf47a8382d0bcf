//! Chart questions: ChartQA's relaxed accuracy.
//!
//! A numeric gold is matched by the last number of the answer within `tolerance` relative error
//! (5%), and an answer ending in a range or alternatives ("20 or 25", "20-25") scores 0 (see
//! [`crate::number::answer_number`]); percent is read both ways, so `35%` and `0.35` are the same
//! answer. A gold of 0 needs `|pred| <= tolerance_abs`. A gold that looks like a year (bare 4-digit integer in 1800..=2100)
//! must match exactly: "2019" is not "2020" within 5%. A text gold is matched by normalised exact
//! match (case, punctuation and white space ignored).
//!
//! `mode = "partial"` gives `max(0, 1 - rel_err / tolerance)` instead of 0/1, a denser signal
//! for GRPO on continuous chart values.

use serde::{Deserialize, Serialize};

use crate::matching::normalize_phrase;
use crate::number::{answer_number, clip, for_each_number, Number};
use crate::text::strip_wrappers;
use crate::{Accuracy, Skip};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartMode {
    #[default]
    Binary,
    Partial,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChartConfig {
    pub mode: ChartMode,
    /// Relative tolerance (ChartQA: 0.05).
    pub tolerance: f64,
    /// Absolute tolerance for a gold of 0.
    pub tolerance_abs: f64,
    /// Whether year-like golds (bare integers 1800..=2100) must match exactly.
    pub exact_years: bool,
}

impl Default for ChartConfig {
    fn default() -> Self {
        ChartConfig {
            mode: ChartMode::Binary,
            tolerance: 0.05,
            tolerance_abs: 0.0,
            exact_years: true,
        }
    }
}

/// Chart accuracy of `pred` against `gold`.
pub fn chart_accuracy(pred: &str, gold: &str, cfg: &ChartConfig) -> Accuracy {
    let gold_t = strip_wrappers(gold);
    let pred_t = strip_wrappers(pred);
    match single_number(gold_t) {
        Some(g) => Ok(match answer_number(pred_t) {
            Some(p) => numeric_score(p, g, cfg),
            None => 0.0,
        }),
        None => {
            let g = normalize_phrase(gold_t);
            if g.is_empty() {
                return Err(Skip::new(format!("gold answer {:?} is empty", clip(gold))));
            }
            Ok(if normalize_phrase(pred_t) == g {
                1.0
            } else {
                0.0
            })
        }
    }
}

/// The gold's number when the gold is one number (with units or percent) and nothing else
/// that reads as a word answer. `3 or 4` and `Q3 2019` are text golds.
fn single_number(s: &str) -> Option<Number> {
    let mut first = None;
    let mut count = 0;
    for_each_number(s, |n| {
        count += 1;
        first.get_or_insert(n);
        count < 2
    });
    let n = first.filter(|_| count == 1)?;
    // Words around the number other than units must not carry the answer: keep it numeric only
    // when the rest is short (a unit, currency, `%`), e.g. "23.5", "$12", "35 %", "12 million".
    let rest_len = s.len() - (n.end - n.start);
    (rest_len <= 12).then_some(n)
}

fn is_year(n: &Number) -> bool {
    n.plain_integer && n.int_digits == 4 && (1800.0..=2100.0).contains(&n.value) && !n.percent
}

fn numeric_score(p: Number, g: Number, cfg: &ChartConfig) -> f64 {
    if cfg.exact_years && is_year(&g) {
        return if p.value == g.value { 1.0 } else { 0.0 };
    }
    // A number written with `%` may mean either itself or a fraction.
    let cands = |n: Number| [Some(n.value), n.percent.then(|| n.value / 100.0)];
    let mut best = f64::INFINITY; // smallest error in units of the tolerance
    for gv in cands(g).into_iter().flatten() {
        for pv in cands(p).into_iter().flatten() {
            let err = if gv == 0.0 {
                if cfg.tolerance_abs > 0.0 {
                    pv.abs() / cfg.tolerance_abs
                } else if pv == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else if cfg.tolerance > 0.0 {
                ((pv - gv) / gv).abs() / cfg.tolerance
            } else if pv == gv {
                0.0
            } else {
                f64::INFINITY
            };
            if err < best {
                best = err;
            }
        }
    }
    if best.is_nan() {
        return 0.0;
    }
    match cfg.mode {
        ChartMode::Binary => {
            if best <= 1.0 {
                1.0
            } else {
                0.0
            }
        }
        ChartMode::Partial => (1.0 - best).clamp(0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(p: &str, g: &str) -> Accuracy {
        chart_accuracy(p, g, &ChartConfig::default())
    }

    #[test]
    fn relaxed() {
        assert_eq!(acc("23.5", "23.5"), Ok(1.0));
        assert_eq!(acc("24.6", "23.5"), Ok(1.0)); // 4.7% off
        assert_eq!(acc("24.8", "23.5"), Ok(0.0)); // 5.5% off
        assert_eq!(acc("35%", "0.35"), Ok(1.0));
        assert_eq!(acc("0.35", "35%"), Ok(1.0));
        assert_eq!(acc("35", "35%"), Ok(1.0));
        assert_eq!(acc("2020", "2019"), Ok(0.0));
        assert_eq!(acc("In 2019.", "2019"), Ok(1.0));
        assert_eq!(acc("0", "0"), Ok(1.0));
        assert_eq!(acc("0.01", "0"), Ok(0.0));
        assert_eq!(acc("1,234", "1234"), Ok(1.0));
        assert_eq!(acc("about $12 million", "12"), Ok(1.0));
        assert_eq!(acc("Democrats", "democrats"), Ok(1.0));
        assert_eq!(acc("The Democrats.", "democrats"), Ok(0.0));
        assert_eq!(acc("no number", "12"), Ok(0.0));
        assert!(acc("x", "  ").is_err());
    }

    #[test]
    fn partial_and_abs() {
        let cfg = ChartConfig {
            mode: ChartMode::Partial,
            tolerance_abs: 0.1,
            ..Default::default()
        };
        let a = |p, g| chart_accuracy(p, g, &cfg).unwrap();
        assert!((a("102.5", "100") - 0.5).abs() < 1e-9);
        assert_eq!(a("100", "100"), 1.0);
        assert_eq!(a("110", "100"), 0.0);
        assert!((a("0.05", "0") - 0.5).abs() < 1e-9);
    }

    #[test]
    fn ranges_score_zero() {
        for p in [
            "23 or 24",
            "23-24",
            "between 23 and 24",
            "2019 to 2020",
            "20%-25%",
        ] {
            assert_eq!(acc(p, "23.5"), Ok(0.0), "{p}");
        }
        assert_eq!(acc("2019-2020", "2020"), Ok(0.0));
        assert_eq!(acc("In 2019 it was 23.5", "23.5"), Ok(1.0));
        let partial = ChartConfig {
            mode: ChartMode::Partial,
            ..Default::default()
        };
        assert_eq!(chart_accuracy("23 or 24", "23.5", &partial), Ok(0.0));
    }
}
