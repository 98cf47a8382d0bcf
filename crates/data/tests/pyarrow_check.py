"""Reads the Parquet files crates/data/tests/parquet_pyarrow.rs wrote with real pyarrow and checks
them against what verl's and EasyR1's loaders expect (column names and Arrow types, the prompt
chat list with one <image> placeholder per image entry, image entries their `process_image`
opens) and against the samples that were written (expected.jsonl).

    python pyarrow_check.py OUT_DIR FIXTURE_IMAGES_DIR
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

out, fixture_images = sys.argv[1], sys.argv[2]
expected = [json.loads(l) for l in open(os.path.join(out, "expected.jsonl"))]
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise AssertionError(what)


def answer_text(a):
    # Our Answer::text(): text as is, a list of strings joined, other JSON compact.
    if isinstance(a, str):
        return a
    if isinstance(a, list) and all(isinstance(x, str) for x in a):
        return ", ".join(a)
    return json.dumps(a, separators=(",", ":"))


def image_bytes(path):
    with open(path, "rb") as f:
        return f.read()


MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])


def check_verl(name, embed):
    table = pq.read_table(os.path.join(out, name))
    s = table.schema
    check(s.names[:2] == ["data_source", "prompt"], f"{name}: columns {s.names}")
    check(s.field("data_source").type == pa.string(), "data_source is a string")
    check(s.field("prompt").type == pa.list_(MESSAGE), f"prompt type {s.field('prompt').type}")
    if embed:
        image_type = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    else:
        image_type = pa.list_(pa.struct([("image", pa.string())]))
    check(s.field("images").type == image_type, f"images type {s.field('images').type}")
    check(s.field("ability").type == pa.string(), "ability")
    check(s.field("reward_model").type == pa.struct([("ground_truth", pa.string()), ("style", pa.string())]), "reward_model")
    extra = s.field("extra_info").type
    for field, typ in [
        ("index", pa.int64()), ("split", pa.string()), ("id", pa.string()), ("source", pa.string()),
        ("task", pa.string()), ("reward", pa.string()), ("question", pa.string()), ("answer", pa.string()),
        ("choices", pa.list_(pa.string())), ("frame", pa.string()), ("pred_frame", pa.string()),
        ("image_size", pa.list_(pa.int64())), ("meta", pa.string()),
    ]:
        check(extra.field(field).type == typ, f"extra_info.{field}: {extra.field(field).type}")
    rows = table.to_pylist()
    check(len(rows) == len(expected), f"{name}: {len(rows)} rows")
    for i, (row, want) in enumerate(zip(rows, expected)):
        check(row["data_source"] == want["source"], f"row {i} data_source")
        check(row["prompt"] == [{"role": "user", "content": want["problem"]}], f"row {i} prompt {row['prompt']}")
        # verl's RLHFDataset._build_messages: each <image> in the content becomes an image entry,
        # and there must be as many as `images` holds.
        check(row["prompt"][0]["content"].count("<image>") == len(want.get("images", [])), f"row {i} placeholders")
        check(row["ability"] == want["task"], f"row {i} ability")
        gt = row["reward_model"]["ground_truth"]
        check(row["reward_model"]["style"] == "rule", "style")
        if want["task"] == "grounding":
            check(json.loads(gt) == want["answer"], f"row {i} boxes {gt}")
        else:
            check(gt == answer_text(want["answer"]), f"row {i} ground_truth {gt!r}")
        e = row["extra_info"]
        check(e["index"] == i and e["split"] == "train", f"row {i} index/split")
        check(e["id"] == want["id"] and e["source"] == want["source"] and e["task"] == want["task"], f"row {i} ids")
        check(e["reward"] == want.get("reward"), f"row {i} reward")
        check(e["question"] == want["problem"] and e["answer"] == gt, f"row {i} question/answer")
        check(e["choices"] == want.get("choices", []), f"row {i} choices")
        check(e["frame"] == want.get("frame") and e["pred_frame"] == want.get("pred_frame"), f"row {i} frames")
        check(e["image_size"] == want.get("image_size"), f"row {i} image_size {e['image_size']}")
        check(json.loads(e["meta"]) == want.get("meta", {}), f"row {i} meta")
        images = row["images"]
        check(len(images) == len(want.get("images", [])), f"row {i} image count")
        for entry, path in zip(images, want.get("images", [])):
            src = os.path.join(fixture_images, os.path.basename(path))
            if embed:
                # verl's process_image: `"bytes" in image` -> Image.open(BytesIO(image["bytes"])).
                check(entry["bytes"] == image_bytes(src), f"row {i} embedded bytes")
                check(entry["path"] == os.path.basename(path), f"row {i} image name")
            else:
                # qwen_vl_utils.fetch_image opens `image`; a `bytes` key would shadow it.
                check(set(entry) == {"image"}, f"row {i} image entry keys {set(entry)}")
                check(os.path.isabs(entry["image"]) and os.path.samefile(entry["image"], src), f"row {i} path")


def check_easyr1(name, embed):
    table = pq.read_table(os.path.join(out, name))
    s = table.schema
    check(s.names[:3] == ["problem", "answer", "images"], f"{name}: columns {s.names}")
    check(s.field("problem").type == pa.string() and s.field("answer").type == pa.string(), "problem/answer")
    if embed:
        check(s.field("images").type == pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())])), "images")
    else:
        check(s.field("images").type == pa.list_(pa.string()), f"images type {s.field('images').type}")
    for c in ["id", "source", "task", "meta"]:
        check(s.field(c).type == pa.string(), c)
    rows = table.to_pylist()
    check(len(rows) == len(expected), f"{name}: rows")
    for i, (row, want) in enumerate(zip(rows, expected)):
        check(row["problem"] == want["problem"], f"row {i} problem")
        # EasyR1 splits the prompt on <image> too.
        check(len(row["problem"].split("<image>")) - 1 == len(row["images"]), f"row {i} placeholders")
        # The ground truth EasyR1 hands the reward function: a JSON object with what it needs.
        gt = json.loads(row["answer"])
        check(gt["task"] == want["task"] and gt["answer"] == want["answer"], f"row {i} answer {gt}")
        for k in ["choices", "frame", "pred_frame", "image_size", "reward"]:
            check(gt.get(k) == (want.get(k) or None), f"row {i} answer.{k}")
        check(row["id"] == want["id"] and row["task"] == want["task"], f"row {i} id/task")
        for entry, path in zip(row["images"], want.get("images", [])):
            src = os.path.join(fixture_images, os.path.basename(path))
            if embed:
                check(entry["bytes"] == image_bytes(src), f"row {i} bytes")
            else:
                # Relative to the file's folder: EasyR1 joins them with data.image_dir.
                check(not os.path.isabs(entry), f"row {i} relative path {entry}")
                check(os.path.samefile(os.path.join(out, entry), src), f"row {i} path {entry}")


check_verl("verl_embed.parquet", embed=True)
check_verl("verl_paths.parquet", embed=False)
check_easyr1("easyr1_paths.parquet", embed=False)
check_easyr1("easyr1_embed.parquet", embed=True)
print(f"pyarrow {pa.__version__}: {checks} checks passed")
