//! Shapes scenes: a few solid circles, squares, rectangles and triangles on a pale background,
//! with six questions whose answers are exact because the scene is known: a count, two yes/no
//! questions (presence and a spatial relation), a multiple choice, a grounding box and a caption.

use image::RgbImage;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::{Question, LETTERS};
use crate::schema::{Answer, Task};
use mixed_r1_plot::{Canvas, PixelBox};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Circle,
    Square,
    Rectangle,
    Triangle,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Circle, Kind::Square, Kind::Rectangle, Kind::Triangle];

    fn name(self) -> &'static str {
        match self {
            Kind::Circle => "circle",
            Kind::Square => "square",
            Kind::Rectangle => "rectangle",
            Kind::Triangle => "triangle",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Circle => "circles",
            Kind::Square => "squares",
            Kind::Rectangle => "rectangles",
            Kind::Triangle => "triangles",
        }
    }
}

/// Named colours, far enough apart that a name is never ambiguous.
pub const COLOURS: [(&str, [u8; 3]); 8] = [
    ("red", [220, 40, 40]),
    ("green", [40, 160, 60]),
    ("blue", [40, 80, 220]),
    ("yellow", [235, 200, 30]),
    ("purple", [140, 60, 180]),
    ("orange", [245, 130, 30]),
    ("black", [20, 20, 20]),
    ("gray", [128, 128, 128]),
];

const BACKGROUNDS: [(&str, [u8; 3]); 4] = [
    ("white", [255, 255, 255]),
    ("cream", [246, 240, 222]),
    ("pale blue", [222, 234, 246]),
    ("pale green", [228, 244, 226]),
];

const NUMBER_WORDS: [&str; 7] = ["zero", "one", "two", "three", "four", "five", "six"];

#[derive(Debug, Clone, Copy)]
struct Shape {
    kind: Kind,
    colour: usize,
    bbox: PixelBox,
}

impl Shape {
    fn phrase(&self) -> String {
        format!("{} {}", COLOURS[self.colour].0, self.kind.name())
    }
}

/// Renders one scene and asks its six questions.
pub fn scene(rng: &mut ChaCha8Rng) -> (RgbImage, Vec<Question>) {
    // Sizes on a 16-pixel grid between 128 and 224: small enough that 200,000 candidates render
    // fast, varied enough that box answers are not all in one frame.
    let w = 128 + 16 * rng.random_range(0..=6u32);
    let h = 128 + 16 * rng.random_range(0..=6u32);
    let bg = *BACKGROUNDS.choose(rng).unwrap();
    let mut canvas = Canvas::new(w, h, bg.1);

    let wanted = rng.random_range(1..=5usize);
    let mut shapes: Vec<Shape> = Vec::new();
    let mut tries = 0;
    while shapes.len() < wanted && tries < 60 {
        tries += 1;
        let kind = *Kind::ALL.choose(rng).unwrap();
        let colour = rng.random_range(0..COLOURS.len());
        // A colour+shape pair names one object only, so "the red triangle" is unambiguous.
        if shapes.iter().any(|s| s.kind == kind && s.colour == colour) {
            continue;
        }
        let min_side = w.min(h) as f64;
        let size = rng.random_range(0.16..0.30) * min_side;
        let (bw, bh) = match kind {
            Kind::Rectangle => {
                if rng.random_bool(0.5) {
                    (size * 1.7, size)
                } else {
                    (size, size * 1.7)
                }
            }
            _ => (size, size),
        };
        let x = rng.random_range(2.0..(w as f64 - bw - 2.0));
        let y = rng.random_range(2.0..(h as f64 - bh - 2.0));
        let planned = PixelBox {
            x1: x.floor() as u32,
            y1: y.floor() as u32,
            x2: (x + bw).ceil() as u32,
            y2: (y + bh).ceil() as u32,
        };
        if shapes.iter().any(|s| s.bbox.overlaps(planned, 4)) {
            continue;
        }
        let fill = COLOURS[colour].1;
        let drawn = match kind {
            Kind::Circle => canvas.fill_circle(x + bw / 2.0, y + bh / 2.0, bw / 2.0, fill),
            Kind::Square | Kind::Rectangle => canvas.fill_rect(
                x.round() as i64,
                y.round() as i64,
                (x + bw).round() as i64,
                (y + bh).round() as i64,
                fill,
            ),
            Kind::Triangle => {
                canvas.fill_triangle([(x + bw / 2.0, y), (x, y + bh), (x + bw, y + bh)], fill)
            }
        };
        if let Some(bbox) = drawn {
            shapes.push(Shape { kind, colour, bbox });
        }
    }
    // The loop always places the first shape (an empty canvas has nothing to overlap).
    let questions = vec![
        count_question(rng, &shapes),
        presence_question(rng, &shapes),
        relation_question(rng, &shapes),
        choice_question(rng, &shapes),
        grounding_question(rng, &shapes, w, h),
        caption_question(&shapes, bg.0, w, h),
    ];
    (canvas.img, questions)
}

