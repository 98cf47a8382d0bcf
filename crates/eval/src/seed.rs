//! Per-sample and per-response seeds: functions of the run seed and the sample id only (FNV-1a),
//! so a sample draws the same responses whatever batch it lands in.

pub use mixed_r1_stable_hash::fnv64;
use mixed_r1_stable_hash::Fnv64;

/// The seed of one sample in a run: a function of the run seed and the sample id only, so a
/// sample draws the same responses whatever batch it lands in (resumed runs equal whole runs).
pub fn sample_seed(run_seed: u64, id: &str) -> u64 {
    Fnv64::new()
        .write(&run_seed.to_le_bytes())
        .write(id.as_bytes())
        .finish()
}

/// The seed of response `k` of a prompt whose seed is `prompt_seed` ([`EvalPrompt::seed`]):
/// what a sampling responder gives each of the `n` copies of a prompt.
///
/// [`EvalPrompt::seed`]: crate::responder::EvalPrompt::seed
pub fn response_seed(prompt_seed: u64, k: usize) -> u64 {
    Fnv64::new()
        .write(&prompt_seed.to_le_bytes())
        .write(&(k as u64).to_le_bytes())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_depend_on_id_and_run_seed_only() {
        assert_eq!(sample_seed(1, "x"), sample_seed(1, "x"));
        assert_ne!(sample_seed(1, "x"), sample_seed(2, "x"));
        assert_ne!(sample_seed(1, "x"), sample_seed(1, "y"));
        assert_ne!(response_seed(5, 0), response_seed(5, 1));
        assert_eq!(response_seed(5, 1), response_seed(5, 1));
        // FNV-1a reference value of "a".
        assert_eq!(fnv64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
