"""Seeded generator of realistic mixed scoring lines for the reward differential test.

    python3 tests/reward_diff/generate.py --cases 20000 --seed 17 --out cases.jsonl

Every task but open_ended (BMAS needs an embedding table): yes_no, mcq, numeric, math, chart and
grounding, with the answers policies actually write under GRPO -- right and wrong answers in
every syntax, hedges ("A or C", "(A)(C)", "3 or 4", "between 3 and 4"), final-answer
corrections ("The answer is C, not A"), inverted, zero-area, out-of-image, NaN and 1e308 boxes,
box spraying, responses with image-pad tokens in them, broken tags -- and a share of malformed
lines (invalid JSON, wrong types, missing fields, deep nesting, NaN literals, invalid UTF-8,
huge lines). Each well-formed line carries `meta.case`, the kind of case it is, and `--labels`
writes the kinds of all lines (malformed ones too) for the report.

Standard library only; the same seed writes the same bytes on every platform.
"""
import argparse
import json
import math
import random

WORDS = ("the image shows a shape near the centre of the frame and its colour looks fairly clear "
         "so I compare it with the question carefully before I answer it step by step").split()
ANIMALS = ["cat", "dog", "red fox", "owl", "horse", "blue whale", "tiger", "zebra", "goat", "eagle"]
VISION = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>"]


def think(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))


def sprinkle(rng, text):
    """Image / video placeholder tokens inside a response, as a policy that samples them writes."""
    out = []
    for ch in text:
        if rng.random() < 0.05:
            out.append(rng.choice(VISION) * rng.randint(1, 4))
        out.append(ch)
    return "".join(out)


def wrap(rng, answer):
    """The response around an answer: mostly the trained format, sometimes not."""
    r = rng.random()
    t = think(rng)
    if r < 0.62:
        resp = f"<think>{t}</think>\n<answer>{answer}</answer>"
    elif r < 0.67:
        resp = f"  <think>\n{t}\n</think>\n\n<answer> {answer} </answer>\n"
    elif r < 0.70:
        resp = f"< think >{t}</ think >< answer >{answer}</answer >"
    elif r < 0.73:
        tag = rng.choice(["Answer", "ANSWER", "Think"])
        if tag == "Think":
            resp = f"<Think>{t}</Think><answer>{answer}</answer>"
        else:
            resp = f"<think>{t}</think><{tag}>{answer}</{tag}>"
    elif r < 0.76:
        resp = f"<answer>{answer}</answer>"
    elif r < 0.79:
        resp = f"<think>{t}</think> The answer is {answer}."
    elif r < 0.81:
        resp = f"Sure! <think>{t}</think><answer>{answer}</answer>"
    elif r < 0.83:
        resp = f"<think>{t}</think><answer>{answer}"
    elif r < 0.85:
        resp = f"<think>{t}</think><answer>{rng.choice(['A', '0', 'no'])}</answer><answer>{answer}</answer>"
    elif r < 0.87:
        resp = f"<think>{t} <answer>{answer}</answer></think>"
    elif r < 0.89:
        resp = f"<think>{t}</think>\n\\boxed{{{answer}}}"
    elif r < 0.90:
        resp = ""
    elif r < 0.95:
        resp = sprinkle(rng, f"<think>{t}</think>\n<answer>{answer}</answer>")
    elif r < 0.97:
        resp = f"<|vision_start|>{'<|image_pad|>' * rng.randint(1, 64)}<|vision_end|><think>{t}</think><answer>{answer}</answer>"
    else:
        resp = f"<think>{t}</think><answer>{answer}</answer>{rng.choice(['.', ' ok', '<|im_end|>'])}"
    return resp


def yes_no(rng):
    g = rng.choice(["yes", "no"])
    o = "no" if g == "yes" else "yes"
    gold = rng.choice([g, g, g.capitalize(), {"yes": "true", "no": "false"}[g], g == "yes"])
    kinds = [
        ("exact", g), ("exact", g.capitalize()), ("exact", f"{g.capitalize()}, it is."),
        ("exact", {"yes": "True", "no": "False"}[g]), ("exact", f"{g.upper()}!!!"),
        ("wrong", o), ("wrong", o.capitalize() + "."),
        ("hedge", "yes or no"), ("hedge", "Yes/No"), ("hedge", f"{g}, or maybe {o}"), ("hedge", "yes and no"),
        ("words", "I see their eyes"), ("words", "Nope, not here"), ("words", "I know nothing"),
        ("unicode", f"sí, {g}"), ("empty", ""),
    ]
    case, ans = rng.choice(kinds)
    return {"task": "yes_no", "answer": gold}, f"yes_no/{case}", ans