fn q(task: Task, template: &str, problem: String, answer: Answer) -> Question {
    Question {
        task,
        template: template.to_string(),
        problem,
        answer,
        choices: Vec::new(),
        grounding: None,
    }
}

fn count_question(rng: &mut ChaCha8Rng, shapes: &[Shape]) -> Question {
    match rng.random_range(0..3) {
        0 => {
            let kind = *Kind::ALL.choose(rng).unwrap();
            let n = shapes.iter().filter(|s| s.kind == kind).count();
            q(
                Task::Numeric,
                "shapes.count_kind",
                format!(
                    "<image>How many {} are there in the image? Answer with a number.",
                    kind.plural()
                ),
                Answer::Text(n.to_string()),
            )
        }
        1 => {
            let colour = shapes.choose(rng).unwrap().colour;
            let n = shapes.iter().filter(|s| s.colour == colour).count();
            q(
                Task::Numeric,
                "shapes.count_colour",
                format!(
                    "<image>How many {} shapes are there in the image? Answer with a number.",
                    COLOURS[colour].0
                ),
                Answer::Text(n.to_string()),
            )
        }
        _ => q(
            Task::Numeric,
            "shapes.count_all",
            "<image>How many shapes are there in the image in total? Answer with a number."
                .to_string(),
            Answer::Text(shapes.len().to_string()),
        ),
    }
}

fn presence_question(rng: &mut ChaCha8Rng, shapes: &[Shape]) -> Question {
    let (kind, colour, present) = if rng.random_bool(0.5) {
        let s = shapes.choose(rng).unwrap();
        (s.kind, s.colour, true)
    } else {
        // An absent pair: same shape kind in another colour, or another kind in a present colour,
        // so the question cannot be answered from either word alone.
        loop {
            let kind = *Kind::ALL.choose(rng).unwrap();
            let colour = rng.random_range(0..COLOURS.len());
            if !shapes.iter().any(|s| s.kind == kind && s.colour == colour) {
                break (kind, colour, false);
            }
        }
    };
    q(
        Task::YesNo,
        "shapes.presence",
        format!(
            "<image>Is there a {} {} in the image? Answer yes or no.",
            COLOURS[colour].0,
            kind.name()
        ),
        Answer::Text(if present { "yes" } else { "no" }.to_string()),
    )
}

fn relation_question(rng: &mut ChaCha8Rng, shapes: &[Shape]) -> Question {
    if shapes.len() >= 2 {
        let mut idx: Vec<usize> = (0..shapes.len()).collect();
        idx.shuffle(rng);
        let (a, b) = (shapes[idx[0]], shapes[idx[1]]);
        let (ax, ay) = a.bbox.centre();
        let (bx, by) = b.bbox.centre();
        // Ask along the axis where the two are clearly apart, so the truth is not a pixel call.
        let (relation, truth) = if (ax - bx).abs() >= (ay - by).abs() {
            if rng.random_bool(0.5) {
                ("to the left of", ax < bx)
            } else {
                ("to the right of", ax > bx)
            }
        } else if rng.random_bool(0.5) {
            ("above", ay < by)
        } else {
            ("below", ay > by)
        };
        return q(
            Task::YesNo,
            "shapes.relation",
            format!(
                "<image>Is the {} {relation} the {}? Answer yes or no.",
                a.phrase(),
                b.phrase()
            ),
            Answer::Text(if truth { "yes" } else { "no" }.to_string()),
        );
    }
    let s = shapes[0];
    let asked = if rng.random_bool(0.5) {
        s.colour
    } else {
        (s.colour + rng.random_range(1..COLOURS.len())) % COLOURS.len()
    };
    q(
        Task::YesNo,
        "shapes.single_colour",
        format!(
            "<image>Is the {} in the image {}? Answer yes or no.",
            s.kind.name(),
            COLOURS[asked].0
        ),
        Answer::Text(if asked == s.colour { "yes" } else { "no" }.to_string()),
    )
}

