//! ROUGE-L F1, as Google's `rouge-score` computes it without stemming:
//!
//! * tokens: the text lowercased, every run of characters that are not letters or digits is a
//!   separator (`rouge-score` keeps only `[a-z0-9]`; we keep any Unicode letter or digit, which
//!   is the same for ASCII text and does not drop non-Latin words);
//! * LCS = the longest common subsequence of the two token lists;
//! * P = LCS / |prediction|, R = LCS / |reference|, F1 = 2PR / (P + R); 0 when either side has
//!   no token (`rouge-score` does the same).
//!
//! Several references: the best F1 over them (the usual multi-reference convention).

/// Lowercased alphanumeric tokens.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Length of the longest common subsequence (two-row dynamic programme, O(|a|·|b|) time,
/// O(|b|) memory).
pub fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Precision, recall and F1 of ROUGE-L.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RougeL {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// ROUGE-L of `prediction` against one `reference`.
pub fn rouge_l(prediction: &str, reference: &str) -> RougeL {
    let (p, r) = (tokens(prediction), tokens(reference));
    if p.is_empty() || r.is_empty() {
        return RougeL {
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
        };
    }
    let l = lcs_len(&p, &r) as f64;
    let precision = l / p.len() as f64;
    let recall = l / r.len() as f64;
    let f1 = if l == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    RougeL {
        precision,
        recall,
        f1,
    }
}

/// The best ROUGE-L F1 of `prediction` over `references` (0 when there are none).
pub fn rouge_l_max<S: AsRef<str>>(prediction: &str, references: &[S]) -> f64 {
    references
        .iter()
        .map(|r| rouge_l(prediction, r.as_ref()).f1)
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_cases() {
        // Identical up to case and punctuation.
        assert_eq!(rouge_l("The cat sat.", "the CAT, sat").f1, 1.0);
        // LCS "cat on mat" = 3 of 6 (pred) and 3 of 5 (ref): P 1/2, R 3/5, F 6/11.
        let r = rouge_l("the cat was on the mat", "a cat on a mat");
        assert!(close(r.precision, 0.5) && close(r.recall, 0.6), "{r:?}");
        assert!(close(r.f1, 6.0 / 11.0), "{r:?}");
        // Order matters: LCS of "a b c d" and "d c b a" is 1 -> P = R = 1/4.
        assert!(close(rouge_l("a b c d", "d c b a").f1, 0.25));
        // Subsequence, not substring: "a x b y c" vs "a b c" -> LCS 3, P 3/5, R 1.
        assert!(close(rouge_l("a x b y c", "a b c").f1, 2.0 * 0.6 / 1.6));
        // Nothing in common, and empty sides.
        assert_eq!(rouge_l("red circle", "blue square").f1, 0.0);
        assert_eq!(rouge_l("", "a cat").f1, 0.0);
        assert_eq!(rouge_l("...", "a cat").f1, 0.0);
        assert_eq!(rouge_l("a cat", "").f1, 0.0);
        // Non-ASCII words are tokens too.
        assert!(close(rouge_l("café crème", "crème brûlée").f1, 0.5));
        // Best of several references.
        assert!(close(
            rouge_l_max("red circle", &["blue circle", "red circle"]),
            1.0
        ));
        assert_eq!(rouge_l_max::<&str>("red", &[]), 0.0);
    }

    #[test]
    fn lcs_known_values() {
        let a: Vec<char> = "ABCBDAB".chars().collect();
        let b: Vec<char> = "BDCABA".chars().collect();
        assert_eq!(lcs_len(&a, &b), 4);
        assert_eq!(lcs_len::<char>(&[], &b), 0);
    }
}
