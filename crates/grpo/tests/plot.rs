//! Plots: tick computation, and a rendered PNG that decodes with the series' colours in it.

use mixed_r1_grpo::plot::{
    nice_ticks, per_task_series, plot_metric_per_task, render, tick_label, PlotOptions, Series,
    PALETTE,
};
use serde_json::json;

#[test]
fn ticks_and_labels() {
    let (t, step) = nice_ticks(0.0, 1.0, 5);
    assert_eq!(step, 0.2);
    assert_eq!(t.len(), 6);
    assert!((t[5] - 1.0).abs() < 1e-12);
    let (t, step) = nice_ticks(3.0, 97.0, 8);
    assert_eq!(step, 20.0);
    assert_eq!(t, vec![20.0, 40.0, 60.0, 80.0]);
    assert_eq!(tick_label(0.6000000000000001, 0.2), "0.6");
    assert_eq!(tick_label(40.0, 20.0), "40");
    assert_eq!(tick_label(-0.25, 0.05), "-0.25");
    assert_eq!(tick_label(1e-17, 0.1), "0");
    assert_eq!(tick_label(0.00015, 0.00005), "1.5e-4");
}

#[test]
fn per_task_plot_png() {
    let records: Vec<_> = (1..=40)
        .map(|s| {
            let x = s as f64;
            json!({
                "step": s,
                "reward/mcq": 0.3 + 0.6 * (1.0 - (-x / 10.0).exp()),
                "reward/grounding": 0.1 + 0.01 * x,
                "reward/open_ended": 0.5 + 0.1 * (x / 3.0).sin(),
                "loss": 1.0 / x,
            })
        })
        .collect();
    let series = per_task_series(&records, "reward");
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["grounding", "mcq", "open_ended"]);
    assert_eq!(series[1].points.len(), 40);

    let out = std::env::var_os("MIXED_R1_PLOT_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("grpo-plot-{}.png", std::process::id()))
        });
    plot_metric_per_task(&records, "reward", &out).unwrap();
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (900, 540));
    for (i, c) in PALETTE.iter().take(3).enumerate() {
        let n = img.pixels().filter(|p| p.0 == *c).count();
        assert!(n > 100, "series {i} colour drawn {n} pixels");
    }
    let black = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
    assert!(black > 1000, "axes and text drawn ({black} black pixels)");
    if std::env::var_os("MIXED_R1_PLOT_OUT").is_none() {
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn degenerate_inputs_render() {
    // No series, one point, a constant series, NaNs: all render without panicking, and the
    // one-point series is still visible.
    let opts = PlotOptions::default();
    render(&[], &opts);
    let one = Series {
        name: "only".into(),
        points: vec![(5.0, 0.5)],
    };
    let flat = Series {
        name: "flat".into(),
        points: vec![(1.0, 2.0), (2.0, f64::NAN), (3.0, 2.0)],
    };
    let img = render(&[one, flat], &opts);
    assert!(img.pixels().any(|p| p.0 == PALETTE[0]));
    assert!(img.pixels().any(|p| p.0 == PALETTE[1]));
}
