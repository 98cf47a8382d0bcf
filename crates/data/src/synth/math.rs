//! Math word problems (text only): templated arithmetic with numeric answers (`numeric`) and
//! fraction / equation / exact-form problems with LaTeX answers (`math`). Every answer is computed
//! from the drawn parameters, never written by hand.

use rand::seq::IndexedRandom;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::Question;
use crate::schema::{Answer, Task};

const NAMES: [(&str, &str); 10] = [
    ("Ana", "She"),
    ("Ben", "He"),
    ("Chen", "He"),
    ("Dina", "She"),
    ("Eli", "He"),
    ("Fatima", "She"),
    ("Goran", "He"),
    ("Hana", "She"),
    ("Ivo", "He"),
    ("Jun", "She"),
];
const ITEMS: [&str; 8] = [
    "apples", "pencils", "stickers", "marbles", "cards", "stamps", "books", "shells",
];

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// `p/q` in lowest terms as LaTeX (`\frac{p}{q}`, or an integer when q divides p).
fn frac(p: i64, q: i64) -> String {
    let g = gcd(p, q).max(1);
    let (mut p, mut q) = (p / g, q / g);
    if q < 0 {
        p = -p;
        q = -q;
    }
    if q == 1 {
        p.to_string()
    } else if p < 0 {
        format!("-\\frac{{{}}}{{{q}}}", -p)
    } else {
        format!("\\frac{{{p}}}{{{q}}}")
    }
}

fn question(task: Task, template: &str, problem: String, answer: String) -> Question {
    Question {
        task,
        template: template.to_string(),
        problem,
        answer: Answer::Text(answer),
        choices: Vec::new(),
        grounding: None,
    }
}

pub fn problem(rng: &mut ChaCha8Rng) -> Question {
    let (name, pronoun) = *NAMES.choose(rng).unwrap();
    let item = *ITEMS.choose(rng).unwrap();
    match rng.random_range(0..8) {
        0 => {
            let (a, b, c) = (
                rng.random_range(3..60i64),
                rng.random_range(2..9i64),
                rng.random_range(2..13i64),
            );
            let d = rng.random_range(1..a.min(20) + 1);
            question(
                Task::Numeric,
                "math.buy_give",
                format!(
                    "{name} has {a} {item}. {pronoun} buys {b} packs of {c} {item} each and then gives away {d}. How many {item} does {name} have now?"
                ),
                (a + b * c - d).to_string(),
            )
        }
        1 => {
            let (v, t) = (rng.random_range(4..25i64) * 5, rng.random_range(2..9i64));
            question(
                Task::Numeric,
                "math.distance",
                format!("A train travels at {v} km/h for {t} hours without stopping. How many kilometres does it travel?"),
                (v * t).to_string(),
            )
        }
        2 => {
            let (p, n) = (rng.random_range(2..40i64), rng.random_range(2..8i64));
            let bill = [50i64, 100, 200, 500]
                .into_iter()
                .find(|&b| b >= p * n)
                .unwrap();
            question(
                Task::Numeric,
                "math.change",
                format!(
                    "A shop sells {item} for ${p} each. {name} buys {n} of them and pays with a ${bill} note. How many dollars of change does {name} get?"
                ),
                (bill - p * n).to_string(),
            )
        }
        3 => {
            let (r, c) = (rng.random_range(3..20i64), rng.random_range(4..16i64));
            let k = rng.random_range(1..r * c);
            question(
                Task::Numeric,
                "math.chairs",
                format!(
                    "A hall has {r} rows of chairs with {c} chairs in each row. {k} chairs are taken. How many chairs are free?"
                ),
                (r * c - k).to_string(),
            )
        }
        4 => {
            let a = rng.random_range(2..13i64);
            let x = rng.random_range(-20..21i64);
            let b = rng.random_range(-30..31i64);
            let c = a * x + b;
            // Half of the equations have a fractional root.
            let (c, answer) = if rng.random_bool(0.5) {
                let c2 = c + rng.random_range(1..a.max(2));
                (c2, frac(c2 - b, a))
            } else {
                (c, x.to_string())
            };
            let lhs = if b >= 0 {
                format!("{a}x + {b}")
            } else {
                format!("{a}x - {}", -b)
            };
            question(
                Task::Math,
                "math.linear",
                format!("Solve for x: {lhs} = {c}."),
                answer,
            )
        }
        5 => {
            let n = rng.random_range(4..13i64);
            let k = rng.random_range(1..n);
            question(
                Task::Math,
                "math.pizza",
                format!(
                    "A pizza is cut into {n} equal slices and {name} eats {k} of them. What fraction of the pizza is left? Give the fraction in lowest terms."
                ),
                frac(n - k, n),
            )
        }
        6 => {
            let r = rng.random_range(2..100i64);
            question(
                Task::Math,
                "math.circle_area",
                format!("What is the area of a circle with radius {r}? Give the exact answer in terms of \\pi."),
                format!("{}\\pi", r * r),
            )
        }
        _ => {
            let (a, b) = (rng.random_range(1..10i64), rng.random_range(2..13i64));
            let (c, d) = (rng.random_range(1..10i64), rng.random_range(2..13i64));
            question(
                Task::Math,
                "math.fraction_sum",
                format!("Compute \\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}} and give the result in lowest terms."),
                frac(a * d + c * b, b * d),
            )
        }
    }
}
