//! OpenRLHF's remote reward protocol (`--reward.remote_url http://host:port/get_reward` in OpenRLHF
//! 0.11; `--remote_rm_url` in earlier releases).
//!
//! What OpenRLHF sends and reads (checked against OpenRLHF v0.11.0,
//! `openrlhf/utils/agent.py::SingleTurnAgentExecutor.execute` and `_fetch_rewards_via_http`, and
//! the older batched client `openrlhf/utils/remote_rm_utils.py` + `experience_maker.py`):
//!
//! * request: `POST` JSON `{"query": [str], "prompts": [str], "labels": [label]}` (0.11 sends one
//!   query per request). `query[i]` is the prompt *and* the response, decoded from the token ids
//!   with special tokens kept (`skip_special_tokens=False`), so the chat template is in it and, for
//!   a vision model, every image-pad token the processor expanded (thousands per image);
//!   `prompts[i]` is the prompt text before that expansion; `labels[i]` is the dataset's label
//!   column (`--data.label_key` in 0.11, `--label_key` before). Other keys (newer clients may add
//!   `metas`) are ignored.
//! * response: JSON with `"rewards"` (required: a float per query), `"scores"` (read for dynamic
//!   filtering; OpenRLHF falls back to `rewards` when absent) and `"extra_logs"` (a dict of
//!   per-query numeric lists, concatenated per key and logged). Nothing else is read.
//!
//! Our label is a JSON object (as a string, or as an object) with the sample fields the rewards
//! need: `{"task": "grounding", "answer": [[10, 20, 110, 220]], "frame": "abs",
//! "image_size": [640, 480]}`. A plain string label is the answer itself, scored with the
//! server's `--default-task`.
//!
//! A *skipped* sample (its gold answer cannot be used; `reward: null` in our own API) is sent as
//! reward 0.0, because OpenRLHF turns the list into a tensor and cannot take a null. It is flagged
//! in `extra_logs.skipped` and counted in `/metrics`, so it does not pass silently.

use mixed_r1_reward::{RewardKind, ScoreResult, Scorer, ScoringSample};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorKind};

/// The request body of `POST /get_reward`.
#[derive(Debug, Deserialize)]
pub struct RewardRequest {
    pub query: Vec<String>,
    #[serde(default)]
    pub prompts: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<Vec<Value>>,
}

/// The response body of `POST /get_reward`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RewardResponse {
    /// The mixed reward (accuracy_weight * accuracy + format_weight * format); 0.0 when skipped.
    pub rewards: Vec<f64>,
    /// The accuracy alone, in [0, 1], for OpenRLHF's dynamic filtering (which keeps prompts
    /// whose mean score lies inside `--dynamic_filtering_reward_range`, i.e. pass rate); 0.0 when
    /// skipped.
    pub scores: Vec<f64>,
    pub extra_logs: ExtraLogs,
}

/// Per-query values that OpenRLHF logs (it averages each key over the batch).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ExtraLogs {
    pub format: Vec<f64>,
    pub accuracy: Vec<f64>,
    /// 1.0 for a sample whose gold answer could not be used (reward sent as 0.0).
    pub skipped: Vec<f64>,
}

impl RewardResponse {
    pub fn from_results(results: &[ScoreResult]) -> Self {
        let zero = |v: Option<f64>| v.unwrap_or(0.0);
        RewardResponse {
            rewards: results.iter().map(|r| zero(r.reward)).collect(),
            scores: results.iter().map(|r| zero(r.accuracy)).collect(),
            extra_logs: ExtraLogs {
                format: results.iter().map(|r| zero(r.format)).collect(),
                accuracy: results.iter().map(|r| zero(r.accuracy)).collect(),
                skipped: results
                    .iter()
                    .map(|r| if r.reward.is_none() { 1.0 } else { 0.0 })
                    .collect(),
            },
        }
    }
}

/// How the response was cut out of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extraction {
    /// `prompts[i]` was a prefix of `query[i]`.
    PromptPrefix,
    /// The last assistant-turn marker of a known chat template.
    Template,
    /// Neither: the whole query is scored as the response.
    WholeQuery,
}

