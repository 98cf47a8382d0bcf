//! Byte-level scanners shared by the format reward and answer extraction.
//!
//! Responses are scanned once, left to right, without regexes or allocation: rewards run in the
//! hot loop of a trainer, and a linear scan is also what keeps a 1 MB pathological response cheap.

/// The two tags of the R1 response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagName {
    Think,
    Answer,
}

/// One `<think>`, `</think>`, `<answer>` or `</answer>` found in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag {
    pub name: TagName,
    pub close: bool,
    /// Byte offset of the `<`.
    pub start: usize,
    /// Byte offset just past the `>`.
    pub end: usize,
}

/// Calls `f` for every think/answer tag in `s`, in order. Tags tolerate white space inside them
/// (`< answer >`, `</ answer>`) and any letter case, because models trained on slightly different
/// templates emit both and a format reward that rejects them teaches nothing useful.
pub(crate) fn for_each_tag(s: &str, mut f: impl FnMut(Tag)) {
    let b = s.as_bytes();
    let mut pos = 0;
    while let Some(off) = memchr::memchr(b'<', &b[pos..]) {
        let start = pos + off;
        match parse_tag_at(b, start) {
            Some(tag) => {
                pos = tag.end;
                f(tag);
            }
            None => pos = start + 1,
        }
    }
}

/// Everything the format reward and answer extraction need from a response's tags, found in
/// one pass.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ResponseTags {
    /// The first four tags (enough to check any format mode) and how many tags there are.
    pub first: [Option<Tag>; 4],
    pub count: usize,
    /// Byte span of the content of the last complete `<answer>…</answer>`.
    pub last_answer: Option<(usize, usize)>,
    /// End of the last `</think>`.
    pub last_think_close: Option<usize>,
}

impl ResponseTags {
    pub fn scan(s: &str) -> ResponseTags {
        let mut t = ResponseTags::default();
        let mut open_answer: Option<usize> = None;
        for_each_tag(s, |tag| {
            if t.count < 4 {
                t.first[t.count] = Some(tag);
            }
            t.count += 1;
            match (tag.name, tag.close) {
                (TagName::Answer, false) => open_answer = Some(tag.end),
                (TagName::Answer, true) => {
                    if let Some(start) = open_answer.take() {
                        t.last_answer = Some((start, tag.start));
                    }
                }
                (TagName::Think, true) => t.last_think_close = Some(tag.end),
                (TagName::Think, false) => {}
            }
        });
        t
    }

    /// True when the tags are exactly `expected`, in order, and the text outside the tag pairs
    /// (before the first, between a closing and the next opening, after the last) is blank.
    pub fn follows(&self, s: &str, expected: &[(TagName, bool)]) -> bool {
        if self.count != expected.len() || expected.len() > self.first.len() {
            return false;
        }
        let mut outside_from = 0usize;
        for (slot, want) in self.first.iter().zip(expected) {
            let Some(tag) = slot else { return false };
            if (tag.name, tag.close) != *want {
                return false;
            }
            if tag.close {
                outside_from = tag.end;
            } else if !is_blank(&s[outside_from..tag.start]) {
                return false;
            }
        }
        is_blank(&s[outside_from..])
    }
}

fn parse_tag_at(b: &[u8], start: usize) -> Option<Tag> {
    let mut i = start + 1;
    i = skip_ws(b, i);
    let close = b.get(i) == Some(&b'/');
    if close {
        i = skip_ws(b, i + 1);
    }
    let (name, len) = if starts_with_ci(&b[i.min(b.len())..], b"think") {
        (TagName::Think, 5)
    } else if starts_with_ci(&b[i.min(b.len())..], b"answer") {
        (TagName::Answer, 6)
    } else {
        return None;
    };
    i = skip_ws(b, i + len);
    if b.get(i) != Some(&b'>') {
        return None;
    }
    Some(Tag {
        name,
        close,
        start,
        end: i + 1,
    })
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

pub(crate) fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

/// True when `s` holds nothing but white space (Unicode white space included).
pub(crate) fn is_blank(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_whitespace()) || s.trim().is_empty()
}

/// Finds every `\boxed{…}` (also `\fbox{…}`) with balanced braces and returns the content of the
/// last one. Braces are matched with a counter, not recursion, so deep nesting cannot overflow
/// the stack; an unbalanced `\boxed{` is ignored.
pub(crate) fn last_boxed(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut found = None;
    let mut pos = 0;
    while let Some(off) = memchr::memchr(b'\\', &b[pos..]) {
        let start = pos + off;
        let rest = &b[start + 1..];
        let name_len = if rest.starts_with(b"boxed") {
            5
        } else if rest.starts_with(b"fbox") {
            4
        } else {
            pos = start + 1;
            continue;
        };
        let mut i = skip_ws(b, start + 1 + name_len);
        if b.get(i) != Some(&b'{') {
            pos = start + 1;
            continue;
        }
        i += 1;
        let content_start = i;
        let mut depth = 1usize;
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if depth == 0 {
            found = Some(&s[content_start..i]);
            pos = i + 1;
        } else {
            // Unbalanced: nothing after it can close a box either.
            break;
        }
    }
    found
}

/// Image / video placeholder and vision-boundary tokens of the VLM chat templates (Qwen2-VL,
/// Qwen2.5-VL, Qwen3-VL; InternVL; the raw `<image>` / `<video>` placeholders of LLaVA-style
/// data). They are never part of an answer: a policy that samples them (verl#7038), or a trainer
/// that decodes with special tokens kept, must not change a score, so they are removed from a
/// response before anything reads it. Box tokens (`<|box_start|>`, `<|object_ref_start|>`) are
/// *not* here: they carry Qwen's grounding answers.
pub const VISION_TOKENS: [&str; 10] = [
    "<|image_pad|>",
    "<|video_pad|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<IMG_CONTEXT>",
    "<img>",
    "</img>",
    "<image>",
    "<video>",
];

