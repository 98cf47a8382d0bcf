//! The synthetic images are training data: the demo's data set and its recorded table depend on
//! every pixel. These hashes were computed before the plotting code moved into `mixed-r1-plot`;
//! a change to the canvas, the font or the PNG encoder that alters one pixel (or one byte of the
//! encoded files) fails here.

use mixed_r1_data::synth::{Stocks, Synth, SynthConfig};
use mixed_r1_plot::encode_png;
use mixed_r1_stable_hash::Fnv64;

/// A deterministic `Stocks.csv` lookalike (four tickers, monthly rows 1990-2012), so the
/// real-number charts are pinned too without the asset.
fn stocks_csv() -> String {
    let mut s = String::from("# generated\nDate,AAA,BBB,CCC,DDD\n");
    for year in 1990..2013 {
        for month in 1..=12 {
            let t = (year - 1990) * 12 + month;
            let v = |k: i32| (k * 37 + t * (k + 3)) % 900 + 10 * k;
            let _ = std::fmt::Write::write_fmt(
                &mut s,
                format_args!(
                    "{year}-{month:02}-01,{}.{},{},{}.5,{}\n",
                    v(1),
                    t % 10,
                    v(2),
                    v(3),
                    if year < 1995 {
                        String::new()
                    } else {
                        v(4).to_string()
                    }
                ),
            );
        }
    }
    s
}

/// `(hash of the raw RGB pixels and sizes, hash of the encoded PNGs, images)` of the first
/// `scenes` scenes for a seed.
fn hashes(seed: u64, scenes: usize, stocks: bool) -> (u64, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        count: 10_000,
        seed,
        stocks: stocks.then(|| {
            let p = dir.path().join("Stocks.csv");
            std::fs::write(&p, stocks_csv()).unwrap();
            p
        }),
        scenes: Default::default(),
    };
    if stocks {
        Stocks::parse(&stocks_csv()).unwrap();
    }
    let synth = Synth::new(cfg).unwrap();
    let (mut raw, mut png, mut n) = (Fnv64::new(), Fnv64::new(), 0);
    let mut real = 0;
    for i in 0..scenes.min(synth.scenes()) {
        let scene = synth.scene(i);
        real += scene
            .samples
            .iter()
            .filter(|s| s.source == "synth-stocks")
            .count();
        if let Some((path, img)) = scene.image {
            raw.write(path.as_bytes())
                .write(&img.width().to_le_bytes())
                .write(&img.height().to_le_bytes())
                .write(img.as_raw());
            png.write(&encode_png(&img).unwrap());
            n += 1;
        }
    }
    assert_eq!(
        real > 0,
        stocks,
        "charts from the stocks file: {real} samples"
    );
    (raw.finish(), png.finish(), n)
}

#[test]
fn synthetic_images_are_pixel_identical() {
    let got = [
        hashes(0, 120, false),
        hashes(7, 120, true),
        hashes(20250531, 60, false),
    ];
    let want: [(u64, u64, usize); 3] = [
        (0x89a1_7b63_749e_0b38, 0xc4c5_abe2_25b1_3678, 85),
        (0x2e16_216e_3f3e_9e89, 0x763f_84fe_dd7d_63ec, 75),
        (0xc378_75cf_a20f_b981, 0x2c4d_1b41_3e0c_da97, 41),
    ];
    assert_eq!(
        got, want,
        "synthetic training images changed (got {got:x?})"
    );
}