impl Extraction {
    pub const ALL: [Extraction; 3] = [
        Extraction::PromptPrefix,
        Extraction::Template,
        Extraction::WholeQuery,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Extraction::PromptPrefix => "prompt_prefix",
            Extraction::Template => "template",
            Extraction::WholeQuery => "whole_query",
        }
    }
}

/// Where an assistant turn starts, per chat template, with the line break that follows.
const ASSISTANT_MARKERS: [(&str, &str); 6] = [
    // ChatML: Qwen2/2.5/3, Qwen2.5-VL, InternVL2.5/3, Yi.
    ("<|im_start|>assistant", "\n"),
    // Llama 3.
    ("<|start_header_id|>assistant<|end_header_id|>", "\n\n"),
    // Gemma.
    ("<start_of_turn>model", "\n"),
    // Phi-3 / Phi-3.5-vision.
    ("<|assistant|>", "\n"),
    // DeepSeek-V3 / R1.
    ("<｜Assistant｜>", ""),
    // Mistral / Llama 2.
    ("[/INST]", ""),
];

/// End-of-turn / end-of-text tokens a decoded response may end with.
const END_TOKENS: [&str; 9] = [
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<eos>",
    "<|end|>",
    "</s>",
    "<｜end▁of▁sentence｜>",
];

/// Cuts the model's response out of an OpenRLHF query.
///
/// The prompt is removed when it is a prefix of the query, where a run of image or video pad
/// tokens in the prompt matches a run of any length in the query: a vision model's processor
/// expands the one `<|image_pad|>` per image of the prompt into hundreds or thousands in the
/// query, which OpenRLHF 0.11 decodes with special tokens kept. When the prompt is not such a
/// prefix either (decoding changed white space, a truncated prompt), the text after the last
/// assistant-turn marker of a known chat template (ChatML, Llama 3, Gemma, Phi, DeepSeek, Mistral)
/// is taken. End-of-turn tokens at the end are dropped either way. Linear in the query's length.
pub fn extract_response<'a>(query: &'a str, prompt: Option<&str>) -> (&'a str, Extraction) {
    let prefix_end = prompt
        .filter(|p| !p.is_empty())
        .and_then(|p| prompt_prefix_end(query, p));
    let (rest, how) = match prefix_end {
        Some(end) => (&query[end..], Extraction::PromptPrefix),
        None => match last_assistant_turn(query) {
            Some(start) => (&query[start..], Extraction::Template),
            None => (query, Extraction::WholeQuery),
        },
    };
    (strip_end_tokens(rest), how)
}

/// Tokens that a vision processor repeats once per patch: a run of one in the prompt is a run of
/// any length in the query.
const PAD_TOKENS: [&str; 2] = ["<|image_pad|>", "<|video_pad|>"];