/// The vision token starting at byte `i` of `b`, if any.
fn vision_token_at(b: &[u8], i: usize) -> Option<&'static str> {
    let rest = &b[i..];
    VISION_TOKENS
        .iter()
        .copied()
        .find(|t| rest.starts_with(t.as_bytes()))
}

/// `s` without its [`VISION_TOKENS`]; borrowed (no copy) when it holds none, which is the
/// common case, so the hot path pays one `memchr` scan over the `<` of the tags.
pub fn strip_vision_tokens(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let mut pos = 0;
    let first = loop {
        match memchr::memchr(b'<', &b[pos..]) {
            Some(off) => {
                let at = pos + off;
                if let Some(t) = vision_token_at(b, at) {
                    break (at, t.len());
                }
                pos = at + 1;
            }
            None => return std::borrow::Cow::Borrowed(s),
        }
    };
    let mut out = String::with_capacity(s.len());
    let (mut at, mut len) = first;
    let mut copied_to = 0;
    loop {
        out.push_str(&s[copied_to..at]);
        copied_to = at + len;
        pos = copied_to;
        // Find the next token; every token starts with `<`, so the text between is copied whole.
        let next = loop {
            match memchr::memchr(b'<', &b[pos..]) {
                Some(off) => {
                    let i = pos + off;
                    if let Some(t) = vision_token_at(b, i) {
                        break Some((i, t.len()));
                    }
                    pos = i + 1;
                }
                None => break None,
            }
        };
        match next {
            Some((i, l)) => (at, len) = (i, l),
            None => break,
        }
    }
    out.push_str(&s[copied_to..]);
    std::borrow::Cow::Owned(out)
}

/// Strips one pair of the wrappers models put around a short answer: `\boxed{}`, `$…$`,
/// `\(…\)`, `**…**`, quotes. Applied repeatedly by callers that want the bare value.
pub(crate) fn strip_wrappers(mut s: &str) -> &str {
    loop {
        let t = s.trim();
        let next = if let Some(inner) = whole_boxed(t) {
            inner
        } else if let Some(inner) = strip_pair(t, "$", "$") {
            inner
        } else if let Some(inner) = strip_pair(t, "\\(", "\\)") {
            inner
        } else if let Some(inner) = strip_pair(t, "\\[", "\\]") {
            inner
        } else if let Some(inner) = strip_pair(t, "**", "**") {
            inner
        } else if let Some(inner) = strip_pair(t, "\"", "\"") {
            inner
        } else if let Some(inner) = strip_pair(t, "`", "`") {
            inner
        } else {
            return t;
        };
        // Every wrapper removed is non-empty, so this loop always terminates.
        s = next;
    }
}

fn strip_pair<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    if s.len() >= open.len() + close.len() && s.starts_with(open) && s.ends_with(close) {
        Some(&s[open.len()..s.len() - close.len()])
    } else {
        None
    }
}

/// `\boxed{X}` spanning the whole string: returns `X`.
fn whole_boxed(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("\\boxed")?.trim_start();
    let inner = rest.strip_prefix('{')?.strip_suffix('}')?;
    // The braces must match each other, not `\boxed{a} + \boxed{b}`.
    let mut depth = 0i64;
    for c in inner.bytes() {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    (depth == 0).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<(TagName, bool)> {
        let mut v = Vec::new();
        for_each_tag(s, |t| v.push((t.name, t.close)));
        v
    }

    #[test]
    fn finds_tolerant_tags() {
        assert_eq!(
            tags("<think>a < b</think>< Answer >x</ answer >"),
            vec![
                (TagName::Think, false),
                (TagName::Think, true),
                (TagName::Answer, false),
                (TagName::Answer, true)
            ]
        );
        assert!(tags("<thinking> <answers> <a>").is_empty());
        assert!(tags("<").is_empty());
        assert!(tags("< /").is_empty());
    }

    #[test]
    fn vision_tokens_are_stripped() {
        assert!(matches!(
            strip_vision_tokens("<think>x</think><answer>B</answer>"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            strip_vision_tokens(
                "<|vision_start|><|image_pad|><|image_pad|><|vision_end|><answer>B<|video_pad|></answer>"
            ),
            "<answer>B</answer>"
        );
        assert_eq!(strip_vision_tokens("<image><image>"), "");
        assert_eq!(strip_vision_tokens("a<|image_pad"), "a<|image_pad");
        // Box tokens are answers, not placeholders.
        let qwen = "<|box_start|>(1,2),(3,4)<|box_end|>";
        assert_eq!(strip_vision_tokens(qwen), qwen);
        let many = format!("<answer>{}7</answer>", "<|image_pad|>".repeat(10_000));
        assert_eq!(strip_vision_tokens(&many), "<answer>7</answer>");
        assert_eq!(strip_vision_tokens("é<img>ü</img>"), "éü");
    }

    #[test]
    fn boxed() {
        assert_eq!(
            last_boxed(r"\boxed{1} and \boxed{\frac{1}{2}}"),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(last_boxed(r"\boxed{1} and \boxed{2"), Some("1"));
        assert_eq!(last_boxed(r"\boxed 3"), None);
        assert_eq!(last_boxed(r"\fbox{7}"), Some("7"));
        assert_eq!(strip_wrappers(r" $\boxed{42}$ "), "42");
        assert_eq!(
            strip_wrappers(r"\boxed{a} + \boxed{b}"),
            r"\boxed{a} + \boxed{b}"
        );
        assert_eq!(strip_wrappers("**B**"), "B");
    }
}
