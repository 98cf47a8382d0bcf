//! LLaVA instruction JSON: `[{"id", "image": str | [str], "conversations": [...]}]`, the first
//! human/gpt pair of each item as a sample (`all_turns = true`: every pair, the ids of an item
//! with several suffixed `-t1`, `-t2`, ...). The item layout is read by [`super::conversation`].

use rayon::prelude::*;
use serde_json::Value;

use super::conversation::conversation_drafts;
use super::{Ctx, DataError, Rows};

pub(super) fn read_llava(ctx: &Ctx) -> Result<Rows, DataError> {
    let v = ctx.read_json()?;
    let Value::Array(items) = v else {
        return Err(DataError::format(
            &ctx.spec.path,
            "LLaVA data must be a JSON array of {id, image, conversations} objects",
        ));
    };
    let all_turns = ctx.opt_bool("all_turns", false);
    let out = items
        .into_par_iter()
        .enumerate()
        .flat_map_iter(|(i, item)| {
            let line = i + 1;
            match conversation_drafts(ctx, item, all_turns) {
                Ok(drafts) => drafts
                    .into_iter()
                    .map(|d| Ok(ctx.row(line, d)))
                    .collect::<Vec<_>>(),
                Err(why) => vec![Err(ctx.reject(line, why))],
            }
        })
        .collect();
    Ok(out)
}
