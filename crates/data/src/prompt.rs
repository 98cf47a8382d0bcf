//! The prompt template: how a sample becomes the user message a policy sees, in training and in
//! eval alike (the trainer and the eval harness, which re-exports it as `mixed_r1_eval::prompt`,
//! use this same type, so train and eval never disagree).
//!
//! The rendered text is the **user message before the chat template**: the model crate wraps it
//! in its chat template and replaces each `<image>` placeholder of the problem (kept in place
//! here, one per image, as the data engine writes them) with the image's vision tokens.
//!
//! ```text
//! template (default)            "{problem}\n{task_prompt}\n{instruction}"
//!   {problem}                   the sample's problem, trimmed
//!   {task_prompt}               the task's entry in [tasks], itself rendered with:
//!       {options}               "Options:\n(A) cat\n(B) dog" for a sample with choices, empty
//!                               when the problem already shows them ("(A) cat" / "A. cat")
//!       {frame}                 the coordinate frame the reward reads predicted boxes in
//!   {instruction}               the output-format instruction (think / answer by default)
//! ```
//!
//! A line of a template that holds nothing but one placeholder which renders empty is dropped,
//! so an empty task prompt leaves no blank line. Text in braces that is not one of these names
//! (`{"bbox_2d": ...}`) is kept as it is. The defaults follow the reward's format mode
//! ([`PromptTemplate::for_format`]): `think_answer` asks for `<think>…</think><answer>…</answer>`.
//!
//! In TOML (the `[prompt]` section of a run file or of `eval.toml`, or a file of its own):
//!
//! ```toml
//! system = "You are a helpful assistant."
//! instruction = "Think inside <think> </think>, then answer inside <answer> </answer>."
//! [tasks]
//! chart = "Answer with a single number or word."
//! ```

pub use crate::options::{options_shown, render_options};
use std::path::Path;

use crate::{Sample, Task};
use mixed_r1_reward::format::FormatMode;
use mixed_r1_reward::iou::Frame;
use mixed_r1_reward::RewardConfig;
use serde::{Deserialize, Serialize};

/// The Mixed-R1 (R1-V / EasyR1 style) think / answer instruction.
pub const THINK_ANSWER_INSTRUCTION: &str = "You FIRST think about the reasoning process as an \
internal monologue and then provide the final answer. The reasoning process MUST BE enclosed \
within <think> </think> tags. The final answer MUST BE put in <answer> </answer> tags.";

/// The instruction for the `answer_only` format mode.
pub const ANSWER_ONLY_INSTRUCTION: &str = "Put the final answer in <answer> </answer> tags.";

/// The instruction for the `boxed` format mode.
pub const BOXED_INSTRUCTION: &str = "Put the final answer in \\boxed{}.";

/// The default template.
pub const DEFAULT_TEMPLATE: &str = "{problem}\n{task_prompt}\n{instruction}";

/// The per-task prompt text, placed at `{task_prompt}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskPrompts {
    pub yes_no: String,
    pub mcq: String,
    pub numeric: String,
    pub math: String,
    pub chart: String,
    pub grounding: String,
    pub open_ended: String,
}

impl Default for TaskPrompts {
    fn default() -> Self {
        TaskPrompts {
            yes_no: "Answer yes or no.".into(),
            mcq: "{options}\nAnswer with the option's letter from the given choices.".into(),
            numeric: "Answer with a single number.".into(),
            math: String::new(),
            chart: "Answer with a single word or number.".into(),
            grounding: "Output the bounding box of the region in JSON format, as \
                        {\"bbox_2d\": [x1, y1, x2, y2]}, in {frame}."
                .into(),
            open_ended: String::new(),
        }
    }
}

impl TaskPrompts {
    pub fn get(&self, task: Task) -> &str {
        match task {
            Task::YesNo => &self.yes_no,
            Task::Mcq => &self.mcq,
            Task::Numeric => &self.numeric,
            Task::Math => &self.math,
            Task::Chart => &self.chart,
            Task::Grounding => &self.grounding,
            Task::OpenEnded => &self.open_ended,
        }
    }
}

/// How a sample is turned into the policy's prompt. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptTemplate {
    /// A system message; `None` leaves the chat template's default.
    pub system: Option<String>,
    /// The user message, with `{problem}`, `{task_prompt}` and `{instruction}`.
    pub template: String,
    /// The output-format instruction.
    pub instruction: String,
    pub tasks: TaskPrompts,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        PromptTemplate::for_format(FormatMode::ThinkAnswer)
    }
}