def mcq(rng):
    n = rng.randint(2, 5)
    choices = rng.sample(ANIMALS, n)
    L = "ABCDE"[:n]
    g = rng.randrange(n)
    o = (g + rng.randrange(1, n)) % n
    G, O = L[g], L[o]
    lo, hi = sorted((G, O))
    sample = {"task": "mcq", "choices": choices}
    r = rng.random()
    if r < 0.08 and n >= 3:
        # A gold with several letters.
        sample["answer"] = rng.choice([[lo, hi], f"{lo}, {hi}", f"{lo}{hi}"])
        case, ans = rng.choice([
            ("multi/exact", f"{lo}, {hi}"), ("multi/exact", f"{hi} and {lo}"), ("multi/exact", f"{lo}/{hi}"),
            ("multi/exact", f"({lo})({hi})"), ("multi/partial", lo), ("multi/exact", f"{lo} or {hi}"),
            ("multi/exact", f"The answer is {lo} and {hi}."),
        ])
        return sample, f"mcq/{case}", ans
    sample["answer"] = rng.choice([G, G, G, f"({G})", choices[g]])
    kinds = [
        ("letter", G), ("letter", f"({G})"), ("letter", f"{G}."), ("letter", f"{G})"), ("letter", f"{G}:"),
        ("letter", G.lower()), ("letter", f"({G.lower()})"), ("letter", f"**{G}**"),
        ("statement", f"The answer is {G}."), ("statement", f"answer: ({G})"), ("statement", f"The answer is {G.lower()}"),
        ("option", f"Option {G}"), ("option", f"I choose {G}"), ("letter+text", f"{G}. {choices[g]}"),
        ("text", choices[g]), ("text", f"It is a {choices[g]}."), ("wrong", O), ("wrong", f"({O})"),
        ("wrong_text", choices[o]),
        ("hedge", f"{lo} or {hi}"), ("hedge", f"{lo}/{hi}"), ("hedge", f"{lo}, {hi}"), ("hedge", f"either {lo} or {hi}"),
        ("hedge", f"({lo})({hi})"), ("hedge", f"{lo} and {hi}"), ("hedge", f"The answer is {lo} or {hi}"),
        ("hedge", f"({lo}) or ({hi})"), ("hedge", f"Option {lo} or {hi}"), ("hedge", f"{lo} (or {hi})"),
        ("hedge", f"{G} or {choices[o]}"), ("hedge", f"{choices[g]} or {choices[o]}"),
        ("hedge", f"{lo}, or maybe {hi}"), ("hedge", "".join(L)), ("hedge", f"I think {G}, but {O} is also possible"),
        ("hedge", f"{O} could be right, or {G}"), ("hedge", f"**Answer:** {lo} or {hi}"),
        ("last_statement", f"The answer is {G}, not {O}"), ("last_statement", f"{O} is tempting, but the answer is {G}."),
        ("last_statement", f"First I thought {O}. But the answer is {G}."),
        ("last_statement", f"The answer is {O}. No wait, the answer is {G}"),
        ("article", f"{G}. A {choices[g]}"), ("article", f"A {choices[g]}, so {G}"), ("article", f"I think {G}"),
        ("article", f"({G}) A {choices[g]} is shown"), ("article", f"I could pick {G}"), ("statement", f"**Answer:** ({G})"),
        ("words", "Both look similar"), ("words", "Clearly none"), ("out_of_range", "Z"), ("empty", ""),
    ]
    case, ans = rng.choice(kinds)
    return sample, f"mcq/{case}", ans


def fmt_num(v, rng):
    if isinstance(v, int) and abs(v) >= 1000 and rng.random() < 0.4:
        return f"{v:,}"
    return str(v)


