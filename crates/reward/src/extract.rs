//! Answer extraction: which part of a response is the answer that accuracy rewards judge.
//!
//! The answer is the content of the **last** `<answer>…</answer>` block (models that revise
//! themselves put the final answer last). With the `boxed` format mode it is the last `\boxed{…}`.
//! When that is absent the fallback decides: `strict` (default) finds no answer, so accuracy is 0;
//! `lenient` takes the last `\boxed{…}`, else the text after the last `</think>`, else the whole
//! response.

use serde::{Deserialize, Serialize};

use crate::format::FormatMode;
use crate::text::{last_boxed, ResponseTags};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    #[default]
    Strict,
    Lenient,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractConfig {
    pub fallback: Fallback,
}

/// The answer text of `response`, or `None` when there is none (accuracy is then 0).
pub fn extract_answer(response: &str, mode: FormatMode, fallback: Fallback) -> Option<&str> {
    extract_answer_scanned(response, &ResponseTags::scan(response), mode, fallback)
}

pub(crate) fn extract_answer_scanned<'a>(
    response: &'a str,
    tags: &ResponseTags,
    mode: FormatMode,
    fallback: Fallback,
) -> Option<&'a str> {
    let block = tags.last_answer.map(|(a, b)| &response[a..b]);
    let primary = match mode {
        FormatMode::Boxed => last_boxed(response),
        _ => block,
    };
    if primary.is_some() {
        return primary;
    }
    match fallback {
        Fallback::Strict => None,
        Fallback::Lenient => last_boxed(response)
            .or(block)
            .or_else(|| tags.last_think_close.map(|e| &response[e..]))
            .or(Some(response)),
    }
}

/// Content of the last complete `<answer>…</answer>` block. A second opening before a closing
/// restarts the block: `<answer>a<answer>b</answer>` answers `b`.
pub fn last_answer_block(response: &str) -> Option<&str> {
    ResponseTags::scan(response)
        .last_answer
        .map(|(a, b)| &response[a..b])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TA: FormatMode = FormatMode::ThinkAnswer;

    #[test]
    fn last_block_wins() {
        let r = "<think>maybe <answer>A</answer></think><answer>B</answer>";
        assert_eq!(extract_answer(r, TA, Fallback::Strict), Some("B"));
        assert_eq!(
            extract_answer(
                "<answer>1</answer> <answer> 2 </answer>",
                TA,
                Fallback::Strict
            ),
            Some(" 2 ")
        );
        assert_eq!(
            extract_answer("<answer>a<answer>b</answer>", TA, Fallback::Strict),
            Some("b")
        );
    }

    #[test]
    fn unclosed_and_fallbacks() {
        let r = "<think>t</think><answer>42";
        assert_eq!(extract_answer(r, TA, Fallback::Strict), None);
        assert_eq!(extract_answer(r, TA, Fallback::Lenient), Some("<answer>42"));
        assert_eq!(
            extract_answer(r"<think>t</think> so \boxed{7}", TA, Fallback::Lenient),
            Some("7")
        );
        assert_eq!(
            extract_answer("just 5", TA, Fallback::Lenient),
            Some("just 5")
        );
        assert_eq!(extract_answer("just 5", TA, Fallback::Strict), None);
        assert_eq!(
            extract_answer(
                r"<answer>x</answer> \boxed{3}",
                FormatMode::Boxed,
                Fallback::Strict
            ),
            Some("3")
        );
    }
}
