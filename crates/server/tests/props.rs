//! Property tests of the server's parsers: cutting a response out of an OpenRLHF query, and
//! turning any request body into samples. No input panics; the cut is exact whatever the
//! template, the pad expansion and the end-of-turn padding.

use mixed_r1_server::openrlhf::{build_samples, extract_response, Extraction, RewardRequest};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Text made of the pieces that matter to the cutter, plus anything.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<|image_pad|>".to_string()),
        Just("<|video_pad|>".to_string()),
        Just("<|vision_start|>".to_string()),
        Just("<|im_start|>assistant\n".to_string()),
        Just("<|im_end|>".to_string()),
        Just("<|endoftext|>".to_string()),
        Just("<start_of_turn>model\n".to_string()),
        Just("[/INST]".to_string()),
        Just("</s>".to_string()),
        Just(" ".to_string()),
        "[a-z<>|/ \n]{0,6}",
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn cutting_never_panics(query in text(), prompt in prop::option::of(text())) {
        let (cut, _) = extract_response(&query, prompt.as_deref());
        // The cut is a piece of the query.
        prop_assert!(query.contains(cut));
    }

    /// A ChatML prompt with image / video pads, expanded any number of times in the query,
    /// still cuts out exactly the response.
    #[test]
    fn expanded_pads_still_match_the_prompt(
        question in "[A-Za-z ?]{0,40}",
        response in "[A-Za-z0-9<>/ \\[\\],.]{0,60}",
        images in prop::collection::vec(1usize..3000, 0..3),
        end_tokens in 0usize..50,
        with_prompt in any::<bool>(),
    ) {
        let response = response.trim().to_string();
        // A response that itself ends in an end-of-turn token loses it, as it should.
        prop_assume!(!["</s>", "<eos>"].iter().any(|t| response.ends_with(t)));
        let mut prompt = String::from("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n");
        let mut query = prompt.clone();
        for (k, n) in images.iter().enumerate() {
            let pad = if k % 2 == 0 { "<|image_pad|>" } else { "<|video_pad|>" };
            prompt.push_str(&format!("<|vision_start|>{pad}<|vision_end|>"));
            query.push_str(&format!("<|vision_start|>{}<|vision_end|>", pad.repeat(*n)));
        }
        let tail = format!("{question}<|im_end|>\n<|im_start|>assistant\n");
        prompt.push_str(&tail);
        query.push_str(&tail);
        query.push_str(&response);
        query.push_str("<|im_end|>");
        query.push_str(&"<|endoftext|>".repeat(end_tokens));
        let (cut, how) = extract_response(&query, with_prompt.then_some(prompt.as_str()));
        prop_assert_eq!(cut, response.as_str());
        prop_assert_eq!(how, if with_prompt { Extraction::PromptPrefix } else { Extraction::Template });
    }

    /// Any JSON as labels, prompts and queries: samples or a 400-style error, never a panic.
    #[test]
    fn any_request_body_is_samples_or_an_error(
        labels in prop::collection::vec(label(), 0..6),
        query in text(),
        default_task in prop::option::of(prop::sample::select(vec!["yes_no", "mcq", "grounding", "poetry"])),
    ) {
        let n = labels.len();
        let body = json!({"query": vec![query.clone(); n], "prompts": vec![query; n], "labels": labels});
        if let Ok(req) = serde_json::from_value::<RewardRequest>(body) {
            if let Ok((samples, counts)) = build_samples(req, default_task) {
                prop_assert_eq!(samples.len(), n);
                prop_assert_eq!(counts.iter().sum::<u64>(), n as u64);
            }
        }
    }
}

fn label() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        "[a-z_{}\":, \\[\\]0-9]{0,30}".prop_map(Value::String),
        prop::sample::select(vec!["yes_no", "mcq", "grounding", "abs", "rel1", "pixels"])
            .prop_map(|s| json!(s)),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "task",
                        "answer",
                        "frame",
                        "pred_frame",
                        "image_size",
                        "choices",
                        "reward",
                        "x"
                    ]),
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    });
    prop_oneof![
        value.clone(),
        value.prop_map(|v| Value::String(v.to_string()))
    ]
}