def numeric(rng):
    v = rng.choice([rng.randint(0, 99), rng.randint(100, 99999), round(rng.uniform(0, 100), 2), -rng.randint(1, 50)])
    gold = rng.choice([fmt_num(v, rng), str(v), f"{v} cm", f"${v}" if v >= 0 else str(v)])
    if rng.random() < 0.05:
        gold = v if isinstance(v, int) else gold
    w = v + rng.choice([1, 2, 5, 10]) if isinstance(v, int) else round(v * 1.5 + 1, 2)
    a, b = sorted((v, w))
    s = lambda x: str(x)  # noqa: E731
    kinds = [
        ("exact", s(v)), ("exact", fmt_num(v, rng)), ("exact", f"{v} apples"), ("exact", f"about {v}"),
        ("exact", f"The answer is {v}."), ("exact", f"x = {v}"), ("exact", f"\\boxed{{{v}}}"), ("exact", f"$ {v} $"),
        ("exact", f"{v:e}" if v else "0.0"), ("exact", f"{v}%"),
        ("wrong", s(w)), ("wrong", f"{v} or so, no: {w}"),
        ("sequence", f"first {w}, then {v}"), ("sequence", f"{w} + {v} - {w} = {v}"), ("sequence", f"{w}, {v}"),
        ("sequence", f"{w} and {v}"),
        ("hedge", f"{a} or {b}"), ("hedge", f"{a}-{b}"), ("hedge", f"between {a} and {b}"), ("hedge", f"{a} to {b}"),
        ("hedge", f"either {w} or {v}"), ("hedge", f"{a} – {b}"), ("hedge", f"{v} ± 1"), ("hedge", f"{a}~{b}"),
        ("hedge", f"x = {w} or x = {v}"), ("hedge", f"{a} cm or {b} cm"),
        ("glued", f"x{v}"), ("words", "none"), ("unicode_minus", f"−{abs(v)}"), ("empty", ""),
    ]
    case, ans = rng.choice(kinds)
    return {"task": "numeric", "answer": gold}, f"numeric/{case}", ans


# Math golds: a value in several equivalent spellings, with a few near misses.
MATH_VALUES = [
    (0.5, [r"\frac{1}{2}", "0.5", "1/2", r"\dfrac{1}{2}", r"\frac{2}{4}", r"\tfrac{1}{2}"]),
    (1.5, [r"1\frac{1}{2}", r"\frac{3}{2}", "1.5", "3/2"]),
    (0.75, [r"\frac{3}{4}", "0.75", "3/4", r"\frac{6}{8}"]),
    (2.5, [r"2\frac{1}{2}", r"\frac{5}{2}", "2.5", "5/2"]),
    (math.sqrt(2), [r"\sqrt{2}", r"\frac{2}{\sqrt{2}}", r"\sqrt{8}/2"]),
    (2 * math.sqrt(3), [r"2\sqrt{3}", r"\sqrt{12}"]),
    (math.pi / 2, [r"\frac{\pi}{2}", r"\pi/2", r"0.5\pi"]),
    (2 * math.pi, [r"2\pi", r"\pi \cdot 2"]),
    (12.0, ["12", "12.0", r"3 \times 4", r"2^2 \cdot 3", r"\frac{24}{2}", r"\sqrt{144}"]),
    (1000.0, ["1000", "1,000", r"10^3", "1e3"]),
    (-3.0, ["-3", r"-\frac{6}{2}", "-3.0"]),
    (1 / 3, [r"\frac{1}{3}", "1/3", r"\frac{2}{6}"]),
    (8.0, ["8", "2^3", r"2 \cdot 4"]),
]


