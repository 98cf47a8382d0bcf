//! Matching rewards for closed answers: `yes_no` and `mcq` (multiple choice).
//!
//! Both look for whole words only: "eyes" holds no "yes", "Both" holds no "B". A hedge that names
//! both sides ("yes or no", "A or C", "(A)(C)", "either A or C") scores 0, so that hedging is never
//! rewarded: under GRPO a policy finds such a hack within a few steps (listing every option was
//! reported against Visual-RFT's reward).

use crate::number::clip;
use crate::text::strip_wrappers;
use crate::{Accuracy, Skip};

/// The polarity of a yes/no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

/// Finds `yes`/`true` and `no`/`false` as whole words (any case). `None` when neither or both.
pub fn yes_no_polarity(s: &str) -> Option<YesNo> {
    let (mut yes, mut no) = (false, false);
    for w in words(s) {
        if w.len() > 5 {
            continue;
        }
        if w.eq_ignore_ascii_case("yes") || w.eq_ignore_ascii_case("true") {
            yes = true;
        } else if w.eq_ignore_ascii_case("no") || w.eq_ignore_ascii_case("false") {
            no = true;
        }
    }
    match (yes, no) {
        (true, false) => Some(YesNo::Yes),
        (false, true) => Some(YesNo::No),
        _ => None,
    }
}

/// `yes_no` accuracy.
pub fn yes_no_accuracy(pred: &str, gold: &str) -> Accuracy {
    let g = yes_no_polarity(gold).ok_or_else(|| {
        Skip::new(format!(
            "gold answer {:?} is not a yes/no answer",
            clip(gold)
        ))
    })?;
    Ok(if yes_no_polarity(pred) == Some(g) {
        1.0
    } else {
        0.0
    })
}

/// Words: maximal runs of alphanumeric characters (Unicode aware, so `naïve` is one word).
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// A set of option letters as a bit mask: bit 0 is `A`.
pub type Letters = u32;

fn bit(letter: u8) -> Letters {
    1 << (letter.to_ascii_uppercase() - b'A')
}

/// Option letters a sample can use: as many as it has `choices`, else `A`..`Z`.
fn valid_letters(choices: &[String]) -> Letters {
    match choices.len() {
        0 | 27.. => (1 << 26) - 1,
        n => (1 << n) - 1,
    }
}

/// `mcq` accuracy: the chosen option letter(s) must equal the gold's.
///
/// The gold is one letter (`B`, `(B)`), several (`A, C`), or the text of one of `choices`.
/// The prediction's letters (see [`pred_letters`]):
/// 1. the whole answer is a letter or a list of letters (`B`, `(b)`, `**B.**`, `A, C`, `A/C`,
///    `A or C`, `both A and C`);
/// 2. else the **last answer statement** decides: "answer is B" / "answer: (B)", with the letters
///    it lists ("the answer is A or C" names two; "the answer is C, not A" names C);
/// 3. else every option the answer names counts: explicit marks (`(B)`, `B.`, `B)`, `B:`,
///    "option B"), bare capital letters standing alone (`A`/`I` followed by a lower-case word
///    are read as English, unless that word is `or`/`and`/`nor` or a verb such as `is`/`could`:
///    "A or C" and "A is also possible" name A), and the text of a choice when exactly one
///    choice's text appears.
///
/// Several different letters score 0 unless the gold has several, which are compared as sets:
/// a hedge ("A or C", "(A)(C)", "either A or C", "A or dog") never earns a single-letter gold.
pub fn mcq_accuracy(pred: &str, gold: &str, choices: &[String]) -> Accuracy {
    let valid = valid_letters(choices);
    let g = gold_letters(gold, choices, valid).ok_or_else(|| {
        Skip::new(format!(
            "gold answer {:?} is not an option letter{}",
            clip(gold),
            if choices.is_empty() {
                ""
            } else {
                " or the text of a choice"
            }
        ))
    })?;
    Ok(if pred_letters(pred, choices, valid) == g {
        1.0
    } else {
        0.0
    })
}

