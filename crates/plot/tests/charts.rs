//! The chart kinds draw what they are given: series colours present, sizes as asked, PNGs that
//! decode to the same pixels.

use mixed_r1_plot::palette::BARS;
use mixed_r1_plot::{
    count_bars, encode_png, line_chart, share_bars, write_png, Canvas, PlotOptions, Series, PALETTE,
};

fn has(img: &image::RgbImage, c: [u8; 3]) -> bool {
    img.pixels().any(|p| p.0 == c)
}

#[test]
fn bars_of_counts_and_shares() {
    let groups = vec![
        ("mcq".to_string(), vec![10, 4]),
        ("chart".to_string(), vec![0, 7]),
    ];
    let series = vec!["input".to_string(), "kept".to_string()];
    let c = count_bars("rows", &groups, &series, 480, 260);
    assert_eq!((c.width(), c.height()), (480, 260));
    assert!(has(&c.img, BARS[0]) && has(&c.img, BARS[1]));

    let groups = vec![
        ("yes_no\naccuracy".to_string(), vec![Some(0.5), None]),
        ("mcq".to_string(), vec![Some(1.7), Some(0.0)]),
    ];
    let c = share_bars("shares", &groups, &series);
    assert_eq!(c.height(), 312);
    assert!(c.width() >= 320);
    assert!(has(&c.img, BARS[0]));
}

#[test]
fn lines_and_png_round_trip() {
    let series = vec![
        Series {
            name: "a".into(),
            points: (0..20).map(|i| (i as f64, (i as f64).sqrt())).collect(),
        },
        Series {
            name: "b".into(),
            points: vec![(3.0, 1.0), (f64::NAN, 2.0), (9.0, 0.5)],
        },
    ];
    let opts = PlotOptions {
        title: "t".into(),
        y_label: "reward".into(),
        ..Default::default()
    };
    let img = line_chart(&series, &opts);
    assert_eq!(img.dimensions(), (opts.width, opts.height));
    assert!(has(&img, PALETTE[0]) && has(&img, PALETTE[1]));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    write_png(&img, &path).unwrap();
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back, img);
    assert_eq!(std::fs::read(&path).unwrap(), encode_png(&img).unwrap());
}

#[test]
fn upward_text_is_the_text_turned() {
    let mut a = Canvas::new(40, 40, [255; 3]);
    a.text(0, 0, "Ab", 1, [0; 3]);
    let mut b = Canvas::new(40, 40, [255; 3]);
    b.text_up(0, 39, "Ab", 1, [0; 3]);
    for y in 0..8 {
        for x in 0..16 {
            assert_eq!(a.img.get_pixel(x, y), b.img.get_pixel(y, 39 - x));
        }
    }
}
