"""The rule-based rewards in plain Python, written the way users of verl / TRL / VLM-R1 write them
today (re + json, one sample at a time), following the same definitions as mixed-r1-reward
(DESIGN.md). rules_bench.py runs this side by side with our Rust and checks they agree.
"""
import json
import math
import re

TAG = r"<\s*{close}\s*{name}\s*>"
THINK_OPEN = re.compile(TAG.format(close="", name="think"), re.I)
THINK_CLOSE = re.compile(TAG.format(close="/", name="think"), re.I)
ANSWER_OPEN = re.compile(TAG.format(close="", name="answer"), re.I)
ANSWER_CLOSE = re.compile(TAG.format(close="/", name="answer"), re.I)
ANY_TAG = re.compile(r"<\s*(/?)\s*(think|answer)\s*>", re.I)
FORMAT_RE = re.compile(
    r"^\s*<\s*think\s*>.*?<\s*/\s*think\s*>\s*<\s*answer\s*>.*?<\s*/\s*answer\s*>\s*$", re.S | re.I
)
ANSWER_RE = re.compile(r"<\s*answer\s*>(.*?)<\s*/\s*answer\s*>", re.S | re.I)
WORD_RE = re.compile(r"\w+", re.U)
NUMBER_RE = re.compile(
    r"(?<![A-Za-z_\d.])([-+\u2212]?)((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?(\s?(?:%|\\%|percent\b))?"
)
BOX_RE = re.compile(
    r"\[\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*,\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*,\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*,\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*\]"
    r"|\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)\s*,?\s*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)"
)


def format_reward(response):
    if not FORMAT_RE.match(response):
        return 0.0
    tags = [(m.group(1) == "/", m.group(2).lower()) for m in ANY_TAG.finditer(response)]
    ok = tags == [(False, "think"), (True, "think"), (False, "answer"), (True, "answer")]
    return 1.0 if ok else 0.0


def extract_answer(response):
    blocks = ANSWER_RE.findall(response)
    if not blocks:
        return None
    # The last complete block; an opening tag inside it restarts the block.
    last = blocks[-1]
    parts = ANSWER_OPEN.split(last)
    return parts[-1]


def yes_no_polarity(text):
    words = {w.lower() for w in WORD_RE.findall(text)}
    yes = "yes" in words or "true" in words
    no = "no" in words or "false" in words
    if yes == no:
        return None
    return "yes" if yes else "no"


def yes_no_reward(pred, gold):
    g = yes_no_polarity(gold)
    if g is None:
        return None
    return 1.0 if yes_no_polarity(pred or "") == g else 0.0


MCQ_WHOLE = re.compile(r"^[\s(\[*\"']*([A-Za-z])[\s)\].:*\"']*$")
MCQ_ANSWER_IS = re.compile(r"\banswer\s*(?:is\s*:?|:)\s*[*(\[\"]*\s*([A-Za-z])(?![A-Za-z0-9])", re.I)
MCQ_PAREN = re.compile(r"\(([A-Za-z])\)")
MCQ_PUNCT = re.compile(r"(?<![A-Za-z0-9_])([A-Z])[.):](?![A-Za-z0-9])")
MCQ_OPTION = re.compile(r"\b(?:option|options|choice)\s*[*(\[\"]*\s*([A-Z])(?![A-Za-z0-9])", re.I)
MCQ_BARE = re.compile(r"(?<![A-Za-z0-9_])([A-Z])(?![A-Za-z0-9_])")


def mcq_letters(text, n_choices):
    valid = {chr(65 + i) for i in range(n_choices or 26)}
    m = MCQ_WHOLE.match(text)
    if m:
        letter = m.group(1).upper()
        return {letter} if letter in valid else set()
    found = [m.group(1).upper() for m in MCQ_ANSWER_IS.finditer(text) if m.group(1).upper() in valid]
    if found:
        return {found[-1]}
    explicit = {m.group(1).upper() for m in MCQ_PAREN.finditer(text)}
    explicit |= {m.group(1) for m in MCQ_PUNCT.finditer(text)}
    explicit |= {m.group(1) for m in MCQ_OPTION.finditer(text) if m.group(1).isupper()}
    explicit &= valid
    if explicit:
        return explicit
    bare = set()
    for m in MCQ_BARE.finditer(text):
        letter = m.group(1)
        rest = text[m.end():m.end() + 2]
        if letter in "AI" and len(rest) == 2 and rest[0] == " " and rest[1].islower():
            continue
        if letter in valid:
            bare.add(letter)
    return bare


def normalize_phrase(text):
    words = re.split(r"[^\w.%-]+", text)
    return " ".join(w.strip(".-").lower() for w in words if w.strip(".-"))


def choice_letters(text, choices):
    norm = normalize_phrase(text)
    if not norm or not choices:
        return set()
    normed = [normalize_phrase(c) for c in choices]
    for k, c in enumerate(normed):
        if c and c == norm:
            return {chr(65 + k)}
    found = {chr(65 + k) for k, c in enumerate(normed) if c and f" {c} " in f" {norm} "}
    return found if len(found) == 1 else set()


def mcq_reward(pred, gold, choices):
    g = mcq_letters(gold, len(choices)) or choice_letters(gold, choices)
    if len(g) != 1:
        return None
    p = mcq_letters(pred or "", len(choices)) or choice_letters(pred or "", choices)
    return 1.0 if p == g else 0.0