fn choice_question(rng: &mut ChaCha8Rng, shapes: &[Shape]) -> Question {
    let unique_kind: Vec<&Shape> = shapes
        .iter()
        .filter(|s| shapes.iter().filter(|t| t.kind == s.kind).count() == 1)
        .collect();
    let unique_colour: Vec<&Shape> = shapes
        .iter()
        .filter(|s| shapes.iter().filter(|t| t.colour == s.colour).count() == 1)
        .collect();
    let (template, stem, correct, pool): (&str, String, String, Vec<String>) =
        if !unique_kind.is_empty() && (unique_colour.is_empty() || rng.random_bool(0.5)) {
            let s = unique_kind.choose(rng).unwrap();
            (
                "shapes.mcq_colour",
                format!("What colour is the {}?", s.kind.name()),
                COLOURS[s.colour].0.to_string(),
                COLOURS.iter().map(|c| c.0.to_string()).collect(),
            )
        } else if let Some(s) = unique_colour.choose(rng) {
            (
                "shapes.mcq_kind",
                format!("What shape is the {} object?", COLOURS[s.colour].0),
                s.kind.name().to_string(),
                Kind::ALL.iter().map(|k| k.name().to_string()).collect(),
            )
        } else {
            (
                "shapes.mcq_count",
                "How many shapes are there in the image?".to_string(),
                shapes.len().to_string(),
                (1..=6).map(|n| n.to_string()).collect(),
            )
        };
    let mut choices: Vec<String> = pool.into_iter().filter(|c| *c != correct).collect();
    choices.shuffle(rng);
    choices.truncate(3);
    choices.push(correct.clone());
    choices.shuffle(rng);
    let letter = LETTERS[choices.iter().position(|c| *c == correct).unwrap()];
    let options: String = choices
        .iter()
        .enumerate()
        .map(|(i, c)| format!("\n{}. {c}", LETTERS[i]))
        .collect();
    let mut question = q(
        Task::Mcq,
        template,
        format!("<image>{stem}{options}\nAnswer with the option's letter."),
        Answer::Text(letter.to_string()),
    );
    question.choices = choices;
    question
}

fn grounding_question(rng: &mut ChaCha8Rng, shapes: &[Shape], w: u32, h: u32) -> Question {
    let s = shapes.choose(rng).unwrap();
    let mut question = q(
        Task::Grounding,
        "shapes.grounding",
        format!(
            "<image>Locate the {} in the image and output its bounding box as [x1, y1, x2, y2] in pixels.",
            s.phrase()
        ),
        Answer::Json(json!([s.bbox.to_vec()])),
    );
    question.grounding = Some([w, h]);
    question
}

/// Where a point lies on a 3x3 grid of the image, in words.
fn region(x: f64, y: f64, w: u32, h: u32) -> &'static str {
    let col = ((x / w as f64) * 3.0).floor().clamp(0.0, 2.0) as usize;
    let row = ((y / h as f64) * 3.0).floor().clamp(0.0, 2.0) as usize;
    [
        ["at the top left", "at the top", "at the top right"],
        ["on the left", "in the centre", "on the right"],
        ["at the bottom left", "at the bottom", "at the bottom right"],
    ][row][col]
}

fn caption_question(shapes: &[Shape], background: &str, w: u32, h: u32) -> Question {
    let mut ordered: Vec<&Shape> = shapes.iter().collect();
    ordered.sort_by(|a, b| a.bbox.x1.cmp(&b.bbox.x1).then(a.bbox.y1.cmp(&b.bbox.y1)));
    let parts: Vec<String> = ordered
        .iter()
        .map(|s| {
            let (cx, cy) = s.bbox.centre();
            format!("a {} {}", s.phrase(), region(cx, cy, w, h))
        })
        .collect();
    let list = match parts.len() {
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    };
    let count = if shapes.len() == 1 {
        "One shape".to_string()
    } else {
        let word = NUMBER_WORDS[shapes.len()];
        format!("{}{} shapes", word[..1].to_uppercase(), &word[1..])
    };
    q(
        Task::OpenEnded,
        "shapes.caption",
        "<image>Describe the image in one sentence.".to_string(),
        Answer::Text(format!("{count} on a {background} background: {list}.")),
    )
}