/// A template that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot read prompt template {}: {err}", path.display())]
    Read {
        path: std::path::PathBuf,
        err: std::io::Error,
    },
    #[error("prompt template{}: {msg}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Parse {
        path: Option<std::path::PathBuf>,
        msg: String,
    },
}

impl PromptTemplate {
    /// The default template whose instruction asks for what the format reward `mode` checks.
    pub fn for_format(mode: FormatMode) -> PromptTemplate {
        let instruction = match mode {
            FormatMode::ThinkAnswer => THINK_ANSWER_INSTRUCTION,
            FormatMode::AnswerOnly => ANSWER_ONLY_INSTRUCTION,
            FormatMode::Boxed => BOXED_INSTRUCTION,
            FormatMode::None => "",
        };
        PromptTemplate {
            system: None,
            template: DEFAULT_TEMPLATE.into(),
            instruction: instruction.into(),
            tasks: TaskPrompts::default(),
        }
    }

    /// Parses TOML (unset keys keep the defaults; unknown keys are errors).
    pub fn from_toml_str(text: &str) -> Result<PromptTemplate, PromptError> {
        let t: PromptTemplate = toml::from_str(text).map_err(|e| PromptError::Parse {
            path: None,
            msg: e.to_string(),
        })?;
        t.check()
            .map_err(|msg| PromptError::Parse { path: None, msg })?;
        Ok(t)
    }

    /// Reads a TOML file: the template's keys at the top level, or under `[prompt]`.
    pub fn from_file(path: &Path) -> Result<PromptTemplate, PromptError> {
        let text = std::fs::read_to_string(path).map_err(|err| PromptError::Read {
            path: path.to_path_buf(),
            err,
        })?;
        let parse_err = |msg: String| PromptError::Parse {
            path: Some(path.to_path_buf()),
            msg,
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| parse_err(e.to_string()))?;
        let table = match table.get("prompt") {
            Some(toml::Value::Table(t)) if table.len() == 1 => t.clone(),
            _ => table,
        };
        let t: PromptTemplate = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        t.check().map_err(parse_err)?;
        Ok(t)
    }

    /// A template must place the problem somewhere.
    pub fn check(&self) -> Result<(), String> {
        if !self.template.contains("{problem}") {
            return Err("`template` must contain {problem}".into());
        }
        Ok(())
    }

    /// The user message for `sample`, with box frames resolved as the default reward config
    /// resolves them. See [`PromptTemplate::render_for`].
    pub fn render(&self, sample: &Sample) -> String {
        self.render_for(sample, &RewardConfig::default())
    }

    /// The user message for `sample`. The grounding prompt names the frame the reward will read
    /// predicted boxes in: the sample's `pred_frame`, else the config's `iou.pred_frame`, else
    /// the gold's frame (the sample's `frame`, else `iou.frame`), exactly as the IoU reward
    /// resolves it.
    pub fn render_for(&self, sample: &Sample, reward: &RewardConfig) -> String {
        let options =
            if sample.choices.is_empty() || options_shown(&sample.problem, &sample.choices) {
                String::new()
            } else {
                render_options(&sample.choices)
            };
        let frame = sample
            .pred_frame
            .or(reward.iou.pred_frame)
            .or(sample.frame)
            .unwrap_or(reward.iou.frame);
        let task_prompt = fill(
            self.tasks.get(sample.task),
            &[("options", &options), ("frame", frame_text(frame))],
        );
        fill(
            &self.template,
            &[
                ("problem", sample.problem.trim()),
                ("task_prompt", task_prompt.trim()),
                ("instruction", self.instruction.trim()),
            ],
        )
    }
}

/// What a frame's coordinates are, in words, for the grounding prompt.
pub fn frame_text(frame: Frame) -> &'static str {
    match frame {
        Frame::Abs | Frame::AbsResized => "absolute pixel coordinates",
        Frame::Rel1000 => "coordinates relative to the image size, scaled to 0-1000",
        Frame::Rel1 => "coordinates relative to the image size, from 0 to 1",
    }
}

