//! The format reward: does the response follow the answer template the policy is trained on?
//!
//! Modes (DESIGN.md):
//! * `think_answer` (default): `<think>…</think>` then `<answer>…</answer>`, nothing but white
//!   space around and between, exactly one of each tag;
//! * `answer_only`: exactly one `<answer>…</answer>` and nothing else but white space, no think tags;
//! * `boxed`: at least one `\boxed{…}` with balanced braces;
//! * `none`: no format reward (the result's `format` is null and adds nothing to the total).
//!
//! Tags tolerate white space inside them (`< answer >`) and letter case, see [`crate::text`].

use serde::{Deserialize, Serialize};

use crate::text::{last_boxed, ResponseTags, TagName};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatMode {
    #[default]
    ThinkAnswer,
    AnswerOnly,
    Boxed,
    None,
}

impl FormatMode {
    pub const NAMES: &'static [&'static str] = &["think_answer", "answer_only", "boxed", "none"];
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormatConfig {
    pub mode: FormatMode,
}

/// 1.0 when `response` follows `mode`, 0.0 when not, `None` for [`FormatMode::None`].
pub fn format_score(response: &str, mode: FormatMode) -> Option<f64> {
    format_score_scanned(response, &ResponseTags::scan(response), mode)
}

const THINK_ANSWER: [(TagName, bool); 4] = [
    (TagName::Think, false),
    (TagName::Think, true),
    (TagName::Answer, false),
    (TagName::Answer, true),
];
const ANSWER_ONLY: [(TagName, bool); 2] = [(TagName::Answer, false), (TagName::Answer, true)];

pub(crate) fn format_score_scanned(
    response: &str,
    tags: &ResponseTags,
    mode: FormatMode,
) -> Option<f64> {
    let ok = match mode {
        FormatMode::None => return None,
        FormatMode::ThinkAnswer => tags.follows(response, &THINK_ANSWER),
        FormatMode::AnswerOnly => tags.follows(response, &ANSWER_ONLY),
        FormatMode::Boxed => last_boxed(response).is_some(),
    };
    Some(if ok { 1.0 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ta(s: &str) -> f64 {
        format_score(s, FormatMode::ThinkAnswer).unwrap()
    }

    #[test]
    fn think_answer() {
        assert_eq!(ta("<think>x</think><answer>y</answer>"), 1.0);
        assert_eq!(ta("  <think>\nx\n</think>\n\n<answer> y </answer>\n"), 1.0);
        assert_eq!(ta("< think >x</ think >< answer >y</answer >"), 1.0);
        assert_eq!(ta("<THINK>x</THINK><Answer>y</Answer>"), 1.0);
        assert_eq!(ta("<think></think><answer></answer>"), 1.0);
        // Text outside the tags, missing, doubled, reordered or unclosed tags.
        assert_eq!(ta("Sure! <think>x</think><answer>y</answer>"), 0.0);
        assert_eq!(ta("<think>x</think>so<answer>y</answer>"), 0.0);
        assert_eq!(ta("<think>x</think><answer>y</answer>."), 0.0);
        assert_eq!(ta("<answer>y</answer>"), 0.0);
        assert_eq!(
            ta("<think>x</think><answer>y</answer><answer>z</answer>"),
            0.0
        );
        assert_eq!(ta("<answer>y</answer><think>x</think>"), 0.0);
        assert_eq!(ta("<think>x<answer>y</answer></think>"), 0.0);
        assert_eq!(ta("<think>x</think><answer>y"), 0.0);
        assert_eq!(
            ta("<think>x</think><think>x</think><answer>y</answer>"),
            0.0
        );
        assert_eq!(ta(""), 0.0);
    }

    #[test]
    fn other_modes() {
        let a = |s| format_score(s, FormatMode::AnswerOnly).unwrap();
        assert_eq!(a(" <answer>B</answer> "), 1.0);
        assert_eq!(a("<think>x</think><answer>B</answer>"), 0.0);
        let b = |s| format_score(s, FormatMode::Boxed).unwrap();
        assert_eq!(b(r"so \boxed{\frac{1}{2}}."), 1.0);
        assert_eq!(b(r"so \boxed{\frac{1}{2}."), 0.0);
        assert_eq!(format_score("anything", FormatMode::None), None);
    }
}