fn gold_letters(gold: &str, choices: &[String], valid: Letters) -> Option<Letters> {
    if let Some(l) = letter_list(gold, valid) {
        return Some(l);
    }
    choice_text_match(gold, choices)
}

/// The letters of the prediction (0 when none are found), by the rules of [`mcq_accuracy`].
pub fn pred_letters(pred: &str, choices: &[String], valid: Letters) -> Letters {
    if let Some(l) = letter_list(pred, valid) {
        return l;
    }
    let b = pred.as_bytes();
    // The letters of the last "answer is ..." statement, and every option named anywhere.
    let mut last_answer: Option<Letters> = None;
    let mut named: Letters = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !c.is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
            i += 1;
        }
        let word = &b[start..i];
        if start > 0
            && (b[start - 1] >= 0x80 || b[start - 1].is_ascii_digit() || b[start - 1] == b'_')
        {
            continue; // part of a word that starts with a digit, `_` or a non-ASCII letter
        }
        if word.len() == 1 {
            let l = word[0];
            let before = if start > 0 { b[start - 1] } else { b' ' };
            let after = b.get(i).copied().unwrap_or(b' ');
            let upper = l.is_ascii_uppercase();
            if valid & bit(l) == 0 {
                continue;
            }
            // `(b)` in either case; `B.`, `B)`, `B:` in upper case only (`e.g.` is not an option).
            let parenthesised = before == b'(' && after == b')';
            let marked = upper
                && matches!(after, b'.' | b')' | b':')
                && !b.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric());
            if parenthesised || marked || (upper && !reads_as_english(b, l, i)) {
                named |= bit(l);
            }
            continue;
        }
        // Marker words: "answer is X", "answer: X", "option X", "choice X".
        let is_answer = word.eq_ignore_ascii_case(b"answer");
        let is_option = ["option", "options", "choice", "choices"]
            .iter()
            .any(|m| word.eq_ignore_ascii_case(m.as_bytes()));
        if is_answer || is_option {
            if let Some(set) = letters_after_marker(b, i, is_answer) {
                let set = set & valid;
                if set != 0 {
                    if is_answer {
                        last_answer = Some(set);
                    } else {
                        named |= set;
                    }
                }
            }
        }
    }
    if let Some(set) = last_answer {
        return set;
    }
    named | choice_text_match(pred, choices).unwrap_or(0)
}

/// `A` or `I` at `b[..i]` followed by a lower-case word is English ("A cat", "I think"), except
/// before a connective ("A or C" names two options) or a verb that makes the letter a subject
/// ("A is also possible", "A could be right"; "I could" stays English).
fn reads_as_english(b: &[u8], l: u8, i: usize) -> bool {
    if !((l == b'A' || l == b'I') && followed_by_lower_word(b, i)) || connective_at(b, i + 1) {
        return false;
    }
    let w = word_at(b, i + 1);
    let verbs: &[&str] = if l == b'A' {
        &SUBJECT_VERBS
    } else {
        &SUBJECT_VERBS[..7]
    };
    !verbs.iter().any(|v| w.eq_ignore_ascii_case(v.as_bytes()))
}

/// Verbs after which `A` (the first seven: `I` too) is an option letter, not English.
const SUBJECT_VERBS: [&str; 15] = [
    "is", "was", "seems", "looks", "appears", "matches", "fits", "could", "would", "might", "may",
    "can", "will", "should", "must",
];

fn followed_by_lower_word(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b' ') && b.get(i + 1).is_some_and(|c| c.is_ascii_lowercase())
}

/// The whole ASCII word starting at `i`, if any.
fn word_at(b: &[u8], i: usize) -> &[u8] {
    let mut j = i;
    while j < b.len() && b[j].is_ascii_alphabetic() {
        j += 1;
    }
    if b.get(j)
        .is_some_and(|&c| c.is_ascii_digit() || c == b'_' || c >= 0x80)
    {
        return &[];
    }
    &b[i..j]
}

/// Words that join alternatives in a list of options.
const CONNECTIVES: [&str; 3] = ["or", "and", "nor"];
/// Words allowed after a connective before the next option: "A or maybe C".
const FILLERS: [&str; 5] = ["maybe", "perhaps", "possibly", "probably", "also"];