def numbers(text):
    out = []
    for m in NUMBER_RE.finditer(text):
        sign, digits, pct = m.group(1), m.group(0), m.group(3)
        raw = digits[len(sign):]
        if pct:
            raw = raw[: len(raw) - len(pct)]
        value = float(raw.replace(",", ""))
        if sign in ("-", "\u2212"):
            value = -value
        plain = sign == "" and re.fullmatch(r"\d+", raw) is not None
        out.append((value, bool(pct), plain, len(raw.split(".")[0].replace(",", "")), m.end() - m.start() - len(pct or "")))
    return out


def numeric_reward(pred, gold, rel_tol=1e-6, abs_tol=1e-9):
    g = numbers(gold)
    if len(g) != 1:
        return None
    p = numbers(pred or "")
    if not p:
        return 0.0
    pv, gv = p[-1][0], g[0][0]
    if gv == 0:
        return 1.0 if abs(pv) <= abs_tol else 0.0
    return 1.0 if abs(pv - gv) <= rel_tol * abs(gv) else 0.0


def chart_reward(pred, gold, tol=0.05):
    g = numbers(gold)
    if len(g) == 1 and len(gold.strip()) - g[0][4] <= 12:
        gv, gpct, gplain, glen, _ = g[0]
        p = numbers(pred or "")
        if not p:
            return 0.0
        pv, ppct = p[-1][0], p[-1][1]
        if gplain and glen == 4 and 1800 <= gv <= 2100 and not gpct:
            return 1.0 if pv == gv else 0.0
        gc = [gv] + ([gv / 100] if gpct else [])
        pc = [pv] + ([pv / 100] if ppct else [])
        for a in gc:
            for b in pc:
                if a == 0:
                    if b == 0:
                        return 1.0
                elif abs(b - a) / abs(a) <= tol:
                    return 1.0
        return 0.0
    norm = lambda s: " ".join(re.findall(r"\w+", s.lower()))
    if not norm(gold):
        return None
    return 1.0 if norm(pred or "") == norm(gold) else 0.0


def smart_resize(h, w, factor=28, min_pixels=3136, max_pixels=12845056):
    hb = round(h / factor) * factor
    wb = round(w / factor) * factor
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def to_pixels(box, frame, w, h):
    if frame == "abs":
        sx = sy = 1.0
    elif frame == "rel1":
        sx, sy = w, h
    elif frame == "rel1000":
        sx, sy = w / 1000, h / 1000
    else:
        rh, rw = smart_resize(h, w)
        sx, sy = w / rw, h / rh
    x1, x2 = box[0] * sx, box[2] * sx
    y1, y2 = box[1] * sy, box[3] * sy
    # DESIGN.md: an inverted box is invalid and dropped, not reordered.
    if x2 < x1 or y2 < y1:
        return None
    x1, x2 = min(max(x1, 0), w), min(max(x2, 0), w)
    y1, y2 = min(max(y1, 0), h), min(max(y2, 0), h)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2, y2)


def iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def iou_reward(pred, gold_boxes, frame, pred_frame, size, max_boxes=20, max_area=0.9):
    w, h = size
    golds = [b for b in (to_pixels(g, frame, w, h) for g in gold_boxes) if b]
    if not golds:
        return None
    raw = []
    for m in BOX_RE.finditer(pred or ""):
        vals = [v for v in m.groups() if v is not None]
        raw.append([float(v) for v in vals])
    if len(raw) > max_boxes:
        return 0.0
    preds = [b for b in (to_pixels(p, pred_frame, w, h) for p in raw) if b]
    if not preds:
        return 0.0
    image = w * h
    if not any((g[2] - g[0]) * (g[3] - g[1]) >= 0.5 * image for g in golds):
        if any((p[2] - p[0]) * (p[3] - p[1]) > max_area * image for p in preds):
            return 0.0
    if len(golds) == 1 and len(preds) == 1:
        return iou(preds[0], golds[0])
    # Optimal matching by brute force over small sets, as users typically do with scipy.
    from itertools import permutations

    small, large, flip = (preds, golds, False) if len(preds) <= len(golds) else (golds, preds, True)
    best = 0.0
    for perm in permutations(range(len(large)), len(small)):
        s = sum(iou(small[i], large[j]) for i, j in enumerate(perm))
        best = max(best, s)
    return best / max(len(golds), len(preds))


def score(sample, accuracy_weight=1.0, format_weight=0.5):
    response = sample["response"]
    fmt = format_reward(response)
    pred = extract_answer(response)
    task = sample["task"]
    gold = sample["answer"]
    if task == "yes_no":
        acc = yes_no_reward(pred, gold)
    elif task == "mcq":
        acc = mcq_reward(pred, gold, sample.get("choices", []))
    elif task == "numeric":
        acc = numeric_reward(pred, gold)
    elif task == "chart":
        acc = chart_reward(pred, gold)
    elif task == "grounding":
        acc = iou_reward(pred, gold, sample.get("frame", "abs"), sample.get("pred_frame", sample.get("frame", "abs")), sample["image_size"])
        if pred is None and acc is not None:
            acc = 0.0
    else:
        raise ValueError(task)
    if acc is None:
        return {"reward": None, "format": fmt, "accuracy": None}
    return {"reward": accuracy_weight * acc + format_weight * fmt, "format": fmt, "accuracy": acc}
