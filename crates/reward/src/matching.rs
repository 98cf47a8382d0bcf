//! Matching rewards for closed answers: `yes_no` and `mcq` (multiple choice).
//!
//! Both look for whole words only: "eyes" holds no "yes", "Both" holds no "B". A hedge that names
//! both sides ("yes and no", "A or C") scores 0, so that hedging is never rewarded.

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
/// The prediction's letters come from the first of these that finds any:
/// 1. the whole answer is a letter or a list of letters (`B`, `(b)`, `**B.**`, `A, C`);
/// 2. the last "answer is B" / "answer: (B)";
/// 3. explicit marks anywhere: `(B)`, `B.`, `B)`, `B:`, "option B", "choice B";
/// 4. a bare capital letter standing alone (`A`/`I` followed by a lower-case word are read as
///    English, not as options);
/// 5. the text of exactly one of `choices`.
///
/// Two different letters score 0 unless the gold has several, which are compared as sets.
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

/// The letters of the prediction (0 when none are found).
pub fn pred_letters(pred: &str, choices: &[String], valid: Letters) -> Letters {
    if let Some(l) = letter_list(pred, valid) {
        return l;
    }
    let b = pred.as_bytes();
    // 2. The last explicit "answer is X".
    let mut last_answer = 0;
    let mut explicit = 0;
    let mut bare = 0;
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
        if start > 0 && b[start - 1] >= 0x80 {
            continue; // part of a non-ASCII word
        }
        if word.len() == 1 {
            let l = word[0];
            let before = if start > 0 { b[start - 1] } else { b' ' };
            let after = b.get(i).copied().unwrap_or(b' ');
            let upper = l.is_ascii_uppercase();
            let in_range = valid & bit(l) != 0;
            if !in_range {
                continue;
            }
            // `(b)` in either case; `B.`, `B)`, `B:` in upper case only (`e.g.` is not an option).
            let parenthesised = before == b'(' && after == b')';
            let marked = upper
                && matches!(after, b'.' | b')' | b':')
                && !b.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric());
            if parenthesised || marked {
                explicit |= bit(l);
            } else if upper && !((l == b'A' || l == b'I') && followed_by_lower_word(b, i)) {
                bare |= bit(l);
            }
            continue;
        }
        // Marker words: "answer is X", "answer: X", "option X", "choice X".
        let marker = if word.eq_ignore_ascii_case(b"answer") {
            Some(true)
        } else if word.eq_ignore_ascii_case(b"option")
            || word.eq_ignore_ascii_case(b"choice")
            || word.eq_ignore_ascii_case(b"options")
        {
            Some(false)
        } else {
            None
        };
        if let Some(is_answer) = marker {
            if let Some(l) = letter_after_marker(b, i, is_answer) {
                if valid & bit(l) != 0 {
                    if is_answer {
                        last_answer = bit(l);
                    } else {
                        explicit |= bit(l);
                    }
                }
            }
        }
    }
    for tier in [last_answer, explicit, bare] {
        if tier != 0 {
            return tier;
        }
    }
    choice_text_match(pred, choices).unwrap_or(0)
}

fn followed_by_lower_word(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b' ') && b.get(i + 1).is_some_and(|c| c.is_ascii_lowercase())
}

/// After `answer`: ` is X`, `: X`, ` is (X)`, ` is: **X**`. After `option`/`choice`: ` X`, ` (X)`.
fn letter_after_marker(b: &[u8], mut i: usize, is_answer: bool) -> Option<u8> {
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
    let l = *b.get(i)?;
    if !l.is_ascii_alphabetic() || b.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    // Lower case only counts in the explicit "answer is b" form, never "option a good idea".
    if l.is_ascii_lowercase() && !is_answer {
        return None;
    }
    Some(l.to_ascii_uppercase())
}

/// The whole string is a letter or a list of letters: `B`, `(b)`, `B.`, `**B**`, `A, C`,
/// `A and C`, `AC`.
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
        if p.is_empty() || p.eq_ignore_ascii_case("and") {
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
}
