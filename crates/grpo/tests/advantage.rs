//! Advantage estimators against hand-computed values.
//!
//! Reference arithmetic (unbiased std, eps = 1e-6):
//! group [1, 0, 0, 1]: mean 0.5, std = sqrt(4 * 0.25 / 3) = 0.5773503, A = ±0.5 / (0.5773503 + 1e-6)
//! = ±0.8660239; population std 0.5 -> ±0.999998.
//! group [1, 1, 0] (ties): mean 2/3, std = sqrt((1/9 + 1/9 + 4/9) / 2) = 0.5773503,
//! A = (1/3, 1/3, -2/3) / 0.5773513 = (0.5773493, 0.5773493, -1.1546985).

use std::sync::Arc;

use mixed_r1_grpo::advantage::{
    compute_advantages, AdvantageConfig, AdvantageEstimator, AdvantageInput, AdvantageRegistry,
    Groups,
};
use mixed_r1_grpo::GrpoError;

fn close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (*g as f64 - w).abs() < 2e-6 * (1.0 + w.abs()),
            "got {got:?}, want {want:?}"
        );
    }
}

fn run(name: &str, rewards: &[f32], groups: &Groups, cfg: &AdvantageConfig) -> Vec<f32> {
    compute_advantages(name, &AdvantageInput::new(rewards, groups), cfg).unwrap()
}

#[test]
fn grpo_scaled_with_ties_and_all_equal_group() {
    let r = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.5, 0.5];
    let g = Groups::from_sizes(&[4, 3, 2]);
    let a = run("grpo", &r, &g, &AdvantageConfig::default());
    close(
        &a,
        &[
            0.8660239, -0.8660239, -0.8660239, 0.8660239, // [1,0,0,1]
            0.5773493, 0.5773493, -1.1546985, // [1,1,0] ties share one value
            0.0, 0.0, // all equal -> exactly 0
        ],
    );
    assert_eq!(&a[7..], &[0.0, 0.0]);
}

#[test]
fn grpo_population_std_and_no_scaling() {
    let r = [1.0, 0.0, 0.0, 1.0];
    let g = Groups::uniform(1, 4);
    let pop = AdvantageConfig {
        unbiased_std: false,
        ..Default::default()
    };
    close(
        &run("grpo", &r, &g, &pop),
        &[0.999998, -0.999998, -0.999998, 0.999998],
    );
    let unscaled = AdvantageConfig {
        scale_std: false,
        ..Default::default()
    };
    close(&run("grpo", &r, &g, &unscaled), &[0.5, -0.5, -0.5, 0.5]);
}

#[test]
fn all_equal_group_is_exactly_zero_even_with_rounding() {
    // 0.1 summed 7 times and divided by 7 is not exactly 0.1 in floating point; the estimator must
    // still return exact zeros rather than rounding noise divided by eps.
    let r = [0.1f32; 7];
    let g = Groups::uniform(1, 7);
    for name in [
        "grpo",
        "dr_grpo",
        "rloo",
        "reinforce_pp",
        "reinforce_pp_baseline",
    ] {
        let a = run(name, &r, &g, &AdvantageConfig::default());
        assert_eq!(a, vec![0.0; 7], "{name}");
    }
}

#[test]
fn single_member_groups_get_zero() {
    let r = [0.7, 1.0, 0.0];
    let g = Groups::from_sizes(&[1, 2]);
    close(
        &run("grpo", &r, &g, &AdvantageConfig::default()),
        &[0.0, 0.7071058, -0.7071058], // [1, 0]: mean .5, std sqrt(.5) = .7071068
    );
    close(
        &run("rloo", &r, &g, &AdvantageConfig::default()),
        &[0.0, 1.0, -1.0],
    );
    close(
        &run("dr_grpo", &r, &g, &AdvantageConfig::default()),
        &[0.0, 0.5, -0.5],
    );
}

#[test]
fn dr_grpo_ignores_scale_std() {
    // [0.2, 0.7, 0.9]: mean 0.6 -> (-0.4, 0.1, 0.3)
    let r = [0.2, 0.7, 0.9];
    let g = Groups::uniform(1, 3);
    let cfg = AdvantageConfig {
        scale_std: true,
        ..Default::default()
    };
    close(&run("dr_grpo", &r, &g, &cfg), &[-0.4, 0.1, 0.3]);
    close(
        &run("grpo", &r, &g, &cfg),
        &[-1.1093973, 0.2773493, 0.8320480],
    );
}

