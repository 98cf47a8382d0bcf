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


# Multiple choice, as crates/reward/src/matching.rs defines it (DESIGN.md, "Matching / mcq"): a
# letter inside a word never counts, and a hedge that names two letters ("A or C", "(A)(C)",
# "the answer is A or C") scores 0 unless the gold has several letters (compared as sets). Letter
# sets are bit masks (bit 0 is A). Prediction letters, in order:
# 1. the whole answer is a letter or a list of letters ("B", "(b)", "A, C", "either A or C");
# 2. else the last "answer is ..." / "answer: ..." statement, with every letter it lists;
# 3. else every option named: "(B)", "B.", "B)", "B:", "option B", a capital letter standing alone
#    ("A"/"I" before a lower-case word is English, except before or/and/nor or a verb such as
#    "is"/"could"), plus the one choice whose text appears.
# Unicode white space as Rust's char::is_whitespace sees it (str.isspace also takes \x1c-\x1f).
WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
ASCII_ALPHA = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
ASCII_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
ASCII_ALNUM = ASCII_ALPHA | frozenset("0123456789")
# A word: an ASCII letter, then ASCII letters, digits, `_` or any non-ASCII character.
MCQ_WORD = re.compile("[A-Za-z][A-Za-z0-9_\u0080-\U0010ffff]*")
LIST_SPLIT = re.compile("[,/;" + WS + "]")
LIST_TRIM = WS + "().:*[]\"'"
LIST_FILLERS = frozenset(("and", "or", "nor", "either", "both"))
MARKERS_OPTION = frozenset(("option", "options", "choice", "choices"))
CONNECTIVES = frozenset(("or", "and", "nor"))
FILLERS = frozenset(("maybe", "perhaps", "possibly", "probably", "also"))
# Verbs after which "A" (the first seven: "I" too) is an option letter, not English.
VERBS_A = frozenset(("is", "was", "seems", "looks", "appears", "matches", "fits", "could", "would",
                     "might", "may", "can", "will", "should", "must"))
VERBS_I = frozenset(("is", "was", "seems", "looks", "appears", "matches", "fits"))
PHRASE_SPLIT = re.compile(r"(?:[^\w.%-]|_)+")
WRAP_FIRST = frozenset("\\$*\"`")  # the first characters of the wrappers strip_wrappers removes
LETTERS = re.compile("[A-Za-z]{1,26}")


def strip_wrappers(s):
    """Removes wrappers around the whole string, repeatedly: \\boxed{}, $ $, \\( \\), \\[ \\], ** **, quotes, backticks."""
    while True:
        t = s.strip(WS)
        if not t or t[0] not in WRAP_FIRST:
            return t
        inner = None
        if t.startswith("\\boxed"):
            rest = t[6:].lstrip(WS)
            if len(rest) >= 2 and rest[0] == "{" and rest[-1] == "}":
                depth = 0
                for c in rest[1:-1]:
                    if c == "{":
                        depth += 1
                    elif c == "}":
                        depth -= 1
                        if depth < 0:
                            break
                if depth == 0:
                    inner = rest[1:-1]
        if inner is None:
            for o, c in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ('"', '"'), ("`", "`")):
                if len(t) >= len(o) + len(c) and t.startswith(o) and t.endswith(c):
                    inner = t[len(o):len(t) - len(c)]
                    break
        if inner is None:
            return t
        s = inner


def valid_letters(choices):
    n = len(choices)
    return (1 << 26) - 1 if n == 0 or n > 26 else (1 << n) - 1


def letter_bit(l):
    return 1 << (ord(l.upper()) - 65)


def letter_list(s, valid):
    """The whole string is a letter or a list of letters ("B", "(b)", "A, C", "A or C", "AC")."""
    t = strip_wrappers(s).strip(LIST_TRIM)
    if not t:
        return None
    found = 0
    for part in LIST_SPLIT.split(t):
        p = part.strip("().*")
        if not p or p.lower() in LIST_FILLERS:
            continue
        if not LETTERS.fullmatch(p):
            return None
        if len(p) > 1 and not p.isupper():  # "AC" is a list, "ac"/"Ab" are words
            return None
        for l in p:
            b = letter_bit(l)
            if not valid & b:
                return None
            found |= b
    return found or None


def word_at(s, i):
    """The whole ASCII word starting at i ("" when it runs into a digit, `_` or non-ASCII)."""
    j, n = i, len(s)
    while j < n and s[j] in ASCII_ALPHA:
        j += 1
    if j < n and (not s[j].isascii() or s[j].isdigit() or s[j] == "_"):
        return ""
    return s[i:j]


def connective_at(s, i):
    return word_at(s, i).lower() in CONNECTIVES


def followed_by_lower_word(s, i):
    return i + 1 < len(s) and s[i] == " " and s[i + 1] in ASCII_LOWER


def skip_spaces(s, i):
    n = len(s)
    while i < n and s[i] in " \t\n":
        i += 1
    return i


def reads_as_english(s, l, i):
    """"A"/"I" ending at i followed by a lower-case word ("A cat", "I think"), but not before a
    connective ("A or C") or a verb that makes the letter a subject ("A is also possible")."""
    if l not in "AI" or not followed_by_lower_word(s, i) or connective_at(s, i + 1):
        return False
    return word_at(s, i + 1).lower() not in (VERBS_A if l == "A" else VERBS_I)


