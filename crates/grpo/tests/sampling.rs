//! Dynamic sampling: the filter's decisions and counts, and the refill loop.

use mixed_r1_grpo::sampling::{filter_groups, keeps, refill, reward_std, FilterReport, Refill};

#[test]
fn filter_drops_zero_and_low_std_groups() {
    let groups: Vec<Vec<f32>> = vec![
        vec![1.0, 1.0, 1.0],  // zero std
        vec![1.0, 0.0, 1.0],  // std sqrt(2/9) = 0.4714
        vec![0.5, 0.5, 0.5],  // zero std
        vec![0.2, 0.21, 0.2], // population std 0.004714
        vec![0.7],            // a single sample: no spread
    ];
    let (kept, report) = filter_groups(&groups, 0.0);
    assert_eq!(kept, vec![1, 3]);
    assert_eq!(
        report,
        FilterReport {
            kept: 2,
            dropped: 3,
            zero_std: 3,
            zero_std_share: 0.6,
        }
    );
    // A floor of 0.01 also drops the near-tie group.
    let (kept, report) = filter_groups(&groups, 0.01);
    assert_eq!(kept, vec![1]);
    assert_eq!((report.kept, report.dropped, report.zero_std), (1, 4, 3));
    assert!((reward_std(&[0.2, 0.21, 0.2]) - 0.0047140).abs() < 1e-6);
    assert!((reward_std(&[1.0, 0.0, 1.0]) - 0.4714045).abs() < 1e-6);
    assert!(!keeps(&[], 0.0));
}

#[test]
fn refill_accumulates_until_full() {
    // Round 0 yields 2 good groups of 4, round 1 yields 3 good of 4: target 4 is met in round 1
    // with one surplus group.
    let rounds: Vec<Vec<Vec<f32>>> = vec![
        vec![
            vec![1.0, 0.0],
            vec![1.0, 1.0],
            vec![0.0, 1.0],
            vec![0.0, 0.0],
        ],
        vec![
            vec![0.3, 0.9],
            vec![0.4, 0.1],
            vec![1.0, 1.0],
            vec![0.0, 0.5],
        ],
        vec![vec![1.0, 0.0]],
    ];
    let mut calls = Vec::new();
    let (kept, report) = refill(4, 5, 0.0, |round, missing| {
        calls.push((round, missing));
        Ok(rounds[round].clone())
    })
    .unwrap();
    assert_eq!(calls, vec![(0, 4), (1, 2)]);
    assert_eq!(
        kept,
        vec![
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![0.3, 0.9],
            vec![0.4, 0.1]
        ]
    );
    assert_eq!(report.rounds, 2);
    assert!(report.full);
    assert_eq!(report.surplus, 1);
    assert_eq!(
        (
            report.filter.kept,
            report.filter.dropped,
            report.filter.zero_std
        ),
        (5, 3, 3)
    );
    assert!((report.filter.zero_std_share - 3.0 / 8.0).abs() < 1e-12);
}

#[test]
fn refill_stops_after_max_rounds_with_a_partial_batch() {
    let mut r: Refill<Vec<f32>> = Refill::new(3, 2, 0.0);
    assert!(r.needs_more());
    r.offer(vec![vec![1.0, 1.0], vec![0.0, 1.0]]);
    assert!(r.needs_more());
    assert_eq!(r.missing(), 2);
    r.offer(vec![vec![0.0, 0.0]]);
    assert!(!r.needs_more(), "two rounds used");
    let (kept, surplus, report) = r.finish();
    assert_eq!(kept, vec![vec![0.0, 1.0]]);
    assert!(surplus.is_empty());
    assert!(!report.full);
    assert_eq!(report.rounds, 2);
}