fn connective_at(b: &[u8], i: usize) -> bool {
    let w = word_at(b, i);
    CONNECTIVES
        .iter()
        .any(|c| w.eq_ignore_ascii_case(c.as_bytes()))
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n') {
        i += 1;
    }
    i
}

/// One option letter at `i`, as a list item: `B`, `(B)`, `[b]`, `**B**`, `"B"`. Returns the
/// letter (upper case) and the index after the item.
fn letter_item(b: &[u8], mut i: usize, allow_lower: bool) -> Option<(u8, usize)> {
    while i < b.len() && matches!(b[i], b'*' | b'(' | b'[' | b'"') {
        i += 1;
    }
    let l = *b.get(i)?;
    if !l.is_ascii_alphabetic()
        || b.get(i + 1)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
    {
        return None;
    }
    if l.is_ascii_lowercase() && !allow_lower {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() && matches!(b[j], b'*' | b')' | b']' | b'"') {
        j += 1;
    }
    Some((l.to_ascii_uppercase(), j))
}

/// After `answer`: ` is X`, `: X`, ` is (X)`, ` is: **X**`; after `option`/`choice`: ` X`,
/// ` (X)`. Then more items joined by `,` `/` `&` `;` or a connective ("answer is A or C",
/// "options A and C"): every letter listed. Lower case counts only after `answer` ("option a
/// good idea" is English).
fn letters_after_marker(b: &[u8], mut i: usize, is_answer: bool) -> Option<Letters> {
    // Markdown and brackets around the marker and its letter: "**Answer:** (B)".
    let skip = |b: &[u8], mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'*' | b'(' | b'[' | b'"') {
            i += 1;
        }
        i
    };
    i = skip(b, i);
    if is_answer {
        let mut matched = false;
        if b.get(i) == Some(&b':') {
            i += 1;
            matched = true;
        } else if crate::text::starts_with_ci(&b[i..], b"is")
            && !b.get(i + 2).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 2;
            if b.get(i) == Some(&b':') {
                i += 1;
            }
            matched = true;
        }
        if !matched {
            return None;
        }
        i = skip(b, i);
    }
    let (first, mut j) = letter_item(b, i, is_answer)?;
    let mut set = bit(first);
    // A bounded number of further items: there are at most 26 letters.
    for _ in 0..32 {
        let mut k = skip_spaces(b, j);
        let punct = matches!(b.get(k), Some(b',' | b'/' | b'&' | b';'));
        if punct {
            k = skip_spaces(b, k + 1);
        }
        let word = connective_at(b, k);
        if word {
            k = skip_spaces(b, k + word_at(b, k).len());
            let w = word_at(b, k);
            if FILLERS.iter().any(|f| w.eq_ignore_ascii_case(f.as_bytes())) {
                k = skip_spaces(b, k + w.len());
            }
        }
        if !punct && !word {
            break;
        }
        let Some((l, next)) = letter_item(b, k, is_answer) else {
            break;
        };
        // "the answer is C, A is wrong" and "the answer is b or a cat": the letter starts a
        // sentence or is an article, not another option.
        let lower = b[k..next].iter().any(u8::is_ascii_lowercase);
        let english = followed_by_lower_word(b, next) && !connective_at(b, next + 1);
        if english && (!word || lower || l == b'A' || l == b'I') {
            break;
        }
        set |= bit(l);
        j = next;
    }
    Some(set)
}

