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

use crate::text::{for_each_tag, is_blank, last_boxed, TagName};

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
    let ok = match mode {
        FormatMode::None => return None,
        FormatMode::ThinkAnswer => follows_sequence(
            response,
            &[
                (TagName::Think, false),
                (TagName::Think, true),
                (TagName::Answer, false),
                (TagName::Answer, true),
            ],
        ),
        FormatMode::AnswerOnly => {
            follows_sequence(response, &[(TagName::Answer, false), (TagName::Answer, true)])
        }
        FormatMode::Boxed => last_boxed(response).is_some(),
    };
    Some(if ok { 1.0 } else { 0.0 })
}

/// True when the tags of `s` are exactly `expected`, in order, and the text outside the tag pairs
/// (before the first, between a closing and the next opening, after the last) is blank.
fn follows_sequence(s: &str, expected: &[(TagName, bool)]) -> bool {
    let mut seen = 0usize;
    let mut ok = true;
    // End of the previous closing tag: where the next stretch of must-be-blank text begins.
    let mut outside_from = Some(0usize);
    for_each_tag(s, |tag| {
        if !ok {
            return;
        }
        if seen >= expected.len() || expected[seen] != (tag.name, tag.close) {
            ok = false;
            return;
        }
        seen += 1;
        if !tag.close {
            if let Some(from) = outside_from.take() {
                if !is_blank(&s[from..tag.start]) {
                    ok = false;
                }
            }
        } else {
            outside_from = Some(tag.end);
        }
    });
    ok && seen == expected.len() && outside_from.is_some_and(|from| is_blank(&s[from..]))
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
        assert_eq!(ta("<think>x</think><answer>y</answer><answer>z</answer>"), 0.0);
        assert_eq!(ta("<answer>y</answer><think>x</think>"), 0.0);
        assert_eq!(ta("<think>x<answer>y</answer></think>"), 0.0);
        assert_eq!(ta("<think>x</think><answer>y"), 0.0);
        assert_eq!(ta("<think>x</think><think>x</think><answer>y</answer>"), 0.0);
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