def math_task(rng):
    r = rng.random()
    if r < 0.75:
        k = rng.randrange(len(MATH_VALUES))
        value, forms = MATH_VALUES[k]
        gold = rng.choice(forms)
        other = MATH_VALUES[(k + rng.randrange(1, len(MATH_VALUES))) % len(MATH_VALUES)][1]
        kinds = [
            ("equivalent", rng.choice(forms)), ("equivalent", f"\\boxed{{{rng.choice(forms)}}}"),
            ("equivalent", f"${rng.choice(forms)}$"), ("equivalent", f"x = {rng.choice(forms)}"),
            ("equivalent", f"The answer is {rng.choice(forms)}."),
            ("wrong", rng.choice(other)), ("wrong", f"\\boxed{{{rng.choice(other)}}}"),
            ("near_miss", repr(round(value, 3))), ("near_miss", repr(round(value, 7))),
            ("garbage", r"\frac{1}{"), ("garbage", "}{"), ("empty", ""),
        ]
        case, ans = rng.choice(kinds)
        return {"task": "math", "answer": gold}, f"math/{case}", ans
    if r < 0.85:
        a, b = rng.randint(-5, 3), rng.randint(4, 9)
        o, c = rng.choice("(["), rng.choice(")]")
        gold = f"{o}{a}, {b}{c}"
        kinds = [
            ("interval_same", f"{o}{a},{b}{c}"), ("interval_same", f"{o}{a}, {b}{c}"),
            ("interval_brackets", f"{'[' if o == '(' else '('}{a}, {b}{c}"),
            ("interval_values", f"{o}{a}, \\frac{{{2 * b}}}{{2}}{c}"), ("interval_wrong", f"{o}{a}, {b + 1}{c}"),
        ]
        case, ans = rng.choice(kinds)
        return {"task": "math", "answer": gold}, f"math/{case}", ans
    if r < 0.95:
        items = rng.sample(range(1, 10), rng.randint(2, 3))
        gold = "\\{" + ", ".join(map(str, items)) + "\\}"
        perm = items[:]
        rng.shuffle(perm)
        kinds = [
            ("set_same", gold), ("set_order", "\\{" + ", ".join(map(str, items[::-1])) + "\\}"),
            ("set_order", "\\{" + ", ".join(map(str, perm)) + "\\}"),
            ("set_wrong", "\\{" + ", ".join(map(str, items[:-1])) + "\\}"),
        ]
        case, ans = rng.choice(kinds)
        return {"task": "math", "answer": gold}, f"math/{case}", ans
    word = rng.choice(["north", "east", "even", "odd"])
    case, ans = rng.choice([("text", word), ("text", word.capitalize()), ("text_wrong", "west")])
    return {"task": "math", "answer": word}, f"math/{case}", ans


def chart(rng):
    r = rng.random()
    if r < 0.45:
        v = round(rng.uniform(1, 500), 1)
        gold = str(v)
        kinds = [("exact", str(v)), ("within_5pct", str(round(v * 1.03, 1))), ("outside_5pct", str(round(v * 1.2, 1))),
                 ("unit", f"{v} million"), ("hedge", f"{round(v * 0.98, 1)} or {v}"), ("hedge", f"{round(v * 0.9, 1)}-{v}"),
                 ("hedge", f"between {round(v * 0.99, 1)} and {v}"), ("sequence", f"first 1, then {v}")]
    elif r < 0.65:
        p = rng.randint(1, 99)
        gold = rng.choice([f"0.{p:02d}", f"{p}%"])
        kinds = [("percent", f"{p}%"), ("percent", f"0.{p:02d}"), ("percent_wrong", f"{p + 10}%"),
                 ("hedge", f"{p}%-{p + 5}%")]
    elif r < 0.8:
        y = rng.randint(1990, 2023)
        gold = str(y)
        kinds = [("year", str(y)), ("year_off", str(y + 1)), ("year", f"In {y}"), ("hedge", f"{y - 1} to {y}")]
    elif r < 0.9:
        gold = "0"
        kinds = [("zero", "0"), ("zero", "0.0"), ("zero_off", "0.001")]
    else:
        gold = rng.choice(["Democrats", "North America", "Apple", "Q3"])
        kinds = [("text", gold.lower()), ("text", gold), ("text_wrong", "Other"), ("text_wrong", f"The {gold}.")]
    case, ans = rng.choice(kinds)
    return {"task": "chart", "answer": gold}, f"chart/{case}", ans