/// Where the prompt ends in the query, when the query starts with it up to pad-token runs.
fn prompt_prefix_end(query: &str, prompt: &str) -> Option<usize> {
    let (q, p) = (query.as_bytes(), prompt.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    while j < p.len() {
        if let Some(pad) = PAD_TOKENS.iter().find(|t| p[j..].starts_with(t.as_bytes())) {
            let t = pad.as_bytes();
            if !q[i..].starts_with(t) {
                return None;
            }
            while p[j..].starts_with(t) {
                j += t.len();
            }
            while q[i..].starts_with(t) {
                i += t.len();
            }
            continue;
        }
        // Compare up to the next pad token of the prompt in one slice comparison.
        let next = memchr_pad(&p[j..]).map_or(p.len(), |k| j + k);
        let len = next - j;
        if q.len() - i < len || q[i..i + len] != p[j..next] {
            return None;
        }
        i += len;
        j = next;
    }
    // Both strings were cut at ASCII token boundaries or ends, so `i` is a char boundary.
    query.is_char_boundary(i).then_some(i)
}

/// Offset of the first pad token in `b`.
fn memchr_pad(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = b[from..].iter().position(|&c| c == b'<') {
        let at = from + k;
        if PAD_TOKENS.iter().any(|t| b[at..].starts_with(t.as_bytes())) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn last_assistant_turn(query: &str) -> Option<usize> {
    ASSISTANT_MARKERS
        .iter()
        .filter_map(|(marker, newline)| {
            let at = query.rfind(marker)? + marker.len();
            Some(
                at + if query[at..].starts_with(newline) {
                    newline.len()
                } else {
                    0
                },
            )
        })
        .max()
}

fn strip_end_tokens(mut s: &str) -> &str {
    loop {
        let trimmed = s.trim_end();
        match END_TOKENS.iter().find_map(|t| trimmed.strip_suffix(t)) {
            Some(rest) => s = rest,
            None => return trimmed,
        }
    }
}

/// Turns a request into scoring samples, checking every label. Any unusable label fails the
/// whole request with a 400 naming `labels[i]` (or its field): it is a data or configuration
/// bug that would otherwise train on made-up rewards.
pub fn build_samples(
    req: RewardRequest,
    default_task: Option<&str>,
) -> Result<(Vec<ScoringSample>, [u64; 3]), ApiError> {
    let n = req.query.len();
    if let Some(p) = &req.prompts {
        if p.len() != n {
            return Err(ApiError::field(
                "prompts",
                format!("has {} items but query has {n}", p.len()),
            ));
        }
    }
    let labels = match req.labels {
        Some(l) if l.len() == n => l,
        Some(l) => {
            return Err(ApiError::field(
                "labels",
                format!("has {} items but query has {n}", l.len()),
            ))
        }
        None if n == 0 => Vec::new(),
        None => return Err(ApiError::field(
            "labels",
            "missing: each query needs its gold answer (OpenRLHF --data.label_key; --label_key \
                 before 0.11)",
        )),
    };
    let prompts = req.prompts.unwrap_or_default();
    let mut counts = [0u64; 3];
    let mut samples = Vec::with_capacity(n);
    for (i, (query, label)) in req.query.iter().zip(labels).enumerate() {
        let (response, how) = extract_response(query, prompts.get(i).map(String::as_str));
        counts[how as usize] += 1;
        samples.push(label_sample(i, label, response, default_task)?);
    }
    Ok((samples, counts))
}

/// One label plus its response as a scoring sample.
fn label_sample(
    i: usize,
    label: Value,
    response: &str,
    default_task: Option<&str>,
) -> Result<ScoringSample, ApiError> {
    let name = format!("labels[{i}]");
    let mut fields = match label {
        Value::Object(map) => map,
        Value::String(s) if s.trim_start().starts_with('{') => {
            serde_json::from_str::<Map<String, Value>>(&s).map_err(|e| {
                ApiError::new(
                    ErrorKind::BadField,
                    format!("{name}: looks like a JSON object but does not parse: {e}"),
                )
                .with_field(&name)
            })?
        }
        Value::Null => {
            return Err(ApiError::field(
                name,
                "is null; it must be the gold answer or a JSON object with the sample's fields",
            ))
        }
        // A plain gold answer: text, a number, or a list (boxes, several MCQ letters).
        plain => {
            let Some(task) = default_task else {
                return Err(ApiError::field(
                    name,
                    "is a plain answer, not a JSON object with a \"task\"; give each label its \
                     task ({\"task\": ..., \"answer\": ...}) or start the server with \
                     --default-task",
                ));
            };
            let mut m = Map::new();
            m.insert("task".into(), Value::String(task.into()));
            m.insert("answer".into(), plain);
            m
        }
    };
    if !fields.contains_key("task") && !fields.contains_key("reward") {
        match default_task {
            Some(t) => {
                fields.insert("task".into(), Value::String(t.into()));
            }
            None => {
                return Err(ApiError::field(
                    format!("{name}.task"),
                    "missing, and the server has no --default-task",
                ))
            }
        }
    }
    fields.insert("response".into(), Value::String(response.to_string()));
    let sample: ScoringSample = serde_path_to_error::deserialize(Value::Object(fields))
        .map_err(|e| ApiError::from_json(e, &name, &name))?;
    if let Err(why) = Scorer::kind_of(&sample) {
        let field = if sample.reward.is_some() {
            "reward"
        } else {
            "task"
        };
        return Err(ApiError::field(format!("{name}.{field}"), why));
    }
    Ok(sample)
}

/// Checks `--default-task` once at start-up.
pub fn check_default_task(task: &str) -> Result<(), String> {
    match RewardKind::from_name(task) {
        Some(_) => Ok(()),
        None => Err(format!(
            "unknown default task `{task}` (expected one of {})",
            mixed_r1_reward::router::TASKS.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cuts_the_response_out() {
        let prompt = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Is it red?<|im_end|>\n<|im_start|>assistant\n";
        let resp = "<think>red</think><answer>yes</answer>";
        let query = format!("{prompt}{resp}<|im_end|>");
        assert_eq!(
            extract_response(&query, Some(prompt)),
            (resp, Extraction::PromptPrefix)
        );
        // The processor expanded the image pads: still the prompt, up to the pad runs.
        let expanded = query.replace("<|image_pad|>", &"<|image_pad|>".repeat(64));
        assert_eq!(
            extract_response(&expanded, Some(prompt)),
            (resp, Extraction::PromptPrefix)
        );
        // A prompt that is not a prefix at all: the template's last assistant turn.
        assert_eq!(
            extract_response(&expanded, Some("<|im_start|>system\nOther.")),
            (resp, Extraction::Template)
        );
        // The response itself mentions the marker text? The last one is the assistant turn.
        let llama = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<answer>4</answer><|eot_id|>";
        assert_eq!(
            extract_response(llama, None),
            ("<answer>4</answer>", Extraction::Template)
        );
        assert_eq!(
            extract_response("<answer>B</answer>\n<|endoftext|></s>", None),
            ("<answer>B</answer>", Extraction::WholeQuery)
        );
        assert_eq!(
            extract_response(
                "<start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>",
                Some("")
            ),
            ("A", Extraction::Template)
        );
    }

    fn req(body: Value) -> RewardRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn labels_become_samples() {
        let (samples, counts) = build_samples(
            req(json!({
                "query": ["P1<answer>yes</answer>", "<|im_start|>assistant\n<answer>[1,2,3,4]</answer>", "x"],
                "prompts": ["P1", "P2", "P3"],
                "labels": [
                    "{\"task\": \"yes_no\", \"answer\": \"yes\"}",
                    {"task": "grounding", "answer": [[1, 2, 3, 4]], "image_size": [10, 10]},
                    "42",
                ],
            })),
            Some("numeric"),
        )
        .unwrap();
        assert_eq!(counts, [1, 1, 1]);
        assert_eq!(samples[0].task.as_deref(), Some("yes_no"));
        assert_eq!(samples[0].response, "<answer>yes</answer>");
        assert_eq!(samples[1].image_size, Some([10.0, 10.0]));
        assert_eq!(samples[2].task.as_deref(), Some("numeric"));
        assert_eq!(samples[2].answer.text(), "42");
    }

    #[test]
    fn bad_labels_name_the_field() {
        let err = |labels: Value, default: Option<&str>| {
            build_samples(req(json!({"query": ["a", "b"], "labels": labels})), default).unwrap_err()
        };
        let e = err(json!([{"task": "yes_no", "answer": "yes"}, "B"]), None);
        assert_eq!(e.field.as_deref(), Some("labels[1]"));
        assert!(e.message.contains("--default-task"), "{}", e.message);
        let e = err(
            json!([
                "{\"task\": \"grounding\", \"answer\": [], \"frame\": \"pixels\"}",
                "{}"
            ]),
            None,
        );
        assert_eq!(e.field.as_deref(), Some("labels[0].frame"));
        assert!(
            e.message.contains("unknown variant `pixels`"),
            "{}",
            e.message
        );
        let e = err(
            json!(["{\"task\": \"poetry\", \"answer\": \"x\"}", "x"]),
            None,
        );
        assert_eq!(e.field.as_deref(), Some("labels[0].task"));
        let e = err(json!([{"task": "mcq"}, "x"]), None);
        assert_eq!(e.field.as_deref(), Some("labels[0].answer"));
        let e = err(json!(["{\"task\": ", "x"]), None);
        assert_eq!(e.field.as_deref(), Some("labels[0]"));
        let e = err(json!([{"answer": "x"}, "x"]), None);
        assert_eq!(e.field.as_deref(), Some("labels[0].task"));
        let e = err(json!([null, "x"]), Some("mcq"));
        assert_eq!(e.field.as_deref(), Some("labels[0]"));
        let e = err(json!(["x"]), Some("mcq"));
        assert_eq!(e.field.as_deref(), Some("labels"));
        let e = err(
            json!([{"task": "mcq", "answer": "B", "choices": ["a", 2]}, "x"]),
            None,
        );
        assert_eq!(e.field.as_deref(), Some("labels[0].choices[1]"));
    }

    #[test]
    fn skipped_samples_are_zero_and_flagged() {
        let results = vec![
            ScoreResult {
                reward: Some(1.5),
                format: Some(1.0),
                accuracy: Some(1.0),
                ..Default::default()
            },
            ScoreResult {
                reward: None,
                format: Some(1.0),
                accuracy: None,
                error: Some("unusable gold".into()),
                ..Default::default()
            },
        ];
        let r = RewardResponse::from_results(&results);
        assert_eq!(r.rewards, vec![1.5, 0.0]);
        assert_eq!(r.scores, vec![1.0, 0.0]);
        assert_eq!(r.extra_logs.skipped, vec![0.0, 1.0]);
        assert_eq!(r.extra_logs.format, vec![1.0, 1.0]);
    }

    #[test]
    fn queries_full_of_image_pads() {
        // OpenRLHF 0.11 decodes the whole observation with special tokens kept: a 1,024x1,024
        // image is ~5,000 pad tokens, a video many more.
        let prompt = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>\
                      <|vision_start|><|video_pad|><|vision_end|>Where is the cup?<|im_end|>\n\
                      <|im_start|>assistant\n";
        let resp = "<think>left</think><answer>[1, 2, 3, 4]</answer>";
        for (images, frames) in [(1, 1), (5_000, 1), (16_384, 40_000)] {
            let query = format!(
                "<|im_start|>user\n<|vision_start|>{}<|vision_end|><|vision_start|>{}<|vision_end|>\
                 Where is the cup?<|im_end|>\n<|im_start|>assistant\n{resp}<|im_end|>{}",
                "<|image_pad|>".repeat(images),
                "<|video_pad|>".repeat(frames),
                "<|endoftext|>".repeat(1_000),
            );
            let started = std::time::Instant::now();
            assert_eq!(
                extract_response(&query, Some(prompt)),
                (resp, Extraction::PromptPrefix),
                "{images} image pads"
            );
            // No prompt: the assistant marker.
            assert_eq!(extract_response(&query, None), (resp, Extraction::Template));
            // Linear: milliseconds; the bound leaves room for a loaded CI machine.
            assert!(started.elapsed() < std::time::Duration::from_secs(20));
        }
        // A query that is nothing but pads (a truncated rollout): no marker, no panic.
        let pads = "<|image_pad|>".repeat(100_000);
        let (cut, how) = extract_response(&pads, Some(prompt));
        assert!(cut.len() == pads.len() && how == Extraction::WholeQuery);
        let (cut, how) = extract_response(&pads, Some("<|image_pad|>"));
        assert!(cut.is_empty() && how == Extraction::PromptPrefix);
        // A pad run in the prompt must be at least one pad in the query.
        let q = "<|im_start|>user\n<|vision_start|><|vision_end|>x";
        assert_eq!(
            prompt_prefix_end(
                q,
                "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
            ),
            None
        );
        // Non-ASCII text around the pads.
        let p = "问<|image_pad|>题";
        let q = format!("问{}题答", "<|image_pad|>".repeat(3));
        assert_eq!(
            extract_response(&q, Some(p)),
            ("答", Extraction::PromptPrefix)
        );
    }
}