#[test]
fn rloo_leave_one_out() {
    // [1,0,0,1]: A_0 = 1 - (0+0+1)/3 = 2/3; A_1 = 0 - 2/3. [1,1,0]: 1 - 1/2 = .5, 0 - 1 = -1.
    // [0.2, 0.7, 0.9]: 0.2 - 0.8 = -0.6, 0.7 - 0.55 = 0.15, 0.9 - 0.45 = 0.45.
    let r = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.2, 0.7, 0.9];
    let g = Groups::from_sizes(&[4, 3, 3]);
    close(
        &run("rloo", &r, &g, &AdvantageConfig::default()),
        &[
            2.0 / 3.0,
            -2.0 / 3.0,
            -2.0 / 3.0,
            2.0 / 3.0,
            0.5,
            0.5,
            -1.0,
            -0.6,
            0.15,
            0.45,
        ],
    );
}

#[test]
fn non_contiguous_group_ids() {
    // Samples of prompts "a" and "b" interleaved: a = [1, 0, 0, 1] at 0, 2, 4, 6.
    let r = [1.0, 5.0, 0.0, 5.0, 0.0, 5.0, 1.0];
    let ids = ["a", "b", "a", "b", "a", "b", "a"];
    let g = Groups::from_ids(&ids);
    assert_eq!(g.len(), 2);
    assert_eq!(g.group(0), &[0, 2, 4, 6]);
    let a = run("grpo", &r, &g, &AdvantageConfig::default());
    close(
        &a,
        &[0.8660239, 0.0, -0.8660239, 0.0, -0.8660239, 0.0, 0.8660239],
    );
}

#[test]
fn gdpo_normalises_each_component_then_sums() {
    // accuracy [1,0,0,1] -> a(1,-1,-1,1), format [1,1,0,0] -> a(1,1,-1,-1), a = 0.8660239;
    // sum = (2a, 0, -2a, 0) = (1.7320478, 0, -1.7320478, 0).
    let acc = vec![1.0, 0.0, 0.0, 1.0];
    let fmt = vec![1.0, 1.0, 0.0, 0.0];
    let total: Vec<f32> = acc.iter().zip(&fmt).map(|(a, f)| a + 0.5 * f).collect();
    let comps = vec![acc, fmt];
    let g = Groups::uniform(1, 4);
    let input = AdvantageInput::new(&total, &g).with_components(&comps);
    let no_bn = AdvantageConfig {
        gdpo_batch_norm: false,
        ..Default::default()
    };
    let a = compute_advantages("gdpo", &input, &no_bn).unwrap();
    close(&a, &[1.7320478, 0.0, -1.7320478, 0.0]);
    // Batch whitening: mean 0, unbiased std = sqrt(2 * 3 / 3) = 1.4142..., 1.7320478 / 1.4142121
    let a = compute_advantages("gdpo", &input, &AdvantageConfig::default()).unwrap();
    close(&a, &[1.2247440, 0.0, -1.2247440, 0.0]);
    // GRPO on the summed reward [1.5, 0.5, 0, 1] instead ranks "format only" (sample 1) below
    // "accuracy only" (sample 3) and gives them opposite signs; GDPO gives both 0.
    let grpo = compute_advantages("grpo", &input, &AdvantageConfig::default()).unwrap();
    close(&grpo, &[1.1618932, -0.3872977, -1.1618932, 0.3872977]);
}

#[test]
fn gdpo_component_weights_and_degenerate_components() {
    // weights (2, 1): 2a(1,-1,-1,1) + a(1,1,-1,-1) = (3a, -a, -3a, a), no batch norm.
    let comps = vec![vec![1.0, 0.0, 0.0, 1.0], vec![1.0, 1.0, 0.0, 0.0]];
    let total = [0.0f32; 4];
    let g = Groups::uniform(1, 4);
    let cfg = AdvantageConfig {
        gdpo_batch_norm: false,
        component_weights: Some(vec![2.0, 1.0]),
        ..Default::default()
    };
    let input = AdvantageInput::new(&total, &g).with_components(&comps);
    close(
        &compute_advantages("gdpo", &input, &cfg).unwrap(),
        &[2.5980717, -0.8660239, -2.5980717, 0.8660239],
    );
    // A component constant within the group contributes 0, the other one alone decides.
    let comps = vec![vec![1.0, 1.0, 1.0, 1.0], vec![1.0, 0.0, 0.0, 1.0]];
    let input = AdvantageInput::new(&total, &g).with_components(&comps);
    let cfg = AdvantageConfig {
        gdpo_batch_norm: false,
        ..Default::default()
    };
    close(
        &compute_advantages("gdpo", &input, &cfg).unwrap(),
        &[0.8660239, -0.8660239, -0.8660239, 0.8660239],
    );
}

