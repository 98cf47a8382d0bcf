//! Our smart_resize against transformers' own (fixture made by scripts/fixtures/smart_resize.sh):
//! the pure function on 1,062 sizes and parameter sets, and the image processor end to end.

use mixed_r1_reward::iou::smart_resize;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/smart_resize.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check(rows: &[Value]) -> usize {
    let mut checked = 0;
    for c in rows {
        let n = |k: &str| c[k].as_f64().unwrap();
        let got = smart_resize(
            n("height"),
            n("width"),
            n("factor") as u32,
            n("min_pixels") as u64,
            n("max_pixels") as u64,
        );
        match (&c["resized"], got) {
            (Value::Array(r), Ok((h, w))) => {
                assert_eq!(
                    [h, w],
                    [r[0].as_u64().unwrap(), r[1].as_u64().unwrap()],
                    "{c}"
                );
            }
            (Value::Null, Err(_)) => assert!(c["error"].is_string()),
            (want, got) => panic!("{c}: transformers {want}, ours {got:?}"),
        }
        checked += 1;
    }
    checked
}

#[test]
fn function_matches_transformers() {
    let f = fixture();
    assert!(check(f["cases"].as_array().unwrap()) > 1000);
}

#[test]
fn processor_grid_matches() {
    let f = fixture();
    assert!(check(f["processor"].as_array().unwrap()) >= 20);
}
