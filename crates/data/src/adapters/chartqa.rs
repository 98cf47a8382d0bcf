//! ChartQA-style JSON: one chart sample per item.

use serde_json::{Map, Value};

use super::{resolve_image, Ctx, DataError, Rows};
use crate::schema::{Answer, Draft, Task};

/// ChartQA-style JSON: `[{"imgname", "query", "label"}]`; images in `png/` beside the file
/// (ChartQA's layout) when that folder exists, else beside the file.
pub(super) fn read_chartqa(ctx: &Ctx) -> Result<Rows, DataError> {
    let v = ctx.read_json()?;
    let Value::Array(items) = v else {
        return Err(DataError::format(
            &ctx.spec.path,
            "ChartQA data must be a JSON list of {imgname, query, label}",
        ));
    };
    let png = ctx.image_root.join("png");
    let root = ctx.root_or(if png.is_dir() {
        png
    } else {
        ctx.image_root.clone()
    });
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let line = i + 1;
            let field = |k: &str| match it.get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Number(n)) => Ok(n.to_string()),
                _ => Err(ctx.reject(line, format!("missing text field `{k}`"))),
            };
            let imgname = field("imgname")?;
            let query = field("query")?;
            let label = field("label")?;
            let mut meta = Map::new();
            meta.insert("imgname".into(), Value::String(imgname.clone()));
            Ok(ctx.row(
                line,
                Draft {
                    source: Some(ctx.name.clone()),
                    task: Some(Task::Chart.as_str().into()),
                    images: vec![resolve_image(&root, &imgname)],
                    problem: Some(format!("<image>{}", query.trim())),
                    answer: Some(Answer::Text(label)),
                    meta,
                    ..Draft::default()
                },
            ))
        })
        .collect())
}