#[test]
fn gdpo_needs_components() {
    let g = Groups::uniform(1, 2);
    let e = compute_advantages(
        "gdpo",
        &AdvantageInput::new(&[1.0, 0.0], &g),
        &AdvantageConfig::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("per-component"), "{e}");
    let comps = vec![vec![1.0]];
    let e = compute_advantages(
        "gdpo",
        &AdvantageInput::new(&[1.0, 0.0], &g).with_components(&comps),
        &AdvantageConfig::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("component 0"), "{e}");
}

#[test]
fn reinforce_pp_whitens_over_the_batch() {
    // [1,0,0,1,1,1]: mean 2/3, unbiased std = sqrt((4/9*2 + 1/9*4)/5) = 0.5163978
    // -> (1/3)/0.5163988 = 0.6454960, (-2/3)/0.5163988 = -1.2909919.
    let r = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    let g = Groups::uniform(2, 3);
    close(
        &run("reinforce_pp", &r, &g, &AdvantageConfig::default()),
        &[
            0.6454960, -1.2909919, -1.2909919, 0.6454960, 0.6454960, 0.6454960,
        ],
    );
    // baseline variant: group means (1/3, 1) -> (2/3, -1/3, -1/3, 0, 0, 0), batch mean 0,
    // std = sqrt((4/9 + 1/9 + 1/9)/5) = 0.3651484 -> 1.8257369, -0.9128684.
    close(
        &run("reinforce_pp_baseline", &r, &g, &AdvantageConfig::default()),
        &[1.8257369, -0.9128684, -0.9128684, 0.0, 0.0, 0.0],
    );
}

#[test]
fn registry_names_errors_and_custom_estimators() {
    let reg = AdvantageRegistry::builtin();
    assert_eq!(
        reg.names(),
        mixed_r1_grpo::advantage::BUILTIN.to_vec(),
        "BUILTIN lists the registry"
    );
    let g = Groups::uniform(1, 2);
    let e = reg
        .compute(
            "ppo_gae",
            &AdvantageInput::new(&[1.0, 0.0], &g),
            &AdvantageConfig::default(),
        )
        .err()
        .unwrap();
    assert!(matches!(e, GrpoError::UnknownName { .. }));
    assert!(e.to_string().contains("grpo, reinforce_pp"), "{e}");

    // A new estimator is one impl + one register call.
    struct Sign;
    impl AdvantageEstimator for Sign {
        fn name(&self) -> &'static str {
            "sign"
        }
        fn description(&self) -> &'static str {
            "sign of r - 0.5"
        }
        fn compute(
            &self,
            input: &AdvantageInput,
            _: &AdvantageConfig,
        ) -> mixed_r1_grpo::Result<Vec<f32>> {
            Ok(input.rewards.iter().map(|r| (r - 0.5).signum()).collect())
        }
    }
    let mut reg = reg;
    reg.register(Arc::new(Sign));
    let a = reg
        .compute(
            "sign",
            &AdvantageInput::new(&[1.0, 0.0], &g),
            &AdvantageConfig::default(),
        )
        .unwrap();
    assert_eq!(a, vec![1.0, -1.0]);
}

#[test]
fn inputs_are_validated() {
    let cfg = AdvantageConfig::default();
    // NaN reward (a skipped sample that was not dropped).
    let g = Groups::uniform(1, 2);
    let e =
        compute_advantages("grpo", &AdvantageInput::new(&[f32::NAN, 0.0], &g), &cfg).unwrap_err();
    assert!(e.to_string().contains("sample 0"), "{e}");
    // Groups covering a different number of samples.
    let g3 = Groups::uniform(1, 3);
    assert!(compute_advantages("grpo", &AdvantageInput::new(&[1.0, 0.0], &g3), &cfg).is_err());
    // Empty input is fine and empty.
    let g0 = Groups::from_sizes(&[]);
    assert_eq!(
        compute_advantages("grpo", &AdvantageInput::new(&[], &g0), &cfg).unwrap(),
        Vec::<f32>::new()
    );
}
