//! Dynamic sampling (DAPO, Yu et al., 2025): drop prompt groups whose rewards do not vary, and
//! keep generating until the batch holds enough groups that do.
//!
//! A group whose G completions all scored the same has all-zero group-relative advantages, so it
//! costs a forward/backward and contributes no gradient, while still diluting the token-mean
//! normaliser. With continuous rewards (IoU, BMAS, partial chart credit) exact ties are rare but
//! near-ties are still noise, hence a std *floor* rather than only `std == 0` (OpenRLHF #1270).
//!
//! Everything here is pure logic over group data: a group is anything that exposes its rewards
//! ([`RewardGroup`]), so the trainer's rollout structs pass through untouched.

use serde::{Deserialize, Serialize};

use crate::Result;

/// Anything that carries the rewards of one prompt's completions.
pub trait RewardGroup {
    fn rewards(&self) -> &[f32];
}

impl RewardGroup for Vec<f32> {
    fn rewards(&self) -> &[f32] {
        self
    }
}

impl RewardGroup for &[f32] {
    fn rewards(&self) -> &[f32] {
        self
    }
}

/// Population std (divide by n) of a group's rewards, in f64: a *spread* measure for the filter,
/// independent of the estimator's Bessel choice.
pub fn reward_std(r: &[f32]) -> f64 {
    if r.len() < 2 {
        return 0.0;
    }
    let n = r.len() as f64;
    let mean = r.iter().map(|&x| x as f64).sum::<f64>() / n;
    (r.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// True when the group is kept: its rewards are not all equal and their std is >= `floor`.
/// (`floor = 0` therefore drops exactly the zero-variance groups, DAPO's rule.)
pub fn keeps(r: &[f32], floor: f64) -> bool {
    let all_equal = r.windows(2).all(|w| w[0] == w[1]);
    !all_equal && reward_std(r) >= floor
}

/// Counts of one filter pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterReport {
    pub kept: usize,
    pub dropped: usize,
    /// Groups whose rewards were all identical (a subset of `dropped`).
    pub zero_std: usize,
    /// `zero_std / (kept + dropped)`; 0 for no groups. TRL logs this as `frac_reward_zero_std`.
    pub zero_std_share: f64,
}

impl FilterReport {
    fn add(&mut self, other: &FilterReport) {
        self.kept += other.kept;
        self.dropped += other.dropped;
        self.zero_std += other.zero_std;
        let total = self.kept + self.dropped;
        self.zero_std_share = if total == 0 {
            0.0
        } else {
            self.zero_std as f64 / total as f64
        };
    }
}

/// Indices of the groups kept by the filter, and its counts.
pub fn filter_groups<G: RewardGroup>(groups: &[G], floor: f64) -> (Vec<usize>, FilterReport) {
    let mut kept = Vec::new();
    let mut report = FilterReport::default();
    for (i, g) in groups.iter().enumerate() {
        let r = g.rewards();
        if r.windows(2).all(|w| w[0] == w[1]) {
            report.zero_std += 1;
        }
        if keeps(r, floor) {
            kept.push(i);
        }
    }
    report.kept = kept.len();
    report.dropped = groups.len() - kept.len();
    report.zero_std_share = if groups.is_empty() {
        0.0
    } else {
        report.zero_std as f64 / groups.len() as f64
    };
    (kept, report)
}

/// Splits `groups` into (kept, dropped) by value, keeping order.
pub fn partition_groups<G: RewardGroup>(groups: Vec<G>, floor: f64) -> (Vec<G>, Vec<G>) {
    groups.into_iter().partition(|g| keeps(g.rewards(), floor))
}

/// Summary of a whole refill (all rounds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefillReport {
    /// Generation rounds used.
    pub rounds: usize,
    /// Counts summed over rounds (kept counts groups that passed, before truncation).
    pub filter: FilterReport,
    /// Groups that passed but did not fit in the batch (DAPO discards them).
    pub surplus: usize,
    /// True when the batch reached its target size.
    pub full: bool,
}

/// Accumulates kept groups over generation rounds until `target` groups are in hand or
/// `max_rounds` rounds have been offered.
pub struct Refill<G> {
    target: usize,
    max_rounds: usize,
    floor: f64,
    kept: Vec<G>,
    surplus: Vec<G>,
    report: RefillReport,
}

impl<G: RewardGroup> Refill<G> {
    /// `max_rounds` counts every round including the first (1 = no refill; from the config,
    /// `1 + max_refill_rounds`). Groups pass the filter when [`keeps`]`(rewards, floor)`.
    pub fn new(target: usize, max_rounds: usize, floor: f64) -> Self {
        Refill {
            target,
            max_rounds: max_rounds.max(1),
            floor,
            kept: Vec::with_capacity(target),
            surplus: Vec::new(),
            report: RefillReport::default(),
        }
    }

    /// Filters one round of freshly generated groups and keeps those that pass, up to the target.
    pub fn offer(&mut self, groups: Vec<G>) -> FilterReport {
        let (kept_idx, report) = filter_groups(&groups, self.floor);
        let mut keep = vec![false; groups.len()];
        for i in kept_idx {
            keep[i] = true;
        }
        for (g, k) in groups.into_iter().zip(keep) {
            if !k {
                continue;
            }
            if self.kept.len() < self.target {
                self.kept.push(g);
            } else {
                self.surplus.push(g);
            }
        }
        self.report.rounds += 1;
        self.report.filter.add(&report);
        report
    }

    pub fn is_full(&self) -> bool {
        self.kept.len() >= self.target
    }

    /// True while the batch is short and rounds remain.
    pub fn needs_more(&self) -> bool {
        !self.is_full() && self.report.rounds < self.max_rounds
    }

    /// Groups still missing.
    pub fn missing(&self) -> usize {
        self.target.saturating_sub(self.kept.len())
    }

    pub fn kept(&self) -> &[G] {
        &self.kept
    }

    /// The kept groups (at most `target`), the surplus, and the report.
    pub fn finish(mut self) -> (Vec<G>, Vec<G>, RefillReport) {
        self.report.full = self.is_full();
        self.report.surplus = self.surplus.len();
        (self.kept, self.surplus, self.report)
    }
}

/// Runs the refill loop: calls `generate(round, missing)` (round from 0; `missing` = groups
/// still needed, so the caller can size the next round) until the batch is full or the rounds
/// run out. Returns the kept groups (possibly fewer than `target`: check `report.full`) and the
/// report; surplus groups are dropped, as in DAPO.
pub fn refill<G: RewardGroup>(
    target: usize,
    max_rounds: usize,
    floor: f64,
    mut generate: impl FnMut(usize, usize) -> Result<Vec<G>>,
) -> Result<(Vec<G>, RefillReport)> {
    let mut r = Refill::new(target, max_rounds, floor);
    while r.needs_more() {
        let round = r.report.rounds;
        let groups = generate(round, r.missing())?;
        r.offer(groups);
    }
    let (kept, _surplus, report) = r.finish();
    Ok((kept, report))
}
