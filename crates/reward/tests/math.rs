//! Integration tests of the math equivalence reward: every supported construct, the hard cases
//! (percent, separators, units, unicode, zero, negatives), adversarial inputs (1 MB of nesting,
//! garbage), property tests that nothing panics, and thread safety.

use mixed_r1_reward::math::{eval_number, math_accuracy, parse_math, MathConfig, MathValue};
use proptest::prelude::*;
use rayon::prelude::*;

fn cfg() -> MathConfig {
    MathConfig::default()
}

fn score(pred: &str, gold: &str) -> Result<f64, String> {
    math_accuracy(pred, gold, &cfg()).map_err(|s| s.0)
}

#[track_caller]
fn same(pred: &str, gold: &str) {
    assert_eq!(score(pred, gold), Ok(1.0), "expected {pred:?} == {gold:?}");
}

#[track_caller]
fn differ(pred: &str, gold: &str) {
    assert_eq!(score(pred, gold), Ok(0.0), "expected {pred:?} != {gold:?}");
}

#[track_caller]
fn skip(pred: &str, gold: &str) {
    assert!(
        score(pred, gold).is_err(),
        "expected a skip for gold {gold:?}, got {:?}",
        score(pred, gold)
    );
}

#[track_caller]
fn num(text: &str, want: f64) {
    let got = eval_number(text, &cfg());
    match got {
        Some(v) => assert!(
            (v - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{text:?}: got {v}, want {want}"
        ),
        None => panic!("{text:?}: no number, want {want}"),
    }
}

#[test]
fn integers_decimals_signs() {
    same("42", "42");
    same("42.0", "42");
    same("+7", "7");
    same("-3", "-3");
    differ("3", "-3");
    same(".5", "0.5");
    same("0.50", "1/2");
    differ("43", "42");
    same("1000000", "1,000,000");
    same("1,234.5", "1234.5");
    same(r"1{,}000", "1000");
    num("1,000,000", 1e6);
}

#[test]
fn scientific_notation() {
    same("1e3", "1000");
    same("2.5E-3", "0.0025");
    same(r"1.5 \times 10^{3}", "1500");
    same(r"3\cdot10^5", "300000");
    num("6.02e23", 6.02e23);
}

#[test]
fn percent_currency_units() {
    same(r"50\%", "50");
    same("50%", r"50\%");
    differ(r"50\%", "0.5");
    same(r"\$5", "5");
    same(r"\$1,250.50", "1250.5");
    same(r"10 \text{ cm}", "10");
    same(r"10\,\mathrm{cm}^2", "10");
    same("10 cm", "10");
    same("25 dollars", "25");
    same("45 degrees", "45");
    same(r"30^\circ", "30");
    same(r"30^{\circ}", "30");
    same("30°", "30");
    same(r"5\mbox{ apples}", "5");
    same("12 inches", "12");
}

#[test]
fn fractions() {
    same(r"\frac{1}{2}", "0.5");
    same(r"\dfrac{3}{4}", "0.75");
    same(r"\tfrac{3}{4}", "3/4");
    same(r"\frac12", "0.5");
    same(r"\frac1{2}", "0.5");
    same(r"\frac{1}2", "0.5");
    same(r"-\frac{2}{3}", r"\frac{-2}{3}");
    same(r"\frac{\frac{1}{2}}{3}", r"\frac16");
    same("6/8", r"\frac{3}{4}");
    // 1/3 vs 0.333: relative error 1e-3 is far outside 1e-6.
    differ("0.333", r"\frac{1}{3}");
    same("0.3333333", r"\frac{1}{3}");
    differ(r"\frac{2}{3}", r"\frac{3}{2}");
}

#[test]
fn mixed_numbers() {
    same(r"1\frac{1}{2}", "1.5");
    same(r"2\frac{3}{4}", r"\frac{11}{4}");
    same("2 1/2", "2.5");
    same(r"-1\frac12", "-1.5");
    // A product stays a product when the fraction has symbols.
    same(r"2\frac{x}{2}", "x");
}

#[test]
fn roots_and_powers() {
    same(r"\sqrt{4}", "2");
    same(r"\sqrt4", "2");
    same(r"\sqrt[3]{27}", "3");
    same(r"\sqrt[3]{-8}", "-2");
    same(r"2\sqrt{2}", r"\sqrt{8}");
    same(r"3\sqrt{2}", "4.242640687");
    same("2^10", "1024");
    same("2^{10}", "1024");
    same("x^{2}", "x^2");
    same("2**3", "8");
    same(r"\frac{\sqrt{3}}{2}", r"\sin(\pi/3)");
    same(r"8^{1/3}", "2");
    same(r"\sqrt{2}", "1.41421356");
}

#[test]
fn constants_and_functions() {
    same(r"\pi", "3.14159265");
    same(r"2\pi", "6.283185307");
    same("π", r"\pi");
    same(r"\pi r^2", r"r^2\pi");
    same("e", "2.718281828");
    same(r"e^{2}", "7.389056099");
    same(r"\ln e", "1");
    same(r"\log_2 8", "3");
    same(r"\log_{10} 1000", "3");
    same(r"\sin 0", "0");
    same(r"\cos(\pi)", "-1");
    same(r"\tan\frac{\pi}{4}", "1");
    same(r"\sin^2 x + \cos^2 x", "1");
    same(r"\sin^{-1}(1)", r"\frac{\pi}{2}");
    same("5!", "120");
    same(r"\binom{5}{2}", "10");
    same("|-3|", "3");
    same(r"\left| -3 \right|", "3");
    same(r"\lfloor 2.7 \rfloor", "2");
    same(r"\lceil 2.1 \rceil", "3");
    same("sqrt(16)", "4");
}

#[test]
fn operators_and_implicit_multiplication() {
    same(r"2 \times 3", "6");
    same(r"2 \cdot 3", "6");
    same(r"6 \div 3", "2");
    same("2(3)", "6");
    same("2(3+4)", "14");
    same(r"\left( 1 + 2 \right) \cdot 3", "9");
    same(r"2\,000", "2000");
    same(r"3\!\cdot\!4", "12");
    same("2x", "x*2");
    same("(x+1)(x-1)", "x^2-1");
}

#[test]
fn infinity() {
    same(r"\infty", r"\infty");
    same(r"-\infty", r"-\infty");
    same("∞", r"\infty");
    differ(r"\infty", r"-\infty");
    differ("1000000", r"\infty");
}

#[test]
fn wrappers_and_prefixes() {
    same(r"\boxed{5}", "5");
    same(r"$5$", "5");
    same(r"$$5$$", "5");
    same(r"\(5\)", "5");
    same(r"\[5\]", "5");
    same(r"The answer is $\boxed{\frac{1}{2}}$.", "0.5");
    same("The answer is 5", "5");
    same("The final answer is $5$. I hope it is correct.", "5");
    same("Answer: 12", "12");
    same("x = 5", "5");
    same(r"y=\frac12", "0.5");
    same("5", "x = 5");
    same(r"\boxed{x = 3}", "3");
    same(r"2 + 3 = 5", "5");
    same("= 7", "7");
}

#[test]
fn more_realistic_answers() {
    same(r"\dfrac{1}{2}\text{ cm}", "0.5");
    same("5.", "5");
    same(r"\$1.50", "1.5");
    same("1/2", r"\frac12");
    same(r"20 \text{ and } 30", "20, 30");
    same(r"3.5\text{ hours}", "3.5");
    same(r"7\%", "7");
    same(r"2\times 10^{-3}", "0.002");
    same("a = 2, b = 3", "(2, 3)");
    same(r"\left\{1,2\right\}", r"\{2, 1\}");
    same(r"-\frac{\sqrt{3}}{2}", "-0.8660254038");
    same("f(x) = x^2 + 1", "x^2+1");
    same("g(a, b) = a + b", "b + a");
    same(r"\frac{1}{2} \text{ or } \frac{1}{3}", r"\frac13, \frac12");
    same(r"\text{The answer is } 12", "12");
    same("12 square units", "12");
    same(r"6\text{ m}^2", "6");
    differ(r"\frac{1}{2}x", "0.5");
}

#[test]
fn symbolic_expressions() {
    same("2x+1", "1+2x");
    same(r"\frac{x}{2}", "0.5x");
    same("x^2-1", "(x-1)(x+1)");
    same("(a+b)^2", "a^2+2ab+b^2");
    same(r"\frac{x^2-1}{x-1}", "x+1");
    same(r"\sqrt{x}\sqrt{x}", "x");
    same(r"\theta + 1", r"1 + \theta");
    same("x_1 + x_2", "x_{2} + x_{1}");
    differ("2x+1", "2x-1");
    differ("x", "y");
    differ("x^2", "x^3");
    differ("|x|", "x");
    differ(r"\sqrt{x^2}", "x");
    differ("2x", "2");
    same("y = 2x + 1", "2x+1");
    same("x^2 + y^2 = 1", "2x^2 + 2y^2 = 2");
    same("x + y = 1", "1 - x - y = 0");
    differ("x + y = 1", "x - y = 1");
    same("2+3i", "3i+2");
}

#[test]
fn intervals() {
    same("(1, 2]", "(1,2]");
    differ("(1, 2)", "(1, 2]");
    differ("[1, 2]", "(1, 2]");
    same(r"\left[ \frac{1}{2}, 3 \right)", "[0.5, 3)");
    same(r"(-\infty, 3)", r"(-\infty,3)");
    same(
        r"(-\infty, 0) \cup (1, \infty)",
        r"(1,\infty)\cup(-\infty,0)",
    );
    differ(
        r"(-\infty, 0) \cup (1, \infty)",
        r"(-\infty,0]\cup(1,\infty)",
    );
    same(r"x \in (1, 2]", "(1, 2]");
    same("x > 5", r"(5, \infty)");
    same(r"x \ge 5", r"[5, \infty)");
    same(r"x \leq -1", r"(-\infty, -1]");
    same(r"1 < x \le 2", "(1, 2]");
    same(r"5 < x", r"(5, \infty)");
    same(r"x < 3", r"(-\infty, 3)");
}

#[test]
fn sets_tuples_lists() {
    same(r"\{1, 2, 3\}", r"\{3, 2, 1\}");
    same(r"\{1, 2, 2\}", r"\{1, 2\}");
    differ(r"\{1, 2\}", r"\{1, 2, 3\}");
    same(r"\{5\}", "5");
    same("(1, 2)", "(1,2)");
    differ("(2, 1)", "(1, 2)");
    same("(1, 2, 3)", "(1,2,3)");
    differ("(1, 2, 3)", "(1,3,2)");
    // Bare lists are sets (as in math-verify) ...
    same("1, 2, 3", "3, 2, 1");
    same("3, 1, 2", r"\{1, 2, 3\}");
    differ("1, 2", "1, 2, 3");
    // ... and match a parenthesised tuple item by item.
    same("1, 2", "(1, 2)");
    differ("2, 1", "(1, 2)");
    same(r"x = 1, y = 2", "1, 2");
    same(r"2 \text{ or } 3", "2, 3");
    same("x = 2 or x = -3", "-3, 2");
    same(r"3 \pm \sqrt{2}", r"3+\sqrt{2}, 3-\sqrt{2}");
    same(r"\pm 2", "2, -2");
    same(r"\emptyset", r"\{\}");
    same(r"\frac{1}{2}, \frac{1}{3}", "0.5, 0.3333333333");
    differ("(1,2)", "[1,2]");
    // Inside brackets a comma is a separator, never thousands.
    differ("(1,234)", "1234");
    same(
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
        r"\begin{bmatrix} 1 \\ 2 \end{bmatrix}",
    );
    differ(
        r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",
        r"\begin{pmatrix} 1 & 3 \\ 2 & 4 \end{pmatrix}",
    );
    same(r"\langle 1, 2 \rangle", "(1, 2)");
}

#[test]
fn numeric_tolerance_zero_and_negatives() {
    same("0", "0");
    same("0.0", "0");
    same("-0", "0");
    differ("0.0000001", "0");
    differ("0.001", "0");
    same(r"\sin(\pi)", "0");
    same("99.9999999", "100");
    same("99.99999", "100");
    differ("99.999", "100");
    same("-12.5", r"-\frac{25}{2}");
    differ("12.5", "-12.5");
    same("1e-7", "0.0000001");
    differ("2e-7", "1e-7");
    let loose = MathConfig {
        rel_tol: 1e-2,
        ..MathConfig::default()
    };
    assert_eq!(math_accuracy("0.333", r"\frac13", &loose), Ok(1.0));
}

#[test]
fn years_and_large_numbers() {
    same("2024", "2024");
    differ("2023", "2024");
    same("1,999", "1999");
    same("123456789", "123,456,789");
    differ("123456788", "123456789");
}

#[test]
fn unicode() {
    same("2π", r"2\pi");
    same("3×4", "12");
    same("−5", "-5");
    same("√2", r"\sqrt{2}");
    same("√(9)", "3");
    same("8÷2", "4");
    same("x²", "x^2");
    same("2 ± 1", "1, 3");
    same("x ≥ 2", r"[2, \infty)");
    same("（1，2）", "(1, 2)");
}

#[test]
fn text_answers() {
    same(r"\text{Evelyn}", r"\text{Evelyn}");
    same("evelyn", r"\text{Evelyn}");
    differ("Bob", r"\text{Evelyn}");
    differ("5", r"\text{Evelyn}");
}

#[test]
fn gold_that_cannot_be_parsed_is_skipped() {
    skip("5", "");
    skip("5", "   ");
    skip("5", "}{");
    skip("5", "((");
    skip("5", r"\frac{1}{");
    skip("5", "+");
    skip("5", "1/0 - 1/0");
    skip("", "((");
    // Never 1.0 for an unparseable gold, even when the prediction is the same garbage.
    skip("}{", "}{");
}

#[test]
fn prediction_that_cannot_be_parsed_scores_zero() {
    differ("", "5");
    differ("   ", "5");
    differ("}{", "5");
    differ(r"\frac{1}{", "0.5");
    differ("(((1)", "1");
    differ("{1", "1");
    differ("%$#@", "5");
    differ(r"\boxed{", "5");
    differ(r"\\\\", "5");
    differ(r"\left(", "5");
}

#[test]
fn unclosed_braces_in_gold_and_pred() {
    skip("1", "{1");
    differ("{{2}", "2");
    skip(r"\sqrt{2", r"\sqrt{2");
}

#[test]
fn parse_math_exposes_the_value() {
    let v = parse_math(r"\boxed{\frac{3}{4}}", &cfg()).unwrap();
    assert_eq!(v.as_number(), Some(0.75));
    assert!(matches!(
        parse_math("(1, 2]", &cfg()).unwrap(),
        MathValue::Tuple {
            open: '(',
            close: ']',
            ..
        }
    ));
    assert!(matches!(
        parse_math(r"\{1,2\}", &cfg()).unwrap(),
        MathValue::Set(_)
    ));
    assert!(matches!(
        parse_math("1, 2", &cfg()).unwrap(),
        MathValue::List(_)
    ));
    assert!(matches!(
        parse_math("x+y=1", &cfg()).unwrap(),
        MathValue::Equation(..)
    ));
    assert!(parse_math("", &cfg()).is_err());
    assert_eq!(eval_number("x + 1", &cfg()), None);
    num(r"2\sqrt{2}", 8f64.sqrt());
    num("3 1/4", 3.25);
}

fn huge(unit: &str, n: usize) -> String {
    unit.repeat(n)
}

/// A config that lets 1 MB inputs reach the parser, so the depth limit (not the length limit) is
/// what stops them.
fn unlimited_len() -> MathConfig {
    MathConfig {
        max_chars: usize::MAX,
        ..MathConfig::default()
    }
}

#[test]
fn megabyte_of_nesting_returns() {
    let mb = 1 << 20;
    let inputs = [
        huge("{", mb),
        huge("(", mb),
        huge("[", mb),
        huge(r"\{", mb / 2),
        huge(r"\frac{", mb / 6),
        huge(r"\sqrt{", mb / 6),
        huge("-", mb),
        huge("2^", mb / 2),
        huge(r"\sin ", mb / 5),
        huge("|", mb),
        format!("{}1{}", huge("(", mb / 2), huge(")", mb / 2)),
        format!("{}1{}", huge("{", mb / 2), huge("}", mb / 2)),
        huge(r"\text{", mb / 6),
        huge(r"\boxed{", mb / 7),
        huge(r"\left(", mb / 6),
        huge(r"\begin{pmatrix}", mb / 15),
    ];
    for c in [cfg(), unlimited_len()] {
        for s in &inputs {
            assert_eq!(
                math_accuracy(s, "1", &c),
                Ok(0.0),
                "pred of {} bytes",
                s.len()
            );
            assert!(
                math_accuracy("1", s, &c).is_err(),
                "gold of {} bytes",
                s.len()
            );
        }
    }
}

#[test]
fn megabyte_of_flat_input_returns() {
    let mb = 1 << 20;
    let c = MathConfig {
        deadline_ms: 0,
        ..unlimited_len()
    };
    // Long but shallow: parses and evaluates (flat sums do not recurse).
    let sum = format!("1{}", huge("+1", mb / 2));
    let r = math_accuracy(&sum, &format!("{}", mb / 2 + 1), &c);
    assert_eq!(r, Ok(1.0));
    let digits = huge("9", mb);
    assert_eq!(math_accuracy(&digits, "1", &c), Ok(0.0));
    let commas = huge("1,", mb / 2);
    assert_eq!(
        math_accuracy(&commas, "1", &c),
        Ok(0.0),
        "a list is not a number"
    );
    let words = huge("word ", mb / 5);
    assert_eq!(math_accuracy(&words, "1", &c), Ok(0.0));
    let facts = huge("!", mb);
    assert_eq!(math_accuracy(&facts, "1", &c), Ok(0.0));
    // The default deadline also bounds these, with either outcome allowed for the sum.
    for s in [&sum, &digits, &commas, &words] {
        let r = math_accuracy(s, "1", &unlimited_len());
        assert!(matches!(r, Ok(x) if x == 0.0 || x == 1.0));
    }
}

#[test]
fn deadline_is_enforced() {
    // A long list compared pairwise is quadratic (9 million symbolic comparisons here, seconds
    // of work); the deadline cuts it short. On a loaded machine the deadline may already pass
    // while parsing the gold, which is a skip; either way never a 1.
    let n = 3_000;
    let a: Vec<String> = (0..n).map(|i| format!("x+{i}")).collect();
    let b: Vec<String> = (0..n).rev().map(|i| format!("x+{i}")).collect();
    let c = MathConfig {
        deadline_ms: 20,
        ..MathConfig::default()
    };
    match math_accuracy(&b.join(","), &a.join(","), &c) {
        Ok(x) => assert_eq!(x, 0.0),
        Err(s) => assert!(s.0.contains("deadline"), "{s}"),
    }
    // Without a deadline the same comparison is a match (checked on a smaller list).
    let c0 = MathConfig {
        deadline_ms: 0,
        ..MathConfig::default()
    };
    assert_eq!(
        math_accuracy(&b[..200].join(","), &b[..200].join(","), &c0),
        Ok(1.0)
    );
}

#[test]
fn results_are_the_same_across_threads() {
    let cases: Vec<(String, String)> = vec![
        (r"\frac{1}{2}".into(), "0.5".into()),
        ("x^2-1".into(), "(x-1)(x+1)".into()),
        (r"(1,2]".into(), "(1,2)".into()),
        (r"\{3,1,2\}".into(), r"\{1,2,3\}".into()),
        ("garbage }{".into(), "5".into()),
        ("5".into(), "}{".into()),
        (r"2\sqrt{2}".into(), r"\sqrt{8}".into()),
        ("The answer is 42 dollars".into(), "42".into()),
    ];
    let serial: Vec<_> = cases
        .iter()
        .map(|(p, g)| math_accuracy(p, g, &cfg()))
        .collect();
    for _ in 0..20 {
        let parallel: Vec<_> = (0..cases.len() * 50)
            .into_par_iter()
            .map(|i| {
                let (p, g) = &cases[i % cases.len()];
                math_accuracy(p, g, &cfg())
            })
            .collect();
        for (i, r) in parallel.iter().enumerate() {
            assert_eq!(r, &serial[i % cases.len()]);
        }
    }
}

#[test]
fn config_round_trips_and_defaults() {
    let c: MathConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, MathConfig::default());
    assert_eq!(c.rel_tol, 1e-6);
    assert_eq!(c.deadline_ms, 50);
    let c: MathConfig = serde_json::from_str(r#"{"rel_tol": 0.01}"#).unwrap();
    assert_eq!(c.rel_tol, 0.01);
    assert!(serde_json::from_str::<MathConfig>(r#"{"nope": 1}"#).is_err());
}

fn latexish() -> impl Strategy<Value = String> {
    let atoms = prop::collection::vec(
        prop_oneof![
            Just("\\frac".to_string()),
            Just("\\sqrt".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just("\\{".to_string()),
            Just("\\}".to_string()),
            Just("^".to_string()),
            Just("_".to_string()),
            Just(",".to_string()),
            Just("=".to_string()),
            Just("<".to_string()),
            Just("\\le".to_string()),
            Just("\\pm".to_string()),
            Just("\\cup".to_string()),
            Just("\\in".to_string()),
            Just("!".to_string()),
            Just("|".to_string()),
            Just("\\boxed{".to_string()),
            Just("\\text{".to_string()),
            Just("\\begin{pmatrix}".to_string()),
            Just("\\end{pmatrix}".to_string()),
            Just("&".to_string()),
            Just("\\\\".to_string()),
            Just("\\left(".to_string()),
            Just("\\right]".to_string()),
            Just("x".to_string()),
            Just("e".to_string()),
            Just("\\pi".to_string()),
            Just("\\infty".to_string()),
            Just("-".to_string()),
            Just("+".to_string()),
            Just("/".to_string()),
            Just(" ".to_string()),
            Just("1,000".to_string()),
            Just("%".to_string()),
            Just("$".to_string()),
            Just("π".to_string()),
            Just("√".to_string()),
            "[0-9]{1,4}".prop_map(|s| s),
            "[a-zA-Z]{1,6}".prop_map(|s| s),
            "\\\\[a-zA-Z]{1,8}".prop_map(|s| s),
        ],
        0..40,
    );
    atoms.prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_string_never_panics(pred in any::<String>(), gold in any::<String>()) {
        let r = math_accuracy(&pred, &gold, &cfg());
        if let Ok(x) = r {
            prop_assert!(x == 0.0 || x == 1.0);
        }
    }

    #[test]
    fn latex_soup_never_panics(pred in latexish(), gold in latexish()) {
        let r = math_accuracy(&pred, &gold, &cfg());
        if let Ok(x) = r {
            prop_assert!(x == 0.0 || x == 1.0);
        }
    }

    #[test]
    fn parseable_answers_match_themselves(s in latexish()) {
        // Whenever a gold parses, the identical prediction scores 1 unless it has no value at
        // any evaluation point (NaN everywhere).
        if let Ok(x) = math_accuracy(&s, &s, &cfg()) {
            prop_assert!(x == 0.0 || x == 1.0);
        }
    }

    #[test]
    fn integers_match_their_formatting(n in -1_000_000_000i64..1_000_000_000i64) {
        let plain = n.to_string();
        let mut grouped = String::new();
        let digits = n.unsigned_abs().to_string();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if n < 0 {
            grouped.insert(0, '-');
        }
        prop_assert_eq!(math_accuracy(&grouped, &plain, &cfg()), Ok(1.0));
        prop_assert_eq!(math_accuracy(&format!("\\boxed{{{plain}}}"), &plain, &cfg()), Ok(1.0));
        prop_assert_eq!(math_accuracy(&(n + 1).to_string(), &plain, &cfg()), Ok(0.0));
    }

    #[test]
    fn fractions_match_decimals(a in 1u32..1000, b in 1u32..1000) {
        let frac = format!("\\frac{{{a}}}{{{b}}}");
        let dec = format!("{:.12}", a as f64 / b as f64);
        prop_assert_eq!(math_accuracy(&dec, &frac, &cfg()), Ok(1.0));
        prop_assert_eq!(math_accuracy(&frac, &dec, &cfg()), Ok(1.0));
    }
}