/// The whole string is a letter or a list of letters: `B`, `(b)`, `B.`, `**B**`, `A, C`,
/// `A and C`, `A or C`, `either A or C`, `AC`.
fn letter_list(s: &str, valid: Letters) -> Option<Letters> {
    let t = strip_wrappers(s).trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '(' | ')' | '.' | ':' | '*' | '[' | ']' | '"' | '\'')
    });
    if t.is_empty() {
        return None;
    }
    let mut set = 0;
    for part in t.split(|c: char| c == ',' || c == '/' || c == ';' || c.is_whitespace()) {
        let p = part.trim_matches(|c: char| matches!(c, '(' | ')' | '.' | '*'));
        if p.is_empty()
            || ["and", "or", "nor", "either", "both"]
                .iter()
                .any(|w| p.eq_ignore_ascii_case(w))
        {
            continue;
        }
        let bytes = p.as_bytes();
        let letters_only = bytes.iter().all(u8::is_ascii_alphabetic);
        if !letters_only || bytes.len() > 26 {
            return None;
        }
        // `AC` is a list only when upper case; `ac`/`Ab` are words.
        if bytes.len() > 1 && !bytes.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        for &l in bytes {
            if valid & bit(l) == 0 {
                return None;
            }
            set |= bit(l);
        }
    }
    (set != 0).then_some(set)
}

/// The letter of the one choice whose text the answer is or contains as a phrase.
fn choice_text_match(s: &str, choices: &[String]) -> Option<Letters> {
    if choices.is_empty() || choices.len() > 26 {
        return None;
    }
    let norm = normalize_phrase(strip_wrappers(s));
    if norm.is_empty() {
        return None;
    }
    let normed: Vec<String> = choices.iter().map(|c| normalize_phrase(c)).collect();
    if let Some(k) = normed.iter().position(|c| !c.is_empty() && *c == norm) {
        return Some(1 << k);
    }
    let padded = format!(" {norm} ");
    let mut found: Letters = 0;
    for (k, c) in normed.iter().enumerate() {
        if !c.is_empty() && padded.contains(&format!(" {c} ")) {
            found |= 1 << k;
        }
    }
    (found.count_ones() == 1).then_some(found)
}