/// Replaces `{name}` for the given names in one pass (text coming in through a value is never
/// expanded again); a line that is only one placeholder whose value is empty is dropped.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let lookup = |name: &str| values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let mut lines = Vec::new();
    for line in template.split('\n') {
        let t = line.trim();
        if t.len() > 2 && t.starts_with('{') && t.ends_with('}') {
            if let Some(v) = lookup(&t[1..t.len() - 1]) {
                if v.is_empty() {
                    continue;
                }
            }
        }
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}').and_then(|close| {
                let name = &after[..close];
                lookup(name).map(|v| (v, close))
            }) {
                Some((v, close)) => {
                    out.push_str(v);
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        lines.push(out);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Answer;

    fn sample(task: Task, problem: &str, choices: &[&str]) -> Sample {
        Sample {
            id: "x".into(),
            source: "s".into(),
            task,
            images: vec![],
            problem: problem.into(),
            answer: Answer::Text("A".into()),
            choices: choices.iter().map(|s| s.to_string()).collect(),
            frame: None,
            pred_frame: None,
            image_size: None,
            reward: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn default_prompt_per_task() {
        let t = PromptTemplate::default();
        let s = sample(Task::Mcq, "<image>Which animal?", &["cat", "dog"]);
        assert_eq!(
            t.render(&s),
            format!(
                "<image>Which animal?\nOptions:\n(A) cat\n(B) dog\nAnswer with the option's \
                 letter from the given choices.\n{THINK_ANSWER_INSTRUCTION}"
            )
        );
        // Options already in the problem are not repeated.
        let s = sample(
            Task::Mcq,
            "Which?\nOptions:\n(A) cat\n(B) dog",
            &["cat", "dog"],
        );
        assert_eq!(t.render(&s).matches("(A) cat").count(), 1);
        let s = sample(Task::Mcq, "Which?\nA. cat\nB. dog", &["cat", "dog"]);
        assert!(!t.render(&s).contains("(A)"));
        // An empty task prompt leaves no blank line.
        let s = sample(Task::Math, "What is 1+1?", &[]);
        assert_eq!(
            t.render(&s),
            format!("What is 1+1?\n{THINK_ANSWER_INSTRUCTION}")
        );
    }

    #[test]
    fn grounding_names_the_reward_frame() {
        let t = PromptTemplate::default();
        let mut s = sample(Task::Grounding, "<image>Locate the cup.", &[]);
        let p = t.render(&s);
        assert!(p.contains("{\"bbox_2d\": [x1, y1, x2, y2]}"), "{p}");
        assert!(p.contains("absolute pixel coordinates"), "{p}");
        s.frame = Some(Frame::Rel1000);
        assert!(t.render(&s).contains("0-1000"));
        let mut cfg = RewardConfig::default();
        cfg.iou.pred_frame = Some(Frame::Rel1);
        assert!(t.render_for(&s, &cfg).contains("from 0 to 1"));
        s.pred_frame = Some(Frame::AbsResized);
        assert!(t.render_for(&s, &cfg).contains("absolute pixel"));
    }

    #[test]
    fn toml_and_format_modes() {
        let t = PromptTemplate::from_toml_str(
            "system = \"sys\"\ntemplate = \"Q: {problem}\\n{instruction}\"\ninstruction = \"Be brief.\"\n[tasks]\nyes_no = \"\"\n",
        )
        .unwrap();
        assert_eq!(t.system.as_deref(), Some("sys"));
        let s = sample(Task::YesNo, "Is it {red}?", &[]);
        // `{red}` in the problem is not a placeholder, and values are not expanded again.
        assert_eq!(t.render(&s), "Q: Is it {red}?\nBe brief.");
        assert!(PromptTemplate::from_toml_str("instructions = \"typo\"").is_err());
        assert!(PromptTemplate::from_toml_str("template = \"no problem here\"").is_err());
        assert_eq!(
            PromptTemplate::for_format(FormatMode::Boxed).instruction,
            BOXED_INSTRUCTION
        );
        let s = sample(Task::Math, "1+1?", &[]);
        assert_eq!(
            PromptTemplate::for_format(FormatMode::None).render(&s),
            "1+1?"
        );
    }

    #[test]
    fn reads_prompt_table_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("prompt.toml");
        std::fs::write(&p, "[prompt]\ninstruction = \"X\"\n").unwrap();
        assert_eq!(PromptTemplate::from_file(&p).unwrap().instruction, "X");
        std::fs::write(&p, "instruction = 3\n").unwrap();
        let e = PromptTemplate::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("prompt.toml"), "{e}");
    }
}
