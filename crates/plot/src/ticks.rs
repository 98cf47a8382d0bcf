//! Axis ticks at a 1/2/5 x 10^k spacing, and their labels.

/// Tick values covering `[lo, hi]` at a 1/2/5 × 10^k spacing, about `target` of them.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = (hi - lo).abs().max(f64::MIN_POSITIVE);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    (ticks, step)
}

/// A tick label with just enough decimals for the spacing (`0.25`, `100`, `1.5e-4`).
pub fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    if step >= 1.0 && v.abs() < 1e7 {
        format!("{v:.0}")
    } else if step >= 1e-4 {
        let decimals = (-step.log10().floor()).max(0.0) as usize + 1;
        let s = format!("{v:.decimals$}");
        // Trim zeros a 1/2/5 spacing does not need ("0.50" -> "0.5").
        let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
        if s == "-0" {
            "0".into()
        } else {
            s
        }
    } else {
        format!("{v:.1e}")
    }
}
