//! How a multiple-choice problem shows its choices: one `(A) choice` line per choice, and
//! whether a problem text already lists them. The adapters write problems with it and the prompt
//! builder reads them with it, so both sides agree on the layout.

/// `Options:` and one `(A) choice` line per choice.
pub fn render_options(choices: &[String]) -> String {
    let mut s = String::from("Options:");
    for (i, c) in choices.iter().enumerate() {
        s.push_str(&format!("\n({}) {}", letter(i), c));
    }
    s
}

/// The letter of choice `i` (`A`, `B`, ...; `Z` from the 26th on).
pub fn letter(i: usize) -> char {
    (b'A' + i.min(25) as u8) as char
}

/// Whether the problem text already lists every choice with its letter (`(A) cat`, `A. cat`,
/// `A) cat` or `A: cat`), as the data engine's ScienceQA and easy-vqa adapters write them.
pub fn options_shown(problem: &str, choices: &[String]) -> bool {
    choices.iter().enumerate().all(|(i, c)| {
        let l = letter(i);
        [
            format!("({l}) {c}"),
            format!("{l}. {c}"),
            format!("{l}) {c}"),
            format!("{l}: {c}"),
        ]
        .iter()
        .any(|p| problem.contains(p.as_str()))
    })
}