def smart_resize(h, w, factor=28, min_pixels=3136, max_pixels=12845056):
    hb, wb = round(h / factor) * factor, round(w / factor) * factor
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb, wb = max(factor, math.floor(h / beta / factor) * factor), max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def grounding(rng):
    w, h = rng.choice([(640, 480), (1024, 768), (500, 375), (1920, 1080), (333, 500), (64, 64)])
    frame = rng.choice(["abs", "abs", "rel1000", "rel1"])
    pred_frame = rng.choice([None, "abs", "abs_resized", "rel1000", "rel1"])
    n_gold = rng.choice([1, 1, 1, 1, 2, 3, 0])

    def box():
        x1, y1 = rng.randint(0, w * 2 // 3), rng.randint(0, h * 2 // 3)
        return [x1, y1, rng.randint(x1 + 4, w), rng.randint(y1 + 4, h)]

    golds_px = [box() for _ in range(n_gold)]

    def emit(b, fr, digits=None):
        if fr == "abs":
            out = list(b)
        elif fr == "rel1000":
            out = [b[0] * 1000 / w, b[1] * 1000 / h, b[2] * 1000 / w, b[3] * 1000 / h]
        elif fr == "rel1":
            out = [b[0] / w, b[1] / h, b[2] / w, b[3] / h]
        else:
            rh, rw = smart_resize(h, w)
            out = [b[0] * rw / w, b[1] * rh / h, b[2] * rw / w, b[3] * rh / h]
        if fr == "rel1":
            return [round(v, 4) for v in out]
        return [round(v) if digits is None else round(v, digits) for v in out]

    sample = {"task": "grounding", "answer": [emit(g, frame, 3) for g in golds_px], "frame": frame}
    if pred_frame is not None:
        sample["pred_frame"] = pred_frame
    pf = pred_frame or frame
    if rng.random() < 0.9:
        sample["image_size"] = [w, h]
    if n_gold == 1 and rng.random() < 0.2:
        sample["answer"] = rng.choice([sample["answer"][0], {"bbox_2d": sample["answer"][0]},
                                       json.dumps(sample["answer"][0])])
    target = golds_px[0] if golds_px else box()

    def jitter(b, k=12):
        return [v + rng.randint(-k, k) for v in b]

    def fmt(bs, style=None):
        style = style or rng.choice(["json", "list", "qwen", "internvl", "tuple", "prose", "fence"])
        if style == "json":
            return json.dumps([{"bbox_2d": b, "label": "object"} for b in bs]) if len(bs) > 1 else json.dumps({"bbox_2d": bs[0]})
        if style == "list":
            return json.dumps(bs if len(bs) > 1 else bs[0])
        if style == "qwen":
            return "".join(f"<|box_start|>({b[0]},{b[1]}),({b[2]},{b[3]})<|box_end|>" for b in bs)
        if style == "internvl":
            return "<box>" + json.dumps(bs) + "</box>"
        if style == "tuple":
            return " ".join(f"({b[0]}, {b[1]}, {b[2]}, {b[3]})" for b in bs)
        if style == "fence":
            return "```json\n" + json.dumps([{"bbox_2d": b} for b in bs]) + "\n```"
        return "The object is at " + " and ".join(f"[{b[0]}, {b[1]}, {b[2]}, {b[3]}]" for b in bs) + "."

    x1, y1, x2, y2 = jitter(target)
    kinds = [
        ("exact", lambda: fmt([emit(g, pf) for g in golds_px] or [emit(target, pf)])),
        ("jitter", lambda: fmt([emit(jitter(g), pf) for g in golds_px] or [emit(target, pf)])),
        ("first_only", lambda: fmt([emit(target, pf)])),
        ("inverted_x", lambda: fmt([emit([x2, y1, x1, y2], pf)])),
        ("inverted_y", lambda: fmt([emit([x1, y2, x2, y1], pf)])),
        ("inverted_both", lambda: fmt([emit([x2, y2, x1, y1], pf)])),
        ("inverted_extra", lambda: fmt([emit(target, pf), emit([x2, y1, x1, y2], pf)])),
        ("zero_area", lambda: fmt([emit([x1, y1, x1, y2], pf)])),
        ("zero_area", lambda: fmt([emit([x1, y1, x2, y1], pf)])),
        ("out_of_image", lambda: fmt([emit([w + 10, h + 10, w + 50, h + 60], pf)])),
        ("partly_outside", lambda: fmt([emit([x1, y1, w + 100, h + 100], pf)])),
        ("whole_image", lambda: fmt([emit([0, 0, w, h], pf)])),
        ("spray", lambda: fmt([emit(box(), pf) for _ in range(21)] + [emit(target, pf)], "list")),
        ("extra_boxes", lambda: fmt([emit(target, pf)] + [emit(box(), pf) for _ in range(rng.randint(1, 3))])),
        ("nan", lambda: f"[nan, {y1}, {x2}, {y2}]"),
        ("nan", lambda: json.dumps({"bbox_2d": [x1, y1, x2, y2]}).replace(str(x1), "NaN", 1)),
        ("huge", lambda: f"[0, 0, 1e308, 1e308]"),
        ("huge", lambda: f"[-1e308, -1e308, 1e308, 1e308]"),
        ("huge", lambda: f"[{x1}, {y1}, 1e400, {y2}]"),
        ("huge", lambda: f"[{x1}, {y1}, {x2}, 1.5e-320]"),
        ("float_text", lambda: "[" + ", ".join(f"{v:.6f}" for v in emit([x1, y1, x2, y2], pf, 6)) + "]"),
        ("no_box", lambda: "There is no such object."),
        ("three_numbers", lambda: f"[{x1}, {y1}, {x2}]"),
        ("words_in_box", lambda: f"[{x1}, {y1}, x2, y2]"),
    ]
    case, make = rng.choice(kinds)
    return sample, f"grounding/{case}", make()


def malformed(rng, i):
    """A line that is not a valid scoring sample, or an unusual but valid one."""
    good = {"task": "yes_no", "answer": "yes", "response": "<think>.</think><answer>yes</answer>"}
    kinds = [
        ("truncated", lambda: json.dumps(good)[: rng.randint(1, 40)]),
        ("not_object", lambda: rng.choice(["[]", "42", '"yes"', "null", "true", "[{}]"])),
        ("empty_line", lambda: rng.choice(["", "   ", "\t"])),
        ("missing_response", lambda: json.dumps({"task": "mcq", "answer": "B"})),
        ("missing_answer", lambda: json.dumps({"task": "mcq", "response": "<answer>B</answer>"})),
        ("null_answer", lambda: json.dumps({"task": "mcq", "answer": None, "response": "<answer>B</answer>"})),
        ("null_response", lambda: json.dumps({"task": "mcq", "answer": "B", "response": None})),
        ("number_response", lambda: json.dumps({"task": "numeric", "answer": "3", "response": 3})),
        ("missing_task", lambda: json.dumps({"answer": "B", "response": "<answer>B</answer>"})),
        ("unknown_task", lambda: json.dumps({"task": "poetry", "answer": "B", "response": "<answer>B</answer>"})),
        ("null_task", lambda: json.dumps({"task": None, "answer": "B", "response": "<answer>B</answer>"})),
        ("number_task", lambda: json.dumps({"task": 3, "answer": "B", "response": "<answer>B</answer>"})),
        ("reward_override", lambda: json.dumps({"task": "numeric", "reward": "chart", "answer": "100",
                                                 "response": "<think>.</think><answer>103</answer>"})),
        ("unknown_reward", lambda: json.dumps({"task": "numeric", "reward": "poetry", "answer": "1", "response": "1"})),
        ("bad_frame", lambda: json.dumps({"task": "grounding", "answer": [[1, 2, 3, 4]], "frame": "pixels", "response": ""})),
        ("bad_choices", lambda: json.dumps({"task": "mcq", "answer": "B", "choices": ["a", 2], "response": "B"})),
        ("null_choices", lambda: json.dumps({"task": "mcq", "answer": "B", "choices": None, "response": "B"})),
        ("bad_image_size", lambda: json.dumps({"task": "grounding", "answer": [[1, 2, 3, 4]], "image_size": [640],
                                                "response": "[1,2,3,4]"})),
        ("zero_image_size", lambda: json.dumps({"task": "grounding", "answer": [[1, 2, 3, 4]], "image_size": [0, 480],
                                                 "response": "<answer>[1,2,3,4]</answer>"})),
        ("string_image_size", lambda: json.dumps({"task": "grounding", "answer": [[1, 2, 3, 4]],
                                                   "image_size": ["640", "480"], "response": "x"})),
        ("nan_literal", lambda: '{"task": "grounding", "answer": [[NaN, 2, 3, 4]], "response": "<answer>[1,2,3,4]</answer>"}'),
        ("infinity_literal", lambda: '{"task": "numeric", "answer": Infinity, "response": "<answer>1</answer>"}'),
        ("huge_json_number", lambda: '{"task": "grounding", "answer": [[0, 0, 1e308, 1e308]], "response": "<answer>[0,0,10,10]</answer>"}'),
        ("deep_nesting", lambda: '{"task": "mcq", "answer": ' + "[" * 5000 + "]" * 5000 + ', "response": "A"}'),
        ("deep_nesting", lambda: '{"task": "grounding", "answer": ' + "[" * 127 + "]" * 127 + ', "response": "A"}'),
        ("deep_nesting", lambda: (lambda d: '{"task": "mcq", "answer": "A", "id": ' + "[" * d + "]" * d
                                  + ', "response": "A"}')(rng.randint(120, 130))),
        ("deep_ignored", lambda: json.dumps(good)[:-1] + ', "meta": ' + "[" * 600 + "]" * 600 + "}"),
        ("shallow_nesting", lambda: '{"task": "grounding", "answer": ' + "[" * 126 + "]" * 126 + ', "response": "A"}'),
        ("duplicate_key", lambda: '{"task": "yes_no", "answer": "yes", "answer": "no", "response": "<answer>no</answer>"}'),
        ("trailing_garbage", lambda: json.dumps(good) + " x"),
        ("invalid_utf8", lambda: b'{"task": "yes_no", "answer": "yes", "response": "\xff\xfe"}'),
        ("huge_line", lambda: json.dumps({"task": "yes_no", "answer": "no", "id": i,
                                           "response": "<think>" + "lorem ipsum " * 30_000 + "</think><answer>No</answer>"})),
        ("huge_answer", lambda: json.dumps({"task": "numeric", "answer": "42",
                                             "response": "<answer>" + "9 " * 100_000 + "42</answer>"})),
        ("pathological_latex", lambda: json.dumps({"task": "math", "answer": r"\frac{1}{2}",
                                                    "response": "<answer>" + r"\frac{" * 5000 + "}" * 5000 + "</answer>"})),
        ("pathological_latex", lambda: json.dumps({"task": "math", "answer": "{" * 3000 + "1" + "}" * 3000,
                                                    "response": "<answer>1</answer>"})),
        ("pathological_boxes", lambda: json.dumps({"task": "grounding", "answer": [[1, 2, 3, 4]], "image_size": [10, 10],
                                                    "response": "<answer>" + "[1,2,3,4" * 20_000 + "</answer>"})),
        ("pathological_tags", lambda: json.dumps({"task": "yes_no", "answer": "yes", "response": "<answer>" * 20_000})),
        ("control_chars", lambda: json.dumps({"task": "yes_no", "answer": "yes", "response": "<answer>\u0000yes\u2028</answer>"})),
        ("bool_answer", lambda: json.dumps({"task": "yes_no", "answer": False, "response": "<think>.</think><answer>No</answer>"})),
        ("number_answer", lambda: json.dumps({"task": "numeric", "answer": 12.5, "response": "<think>.</think><answer>12.5</answer>"})),
        ("id_and_extra_fields", lambda: json.dumps({"id": {"k": [1, 2]}, "source": "vqa", "images": ["a.png"],
                                                     "problem": "<image>Is it red?", "task": "yes_no", "answer": "yes",
                                                     "response": "<think>.</think><answer>yes</answer>"})),
    ]
    case, make = rng.choice(kinds)
    line = make()
    return f"malformed/{case}", line if isinstance(line, bytes) else line.encode("utf-8")


TASKS = [(yes_no, 14), (mcq, 24), (numeric, 16), (math_task, 12), (chart, 14), (grounding, 16)]


def generate(n, seed):
    rng = random.Random(seed)
    makers = [m for m, w in TASKS for _ in range(w)]
    for i in range(n):
        if rng.random() < 0.04:
            case, raw = malformed(rng, i)
            yield case, raw
            continue
        sample, case, answer = rng.choice(makers)(rng)
        sample["response"] = wrap(rng, answer)
        sample["id"] = i
        sample["meta"] = {"case": case}
        yield case, json.dumps(sample, ensure_ascii=rng.random() < 0.5).encode("utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels", help="also write each line's kind of case, one a line")
    args = ap.parse_args()
    labels = open(args.labels, "w") if args.labels else None
    with open(args.out, "wb") as f:
        for case, raw in generate(args.cases, args.seed):
            f.write(raw + b"\n")
            if labels:
                labels.write(case + "\n")
    if labels:
        labels.close()


if __name__ == "__main__":
    main()