/// Lower case, punctuation to spaces, runs of white space collapsed.
pub(crate) fn normalize_phrase(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s
        .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '%' || c == '-'))
        .map(|w| w.trim_matches(|c| c == '.' || c == '-'))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no() {
        let acc = |p, g| yes_no_accuracy(p, g);
        assert_eq!(acc("Yes", "yes"), Ok(1.0));
        assert_eq!(acc("yes.", "Yes"), Ok(1.0));
        assert_eq!(acc("True", "yes"), Ok(1.0));
        assert_eq!(acc("No, it is not.", "no"), Ok(1.0));
        assert_eq!(acc("The eyes are blue", "yes"), Ok(0.0));
        assert_eq!(acc("I know nothing", "no"), Ok(0.0));
        assert_eq!(acc("yes and no", "yes"), Ok(0.0));
        assert_eq!(acc("", "no"), Ok(0.0));
        assert_eq!(acc("YES!!!", "yes"), Ok(1.0));
        assert_eq!(acc("sí, yes", "yes"), Ok(1.0));
        assert!(acc("yes", "maybe").is_err());
        assert!(acc("yes", "yes or no").is_err());
    }

    fn mcq(p: &str, g: &str) -> Accuracy {
        mcq_accuracy(p, g, &[])
    }

    #[test]
    fn mcq_forms() {
        for p in [
            "B",
            "(B)",
            "B.",
            "B)",
            "B:",
            "b",
            "(b)",
            "**B**",
            "The answer is B.",
            "answer: (B)",
            "Option B",
            "I choose B",
            "B. dog",
            "The answer is b",
        ] {
            assert_eq!(mcq(p, "B"), Ok(1.0), "{p}");
        }
        assert_eq!(mcq("Both cats", "B"), Ok(0.0));
        assert_eq!(mcq("A cat is shown", "A"), Ok(0.0));
        assert_eq!(mcq("A", "A"), Ok(1.0));
        assert_eq!(mcq("A or C", "A"), Ok(0.0));
        assert_eq!(mcq("(A) or (C)", "A"), Ok(0.0));
        assert_eq!(mcq("A, C", "A, C"), Ok(1.0));
        assert_eq!(mcq("C and A", "AC"), Ok(1.0));
        assert_eq!(mcq("A", "A, C"), Ok(0.0));
        assert_eq!(mcq("First I thought A. But the answer is C.", "C"), Ok(1.0));
        assert_eq!(
            mcq("The answer is A. No wait, the answer is C", "C"),
            Ok(1.0)
        );
        assert!(mcq("B", "banana split").is_err());
    }

    #[test]
    fn mcq_choices() {
        let ch: Vec<String> = ["cat", "dog", "red fox"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let acc = |p, g| mcq_accuracy(p, g, &ch);
        assert_eq!(acc("dog", "B"), Ok(1.0));
        assert_eq!(acc("It is a red fox.", "C"), Ok(1.0));
        assert_eq!(acc("cat or dog", "A"), Ok(0.0));
        assert_eq!(acc("B", "dog"), Ok(1.0));
        // D is out of range with three choices, so it is not an option letter.
        assert_eq!(acc("D", "A"), Ok(0.0));
        assert!(acc("A", "D").is_err());
    }

    #[test]
    fn mcq_hedges_score_zero() {
        for p in [
            "A or C",
            "C or A",
            "A/C",
            "A, C",
            "A; C",
            "either A or C",
            "Either A or C.",
            "(A)(C)",
            "(A) or (C)",
            "A and C",
            "both A and C",
            "A or maybe C",
            "A, B, C or D",
            "ABCD",
            "(A) or C",
            "A (or C)",
            "I think A, but C is also possible",
            "The answer is A or C",
            "The answer is A/C.",
            "The answer is (A) or (C).",
            "The answer is A, C",
            "The answer is a or c",
            "The answer is A, or maybe C",
            "Option A or C",
            "Options A and C",
            "**A** or **C**",
            "A or C, not B",
        ] {
            assert_eq!(mcq(p, "A"), Ok(0.0), "{p} (gold A)");
            assert_eq!(mcq(p, "C"), Ok(0.0), "{p} (gold C)");
        }
        // A gold with several letters is matched as a set.
        assert_eq!(mcq("A or C", "A, C"), Ok(1.0));
        assert_eq!(mcq("(A)(C)", "AC"), Ok(1.0));
        assert_eq!(mcq("The answer is A and C", "A, C"), Ok(1.0));
        // The last answer statement decides.
        assert_eq!(mcq("The answer is C, not A", "C"), Ok(1.0));
        assert_eq!(mcq("The answer is C, not A", "A"), Ok(0.0));
        assert_eq!(mcq("A is tempting, but the answer is C.", "C"), Ok(1.0));
        assert_eq!(mcq("The answer is C, A is wrong", "C"), Ok(1.0));
        assert_eq!(mcq("The answer is b or a cat", "B"), Ok(1.0));
        assert_eq!(mcq("The answer is C or not", "C"), Ok(1.0));
        // Articles and pronouns are still English; a letter as a subject is not.
        assert_eq!(mcq("A cat, so C", "C"), Ok(1.0));
        assert_eq!(mcq("I think C", "C"), Ok(1.0));
        assert_eq!(mcq("I could pick C", "C"), Ok(1.0));
        assert_eq!(mcq("I think B, but A is also possible", "B"), Ok(0.0));
        assert_eq!(mcq("A could be right, or C", "C"), Ok(0.0));
    }

    #[test]
    fn mcq_hedges_with_choice_texts() {
        let ch: Vec<String> = ["cat", "dog", "red fox"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let acc = |p, g| mcq_accuracy(p, g, &ch);
        for p in ["cat or dog", "A or dog", "(A) dog", "dog, or maybe A"] {
            assert_eq!(acc(p, "A"), Ok(0.0), "{p}");
            assert_eq!(acc(p, "B"), Ok(0.0), "{p}");
        }
        assert_eq!(acc("B. dog", "B"), Ok(1.0));
        assert_eq!(acc("(C) red fox", "C"), Ok(1.0));
        assert_eq!(acc("The answer is dog", "B"), Ok(1.0));
    }

    #[test]
    fn yes_no_hedges() {
        for p in [
            "yes or no",
            "Yes/No",
            "yes, no",
            "no or yes",
            "True or false",
        ] {
            assert_eq!(yes_no_accuracy(p, "yes"), Ok(0.0), "{p}");
            assert_eq!(yes_no_accuracy(p, "no"), Ok(0.0), "{p}");
        }
    }
}