def letter_item(s, i, allow_lower):
    """One letter as a list item ("B", "(B)", "[b]", "**B**", '"B"'): (upper-case letter, end) or None."""
    n = len(s)
    while i < n and s[i] in '*(["':
        i += 1
    if i >= n or s[i] not in ASCII_ALPHA:
        return None
    if i + 1 < n and (s[i + 1] in ASCII_ALNUM or s[i + 1] == "_" or not s[i + 1].isascii()):
        return None
    l = s[i]
    if l in ASCII_LOWER and not allow_lower:
        return None
    j = i + 1
    while j < n and s[j] in '*)]"':
        j += 1
    return l.upper(), j


def letters_after_marker(s, i, is_answer):
    """The letters after "answer is" / "answer:" / "option" / "choice", with any further items
    joined by , / & ; or a connective (optionally followed by "maybe" etc.)."""
    n = len(s)
    while i < n and s[i] in ' \t\n*(["':
        i += 1
    if is_answer:
        if i < n and s[i] == ":":
            i += 1
        elif s[i:i + 2].isascii() and s[i:i + 2].lower() == "is" and not (i + 2 < n and s[i + 2] in ASCII_ALNUM):
            i += 2
            if i < n and s[i] == ":":
                i += 1
        else:
            return None
        while i < n and s[i] in ' \t\n*(["':
            i += 1
    item = letter_item(s, i, is_answer)
    if item is None:
        return None
    first, j = item
    found = letter_bit(first)
    for _ in range(32):
        k = skip_spaces(s, j)
        punct = k < n and s[k] in ",/&;"
        if punct:
            k = skip_spaces(s, k + 1)
        word = connective_at(s, k)
        if word:
            k = skip_spaces(s, k + len(word_at(s, k)))
            w = word_at(s, k)
            if w.lower() in FILLERS:
                k = skip_spaces(s, k + len(w))
        if not punct and not word:
            break
        item = letter_item(s, k, is_answer)
        if item is None:
            break
        l, nxt = item
        # "the answer is C, A is wrong", "the answer is b or a cat": a sentence or an article.
        lower = any(c in ASCII_LOWER for c in s[k:nxt])
        english = followed_by_lower_word(s, nxt) and not connective_at(s, nxt + 1)
        if english and (not word or lower or l in "AI"):
            break
        found |= letter_bit(l)
        j = nxt
    return found


def normalize_phrase(text):
    words = PHRASE_SPLIT.split(text)
    return " ".join(w.strip(".-").lower() for w in words if w.strip(".-"))


def choice_letters(text, choices):
    """The bit of the one choice whose text the answer is or contains as a phrase, else 0."""
    if not choices or len(choices) > 26:
        return 0
    norm = normalize_phrase(strip_wrappers(text))
    if not norm:
        return 0
    normed = [normalize_phrase(c) for c in choices]
    for k, c in enumerate(normed):
        if c and c == norm:
            return 1 << k
    padded = f" {norm} "
    found = [k for k, c in enumerate(normed) if c and f" {c} " in padded]
    return 1 << found[0] if len(found) == 1 else 0


def pred_letters(text, choices, valid):
    whole = letter_list(text, valid)
    if whole is not None:
        return whole
    last_answer, named, n = None, 0, len(text)
    for m in MCQ_WORD.finditer(text):
        start, i = m.start(), m.end()
        if start > 0:
            p = text[start - 1]
            if not p.isascii() or p.isdigit() or p == "_":
                continue  # part of a word that starts with a digit, `_` or a non-ASCII letter
        word = m.group()
        if len(word) == 1:
            b = letter_bit(word)
            if not valid & b:
                continue
            before = text[start - 1] if start > 0 else " "
            after = text[i] if i < n else " "
            upper = word not in ASCII_LOWER
            if ((before == "(" and after == ")")
                    or (upper and after in ".):" and not (i + 1 < n and text[i + 1] in ASCII_ALNUM))
                    or (upper and not reads_as_english(text, word, i))):
                named |= b
            continue
        lw = word.lower() if word.isascii() else ""
        is_answer = lw == "answer"
        if is_answer or lw in MARKERS_OPTION:
            found = letters_after_marker(text, i, is_answer)
            if found:
                found &= valid
                if found:
                    if is_answer:
                        last_answer = found
                    else:
                        named |= found
    if last_answer is not None:
        return last_answer
    return named | choice_letters(text, choices)


def gold_text(gold):
    """The gold as text, as mixed-r1 reads it: a list of strings joined with ", ", other JSON as JSON."""
    if isinstance(gold, str):
        return gold
    if isinstance(gold, list) and all(isinstance(g, str) for g in gold):
        return ", ".join(gold)
    return json.dumps(gold, separators=(",", ":"), ensure_ascii=False)


def mcq_reward(pred, gold, choices):
    gold = gold_text(gold)
    valid = valid_letters(choices)
    g = letter_list(gold, valid)
    if g is None:
        g = choice_letters(gold, choices)
        if not g:
            return None
    return 1.0 if pred_letters(pred or "", choices, valid) == g else 0.0


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
