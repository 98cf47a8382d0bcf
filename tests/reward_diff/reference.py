"""An independent reference implementation of the rule rewards of DESIGN.md, in plain Python.

Written from the contract -- DESIGN.md's "Rewards" section, and where DESIGN.md is silent, the
choices README.md's "Reward details" documents -- not from the Rust code: regular expressions and
direct formulas, one sample at a time, standard library only. The differential test
(scripts/reward-diff.sh) scores the same lines with this module and with `mixed-r1 reward score`
and fails on any disagreement that is not a documented intentional difference.

Where the Rust rewards *deliberately* depart from DESIGN.md's letter, this module computes
DESIGN.md's letter as its primary answer and, next to it, the documented alternative, tagged with
the name of the difference (README.md lists each with its count):

* ``tag_case`` -- DESIGN.md makes tags tolerant of white space inside them; mixed-r1 also
  accepts any letter case (``<Answer>``, ``<THINK>``).
* ``mcq_last_statement`` -- DESIGN.md: two different letters score 0; mixed-r1 lets the last
  explicit answer statement decide ("The answer is C, not A" answers C).
* ``mcq_article`` -- DESIGN.md counts a bare capital letter; mixed-r1 reads ``A`` / ``I``
  followed by a lower-case word as English ("A cat", "I think"), not as an option.
* ``math_set_order`` / ``math_interval_values`` -- DESIGN.md compares intervals and sets as
  strings; mixed-r1 compares sets as sets and intervals item by item as math.

``score_line(raw_bytes)`` returns ``{"format", "accuracy", "alternatives": [(names, format,
accuracy), ...]}``.
"""
import itertools
import json
import math
import re

TASKS = ("yes_no", "mcq", "numeric", "math", "chart", "grounding", "open_ended")
REWARDS = {"yes_no": "yes_no", "mcq": "mcq", "numeric": "numeric", "math": "math", "chart": "chart",
           "grounding": "iou", "iou": "iou", "open_ended": "bmas", "bmas": "bmas"}
FRAMES = ("abs", "abs_resized", "rel1000", "rel1")
ACCURACY_WEIGHT, FORMAT_WEIGHT = 1.0, 0.5
# The placeholder tokens the README says are removed from a response before scoring.
VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                 "<IMG_CONTEXT>", "<img>", "</img>", "<image>", "<video>")
VISION_RE = re.compile("|".join(re.escape(t) for t in VISION_TOKENS))
# README: a field the rewards read (the line's object counts as one level) nested deeper than 127
# levels in all is rejected; fields they ignore may nest as deep as they like. (Python's own JSON
# reader stops near 1,000 levels, so the generator keeps ignored fields shallower than that.)
MAX_FIELD_DEPTH = 126


class Unscorable(Exception):
    """The line cannot be scored at all: reward, format and accuracy are null."""


class Skip(Exception):
    """The gold answer cannot be used: accuracy is null, format is still reported."""


# ---------------------------------------------------------------------------------------------
# Reading a line
# ---------------------------------------------------------------------------------------------

def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text):
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"{text} is out of range")
    return v


def _depth(v):
    """Nesting depth of a JSON value: 0 for a scalar, 1 for `[]`, 2 for `[[]]`..."""
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


def _finite_int(text):
    v = int(text)
    if not math.isfinite(float(v)):
        raise ValueError(f"{text} is out of range")
    return v


KNOWN_FIELDS = ("id", "source", "task", "answer", "choices", "frame", "pred_frame", "image_size", "reward",
                "response")


def _pairs(pairs):
    seen = set()
    for k, _ in pairs:
        if k in KNOWN_FIELDS and k in seen:
            raise ValueError(f"duplicate field {k}")
        seen.add(k)
    return dict(pairs)


def read_sample(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unscorable("not UTF-8")
    if not text.strip():
        raise Unscorable("empty line")
    try:
        obj = json.loads(text, parse_constant=_no_constants, parse_float=_finite_float, parse_int=_finite_int,
                         object_pairs_hook=_pairs)
    except (ValueError, OverflowError):
        raise Unscorable("invalid JSON")
    except RecursionError:
        raise Unscorable("nested too deeply")
    if not isinstance(obj, dict):
        raise Unscorable("not an object")
    try:
        too_deep = any(_depth(obj[k]) > MAX_FIELD_DEPTH for k in KNOWN_FIELDS if k in obj)
    except RecursionError:
        too_deep = True
    if too_deep:
        raise Unscorable("nested too deeply")

    def opt_str(key):
        v = obj.get(key)
        if v is not None and not isinstance(v, str):
            raise Unscorable(f"{key} is not a string")
        return v

    if not isinstance(obj.get("response"), str):
        raise Unscorable("response missing or not a string")
    if obj.get("answer") is None:
        raise Unscorable("answer missing or null")
    for key in ("source", "task", "reward"):
        opt_str(key)
    if "choices" in obj:
        ch = obj["choices"]
        if not isinstance(ch, list) or not all(isinstance(c, str) for c in ch):
            raise Unscorable("choices is not a list of strings")
    for key in ("frame", "pred_frame"):
        if obj.get(key) is not None and obj[key] not in FRAMES:
            raise Unscorable(f"unknown {key}")
    size = obj.get("image_size")
    if size is not None:
        if not (isinstance(size, list) and len(size) == 2 and all(_is_number(v) for v in size)):
            raise Unscorable("image_size is not two numbers")
    return obj


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite_json_number(v):
    return _is_number(v) and math.isfinite(float(v))


# ---------------------------------------------------------------------------------------------
# Format and answer extraction (DESIGN.md: Format, Answer extraction)
# ---------------------------------------------------------------------------------------------

WS = "[ \t\n\r\f]*"  # white space inside a tag


def _tag_re(case_insensitive):
    flags = re.ASCII | (re.IGNORECASE if case_insensitive else 0)
    return re.compile(f"<{WS}(/?){WS}(think|answer){WS}>", flags)


TAGS = {False: _tag_re(False), True: _tag_re(True)}


def tags_of(response, ci):
    return [(m.group(2).lower(), m.group(1) == "/", m.start(), m.end()) for m in TAGS[ci].finditer(response)]


def format_score(response, ci):
    """`<think>…</think>` then `<answer>…</answer>`, exactly one of each, white space around."""
    tags = tags_of(response, ci)
    if [(t[0], t[1]) for t in tags] != [("think", False), ("think", True), ("answer", False), ("answer", True)]:
        return 0.0
    outside = [response[:tags[0][2]], response[tags[1][3]:tags[2][2]], response[tags[3][3]:]]
    return 1.0 if all(not s.strip() for s in outside) else 0.0


def extract_answer(response, ci):
    """The content of the last complete `<answer>…</answer>`; strict fallback: none."""
    start = None
    found = None
    for name, close, s, e in tags_of(response, ci):
        if name != "answer":
            continue
        if not close:
            start = e
        elif start is not None:
            found = response[start:s]
            start = None
    return found


# ---------------------------------------------------------------------------------------------
# Shared text helpers
# ---------------------------------------------------------------------------------------------

def strip_wrappers(s):
    """README: `\\boxed{}`, `$…$`, `\\(…\\)`, `\\[…\\]`, `**…**`, quotes and backticks, repeatedly."""
    while True:
        t = s.strip()
        m = re.fullmatch(r"\\boxed\s*\{(.*)\}", t, re.S)
        if m and _balanced(m.group(1)):
            s = m.group(1)
            continue
        for a, b in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ('"', '"'), ("`", "`")):
            if len(t) >= len(a) + len(b) and t.startswith(a) and t.endswith(b):
                s = t[len(a):len(t) - len(b)]
                break
        else:
            return t


def _balanced(s):
    depth = 0
    for ch in s:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def phrase(s):
    """Lower case, words of letters, digits, `.`, `%` and `-`, single-spaced."""
    words = re.split(r"[^\w.%-]|_", s)
    return " ".join(w.strip(".-").lower() for w in words if w.strip(".-"))


# ---------------------------------------------------------------------------------------------
# yes_no (DESIGN.md: word-boundary yes/no, also true/false; both or neither -> 0)
# ---------------------------------------------------------------------------------------------

def polarity(s):
    words = {w.lower() for w in re.findall(r"\w+", s)}
    yes = bool(words & {"yes", "true"})
    no = bool(words & {"no", "false"})
    return "yes" if yes and not no else "no" if no and not yes else None


def yes_no(pred, gold):
    g = polarity(gold)
    if g is None:
        raise Skip("gold is not yes/no")
    return 1.0 if polarity(pred) == g else 0.0


# ---------------------------------------------------------------------------------------------
# mcq (DESIGN.md: the chosen letter; a letter inside a word never counts; two different letters
# -> 0 unless the gold has several, compared as sets)
# ---------------------------------------------------------------------------------------------

CONNECTIVE = r"(?:or|and|nor)"
FILLER = r"(?:maybe|perhaps|possibly|probably|also)"
LETTER_ITEM = r"[*(\[\"]*([A-Za-z])(?![A-Za-z0-9_\u0080-\U0010ffff])[*)\]\"]*"
# A word, as the README means it: letters, digits, `_` and any non-ASCII character.
WORD_CHAR = r"A-Za-z0-9_\u0080-\U0010ffff"


def valid_letters(choices):
    n = len(choices)
    return set("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: n if 1 <= n <= 26 else 26])


def letter_list(s, valid):
    """Rule 1: the whole answer is a letter or a list of letters."""
    t = re.sub(r"^[\s()\[\].:*\"']+|[\s()\[\].:*\"']+$", "", strip_wrappers(s))
    if not t:
        return None
    letters = set()
    for part in re.split(r"[,/;\s]", t):
        p = part.strip("().*")
        if not p or p.lower() in ("and", "or", "nor", "either", "both"):
            continue
        if not re.fullmatch(r"[A-Za-z]{1,26}", p):
            return None
        if len(p) > 1 and not p.isupper():
            return None
        for ch in p.upper():
            if ch not in valid:
                return None
            letters.add(ch)
    return letters or None


def choice_text(s, choices):
    """The letter of the one choice the answer is, or holds as a phrase."""
    if not choices or len(choices) > 26:
        return set()
    norm = phrase(strip_wrappers(s))
    if not norm:
        return set()
    normed = [phrase(c) for c in choices]
    for k, c in enumerate(normed):
        if c and c == norm:
            return {chr(65 + k)}
    found = {chr(65 + k) for k, c in enumerate(normed) if c and f" {c} " in f" {norm} "}
    return found if len(found) == 1 else set()


def _english_after(s, end):
    """A lower-case word right after (one space), that is not a connective."""
    if not re.compile(" [a-z]").match(s, end):
        return False
    return not re.compile(rf" {CONNECTIVE}(?![{WORD_CHAR}])", re.I).match(s, end)


# README: after these verbs `A` is an option letter ("A is also possible"); after the first seven
# `I` is one too ("I could" is English).
SUBJECT_VERBS = ("is", "was", "seems", "looks", "appears", "matches", "fits", "could", "would", "might", "may",
                 "can", "will", "should", "must")


def _subject_verb(s, end, letter):
    m = re.compile(rf" ([a-z][A-Za-z]*)(?![{WORD_CHAR}])").match(s, end)
    verbs = SUBJECT_VERBS if letter == "A" else SUBJECT_VERBS[:7]
    return bool(m) and m.group(1).lower() in verbs


def statement_letters(s, start, lower_ok):
    """The option letters listed from `start` on: an item, then more joined by `,` `/` `&` `;`
    or a connective (with an optional filler word)."""
    m = re.compile(LETTER_ITEM).match(s, start)
    if not m or (m.group(1).islower() and not lower_ok):
        return set()
    letters = {m.group(1).upper()}
    pos = m.end()
    sep_re = re.compile(rf"[ \t\n]*([,/&;])?[ \t\n]*(?:({CONNECTIVE})(?![{WORD_CHAR}])[ \t\n]*"
                        rf"(?:{FILLER}(?![{WORD_CHAR}])[ \t\n]*)?)?", re.I)
    for _ in range(32):
        sep = sep_re.match(s, pos)
        if not (sep.group(1) or sep.group(2)):
            break
        item = re.compile(LETTER_ITEM).match(s, sep.end())
        if not item or (item.group(1).islower() and not lower_ok):
            break
        ch = item.group(1)
        if _english_after(s, item.end()) and (not sep.group(2) or ch.islower() or ch in "AI"):
            break
        letters.add(ch.upper())
        pos = item.end()
    return letters


def mcq_letters(pred, choices, last_statement, article):
    """The letters an answer names. `last_statement` and `article` switch on the two documented
    departures from DESIGN.md's letter (see the module docs)."""
    valid = valid_letters(choices)
    whole = letter_list(pred, valid)
    if whole:
        return whole
    statements = []
    skip = r"[ \t\n*(\[\"]*"
    for m in re.finditer(rf"(?<![{WORD_CHAR}])answer(?![{WORD_CHAR}]){skip}(?::|is(?![A-Za-z0-9]):?){skip}", pred,
                         re.I | re.ASCII):
        found = statement_letters(pred, m.end(), True) & valid
        if found:
            statements.append(found)
    named = set()
    for m in re.finditer(rf"(?<![{WORD_CHAR}])(?:options?|choices?)(?![{WORD_CHAR}]){skip}", pred, re.I | re.ASCII):
        named |= statement_letters(pred, m.end(), False) & valid
    for m in re.finditer(rf"(?<![{WORD_CHAR}])([A-Za-z])(?![{WORD_CHAR}])", pred):
        ch = m.group(1)
        if ch.upper() not in valid:
            continue
        before = pred[m.start() - 1] if m.start() > 0 else " "
        after = pred[m.end()] if m.end() < len(pred) else " "
        after2 = pred[m.end() + 1] if m.end() + 1 < len(pred) else " "
        if before == "(" and after == ")":
            named.add(ch.upper())
        elif ch.isupper() and after in ".):" and not (after2.isascii() and after2.isalnum()):
            named.add(ch)
        elif ch.isupper():
            if article and ch in "AI" and _english_after(pred, m.end()) and not _subject_verb(pred, m.end(), ch):
                continue
            named.add(ch)
    if last_statement and statements:
        return statements[-1]
    for found in statements:
        named |= found
    return named | choice_text(pred, choices)


def mcq(pred, gold, choices, alts):
    valid = valid_letters(choices)
    g = letter_list(gold, valid) or choice_text(gold, choices)
    if not g:
        raise Skip("gold is not an option")
    results = {}
    for last_statement, article in itertools.product((False, True), repeat=2):
        results[(last_statement, article)] = 1.0 if mcq_letters(pred, choices, last_statement, article) == g else 0.0
    names = {(True, False): ("mcq_last_statement",), (False, True): ("mcq_article",),
             (True, True): ("mcq_last_statement", "mcq_article")}
    for key, name in names.items():
        alts.append((name, results[key]))
    return results[(False, False)]


# ---------------------------------------------------------------------------------------------
# Numbers, numeric, chart
# ---------------------------------------------------------------------------------------------

NUMBER_RE = re.compile(r"(\d{1,3}(?:,\d{3}(?!\d))+|\d+)(\.\d+)?([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?")


class Num:
    def __init__(self, value, percent, plain, int_digits, start, end):
        self.value, self.percent, self.plain, self.int_digits = value, percent, plain, int_digits
        self.start, self.end = start, end


def numbers(s):
    """README: numbers with an optional sign (not after an operand), thousands separators (a comma
    only before exactly three digits), decimals, exponent and percent; digits glued to a word
    (`x2`, `H2O`, `v1.5`) are part of the word."""
    out = []
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if not (ch.isascii() and ch.isdigit()) and not (ch == "." and i + 1 < n and s[i + 1].isascii() and s[i + 1].isdigit()):
            i += 1
            continue
        if i > 0 and (s[i - 1].isascii() and s[i - 1].isalpha() or s[i - 1] == "_"):
            m = re.compile(r"(?:[A-Za-z0-9_]|\.(?=[0-9]))+").match(s, i)
            i = m.end()
            continue
        m = NUMBER_RE.match(s, i)
        text = m.group(0)
        plain = "," not in text and "." not in text and not re.search("[eE]", text)
        digits = text.split(".")[0].split("e")[0].split("E")[0]
        int_digits = len(digits.replace(",", ""))
        try:
            value = float(text.replace(",", ""))
        except ValueError:
            value = float("nan")
        start = i
        sign = 1.0
        k = None
        if i >= 1 and s[i - 1] in "-+\u2212":
            k = i - 1
        if k is not None:
            prev = s[k - 1] if k > 0 else ""
            operand = prev != "" and (prev.isascii() and prev.isalnum() or prev in ")]._%")
            if not operand:
                sign = -1.0 if s[k] in "-\u2212" else 1.0
                start = k
                plain = False
        pct = re.compile(r" ?(?:%|\\%|[Pp][Ee][Rr][Cc][Ee][Nn][Tt](?![A-Za-z]))").match(s, m.end()) is not None
        out.append(Num(sign * value, pct, plain, int_digits, start, m.end()))
        i = max(m.end(), i + 1)
    return out


DASHES = ("-", "\u2013", "\u2014", "\u2212", "~", "\u301c", "\u00b1", "+/-", "\\pm")


def commits(s, a, b):
    """README: the last two numbers joined only by `or`, `to`, `and` after `between`, or a dash
    (unit, currency, percent, parentheses, bold and commas aside) make a range or alternatives."""
    mid = s[a.end:b.start]
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", mid)]
    dashes = 0
    rest = mid
    for d in ("+/-", "\\pm"):
        dashes += rest.count(d)
        rest = rest.replace(d, " ")
    words = [w for w in words if w != "pm" or "\\pm" not in mid]
    leftover = re.sub(r"[A-Za-z\s$\u20ac\u00a3\u00a5%\\()*,]", "", rest)
    for d in DASHES[:7]:
        dashes += leftover.count(d)
        leftover = leftover.replace(d, "")
    if words[:1] == ["percent"]:
        words = words[1:]
    if len(words) >= 2 and words[0] not in ("or", "to", "and"):
        words = words[1:]
    if words[:1] == ["or"]:
        return False
    if leftover:
        return True
    if not words and dashes == 1:
        return False
    if dashes == 0 and words == ["to"]:
        return False
    if dashes == 0 and words == ["and"]:
        return not re.search(r"between[\s$\u20ac\u00a3\u00a5(]*$", s[:a.start], re.I)
    return True


def answer_number(s):
    nums = numbers(s)
    if not nums:
        return None
    if len(nums) >= 2 and not commits(s, nums[-2], nums[-1]):
        return None
    return nums[-1]


def close(a, b, rel=1e-6, abs_tol=1e-9):
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b
    d = abs(a - b)
    return d <= abs_tol if b == 0 else (d <= rel * abs(b) or d <= abs_tol)


def numeric(pred, gold):
    g = numbers(strip_wrappers(gold))
    if len(g) != 1:
        raise Skip("gold holds no number or several")
    p = answer_number(strip_wrappers(pred))
    return 1.0 if p is not None and close(p.value, g[0].value) else 0.0


def chart(pred, gold):
    gt, pt = strip_wrappers(gold), strip_wrappers(pred)
    g = numbers(gt)
    if len(g) == 1 and len(gt.encode()) - len(gt[g[0].start:g[0].end].encode()) <= 12:
        g = g[0]
        p = answer_number(pt)
        if p is None:
            return 0.0
        if g.plain and g.int_digits == 4 and 1800 <= g.value <= 2100 and not g.percent:
            return 1.0 if p.value == g.value else 0.0
        for gv in [g.value] + ([g.value / 100] if g.percent else []):
            for pv in [p.value] + ([p.value / 100] if p.percent else []):
                if gv == 0:
                    if pv == 0:
                        return 1.0
                elif abs((pv - gv) / gv) / 0.05 <= 1.0:
                    return 1.0
        return 0.0
    gp = phrase(gt)
    if not gp:
        raise Skip("empty gold")
    return 1.0 if phrase(pt) == gp else 0.0


# ---------------------------------------------------------------------------------------------
# math (DESIGN.md: numeric / LaTeX equivalence within 1e-6; intervals and sets as strings)
# ---------------------------------------------------------------------------------------------

class MathSyntax(Exception):
    pass


def _last_boxed(s):
    at = max(s.rfind("\\boxed"), s.rfind("\\fbox"))
    if at < 0:
        return s
    rest = s[at + (6 if s.startswith("\\boxed", at) else 5):].lstrip()
    if not rest.startswith("{"):
        return rest.split("$")[0]
    depth = 0
    for i, ch in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return rest[1:i]
    return rest[1:]


def math_clean(s):
    s = _last_boxed(s)
    for a in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\ ", "$", "\\(", "\\)", "\\[", "\\]"):
        s = s.replace(a, " " if a.startswith("\\") and len(a) == 2 else "")
    s = re.sub(r"^\s*(?:the\s+)?(?:final\s+)?answer\s+is\s*:?", "", s.strip(), flags=re.I)
    s = re.sub(r"^\s*[a-z]\s*=\s*", "", s)
    return s.strip().rstrip(".").strip()


class _Parser:
    """expr := term (+|- term)*; term := unary ((\\times|\\cdot|*|/|implicit) unary)*;
    unary := -unary | power; power := atom (^ unary)?; atom := number | \\frac{}{} | \\sqrt{} |
    \\pi | ( expr ) | { expr }. A whole number directly followed by \\frac, or by ` a/b`, is a
    mixed number."""

    def __init__(self, text):
        self.toks = re.findall(r"\d+(?:,\d{3})+(?![\d])(?:\.\d+)?|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+|\\[a-zA-Z]+|\S", text)
        self.i = 0

    def peek(self, k=0):
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, want=None):
        t = self.peek()
        if t is None or (want is not None and t != want):
            raise MathSyntax(f"expected {want}, got {t}")
        self.i += 1
        return t

    def parse(self):
        v = self.expr()
        if self.peek() is not None:
            raise MathSyntax(f"trailing {self.peek()}")
        return v

    def expr(self):
        v = self.term()
        while self.peek() in ("+", "-"):
            v = v + self.term() if self.take() == "+" else v - self.term()
        return v

    def term(self):
        v = self.unary()
        while True:
            t = self.peek()
            if t in ("\\times", "\\cdot", "*"):
                self.take()
                v *= self.unary()
            elif t == "/":
                self.take()
                d = self.unary()
                v = v / d if d != 0 else math.inf
            elif t is not None and (t[0].isdigit() or t in ("\\pi", "\\sqrt", "\\frac", "\\dfrac", "\\tfrac", "(", "{")):
                v *= self.unary()
            else:
                return v

    def unary(self):
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == "^":
            self.take()
            return base ** self.unary()
        return base

    def group(self):
        self.take("{")
        v = self.expr()
        self.take("}")
        return v

    def atom(self):
        t = self.take()
        if t[0].isdigit() or t[0] == ".":
            v = float(t.replace(",", ""))
            nxt = self.peek()
            if re.fullmatch(r"\d+", t) and nxt in ("\\frac", "\\dfrac", "\\tfrac"):
                return v + self.atom_frac()
            if re.fullmatch(r"\d+", t) and nxt is not None and re.fullmatch(r"\d+", nxt) and self.peek(1) == "/":
                num = float(self.take())
                self.take("/")
                den = float(self.take())
                return v + num / den
            return v
        if t in ("\\frac", "\\dfrac", "\\tfrac"):
            self.i -= 1
            return self.atom_frac()
        if t == "\\sqrt":
            return math.sqrt(self.group())
        if t == "\\pi":
            return math.pi
        if t == "(":
            v = self.expr()
            self.take(")")
            return v
        if t == "{":
            self.i -= 1
            return self.group()
        raise MathSyntax(f"unexpected {t}")

    def atom_frac(self):
        self.take()
        num = self.group()
        den = self.group()
        return num / den if den != 0 else math.inf


def math_value(s):
    return _Parser(s).parse()


INTERVAL_RE = re.compile(r"^([(\[])(.*),(.*)([)\]])$")
SET_RE = re.compile(r"^\\\{(.*)\\\}$")


def math_reward(pred, gold, alts):
    g = math_clean(gold)
    p = math_clean(pred)
    squash = lambda x: re.sub(r"\s+", "", x)  # noqa: E731
    if SET_RE.match(g) or INTERVAL_RE.match(g):
        literal = 1.0 if squash(p) == squash(g) else 0.0
        if SET_RE.match(g):
            gi = sorted(squash(x) for x in SET_RE.match(g).group(1).split(","))
            m = SET_RE.match(p)
            same = bool(m) and sorted(squash(x) for x in m.group(1).split(",")) == gi
            alts.append((("math_set_order",), 1.0 if same else 0.0))
        else:
            gm, pm = INTERVAL_RE.match(g), INTERVAL_RE.match(p)
            same = False
            if pm and gm.group(1) == pm.group(1) and gm.group(4) == pm.group(4):
                try:
                    same = all(close(math_value(b), math_value(a)) for a, b in
                               ((gm.group(2), pm.group(2)), (gm.group(3), pm.group(3))))
                except (MathSyntax, ArithmeticError, ValueError):
                    same = False
            alts.append((("math_interval_values",), 1.0 if same else 0.0))
        return literal
    if re.fullmatch(r"[A-Za-z ]+", g):
        return 1.0 if p.lower().split() == g.lower().split() else 0.0
    try:
        gv = math_value(g)
    except (MathSyntax, ArithmeticError, ValueError, RecursionError):
        raise Skip("gold does not parse")
    if isinstance(gv, complex) or math.isnan(gv):
        raise Skip("gold is not a number")
    try:
        pv = math_value(p)
    except (MathSyntax, ArithmeticError, ValueError, RecursionError):
        return 0.0
    if isinstance(pv, complex):
        return 0.0
    return 1.0 if close(pv, gv) else 0.0


# ---------------------------------------------------------------------------------------------
# IoU (DESIGN.md: boxes in any syntax and frame, mapped to original pixels, clamped, invalid ones
# dropped; continuous IoU, optimal one-to-one matching / max(#gold, #pred); anti-hacking)
# ---------------------------------------------------------------------------------------------

FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
SEP = rf"{WS},{WS}"
BOX4 = re.compile(rf"\[{WS}({FLOAT}){SEP}({FLOAT}){SEP}({FLOAT}){SEP}({FLOAT}){WS}\]")
PAREN4 = re.compile(rf"\({WS}({FLOAT}){SEP}({FLOAT}){SEP}({FLOAT}){SEP}({FLOAT}){WS}\)")
PAREN22 = re.compile(rf"\({WS}({FLOAT}){SEP}({FLOAT}){WS}\){WS},?{WS}\({WS}({FLOAT}){SEP}({FLOAT}){WS}\)")


def text_boxes(s):
    """Every `[x1, y1, x2, y2]`, `(x1, y1, x2, y2)` and `(x1, y1), (x2, y2)` in reading order."""
    out = []
    i = 0
    while True:
        a, b = s.find("[", i), s.find("(", i)
        cands = [x for x in (a, b) if x >= 0]
        if not cands:
            return out
        at = min(cands)
        m = BOX4.match(s, at) if s[at] == "[" else (PAREN4.match(s, at) or PAREN22.match(s, at))
        if m:
            out.append([float(v) for v in m.groups()])
            i = m.end()
        else:
            i = at + 1


def gold_boxes(answer):
    if isinstance(answer, str):
        boxes = text_boxes(answer)
        if not boxes and answer.strip() != "[]":
            raise Skip("gold holds no box")
        return boxes

    def one(v):
        if isinstance(v, dict):
            for k in ("bbox_2d", "bbox", "box"):
                if k in v:
                    return one(v[k])
            raise Skip("not a box")
        if isinstance(v, list) and len(v) == 4 and all(_is_number(x) for x in v):
            return [float(x) for x in v]
        raise Skip("not a box")

    if isinstance(answer, list):
        if not answer:
            return []
        if all(_is_number(x) for x in answer):
            return [one(answer)]
        return [one(x) for x in answer]
    if isinstance(answer, dict):
        return [one(answer)]
    raise Skip("not a box")


def smart_resize(h, w, factor=28, min_pixels=3136, max_pixels=12845056):
    """Qwen2.5-VL's image processor (transformers `smart_resize`)."""
    if max(h, w) / min(h, w) > 200:
        raise Skip("aspect ratio over 200")
    hb, wb = round(h / factor) * factor, round(w / factor) * factor
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def to_common(box, frame, size, same_space):
    """Maps to original pixels (or, without an image size, keeps the shared frame), clamps,
    and drops the box (None) when it is not finite, inverted or empty."""
    if not all(math.isfinite(v) for v in box):
        return None
    x1, y1, x2, y2 = box
    if same_space:
        sx = sy = 1.0
        extent = {"rel1": (1.0, 1.0), "rel1000": (1000.0, 1000.0)}.get(frame)
    else:
        w, h = size
        extent = (w, h)
        if frame == "abs":
            sx = sy = 1.0
        elif frame == "rel1":
            sx, sy = w, h
        elif frame == "rel1000":
            sx, sy = w / 1000, h / 1000
        else:
            rh, rw = smart_resize(h, w)
            sx, sy = w / rw, h / rh
    x1, x2, y1, y2 = x1 * sx, x2 * sx, y1 * sy, y2 * sy
    if extent:
        x1, x2 = min(max(x1, 0.0), extent[0]), min(max(x2, 0.0), extent[0])
        y1, y2 = min(max(y1, 0.0), extent[1]), min(max(y2, 0.0), extent[1])
    if not (x2 > x1 and y2 > y1) or not math.isfinite((x2 - x1) * (y2 - y1)):
        return None
    return (x1, y1, x2, y2), extent


def area(b):
    return (b[2] - b[0]) * (b[3] - b[1])


def iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = area(a) + area(b) - inter
    return 0.0 if union <= 0 else min(1.0, max(0.0, inter / union))


def best_matching(preds, golds):
    small, large = (preds, golds) if len(preds) <= len(golds) else (golds, preds)
    best = 0.0
    for perm in itertools.permutations(range(len(large)), len(small)):
        best = max(best, sum(iou(small[i], large[j]) for i, j in enumerate(perm)))
    return best


def iou_reward(answer_text, sample):
    golds_raw = gold_boxes(sample["answer"])
    frame = sample.get("frame") or "abs"
    pred_frame = sample.get("pred_frame") or frame
    size = sample.get("image_size")
    if size is not None:
        w, h = float(size[0]), float(size[1])
        if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
            raise Skip("bad image_size")
        size = (w, h)
        same = False
    elif frame == pred_frame:
        same = True
    else:
        raise Skip("frames differ and no image_size")
    if not same:
        for fr in {frame, pred_frame}:
            if fr == "abs_resized":
                smart_resize(size[1], size[0])
    placed = [to_common(b, frame, size, same) for b in golds_raw]
    golds = [p[0] for p in placed if p]
    if golds_raw and not golds:
        raise Skip("no valid gold box")
    if answer_text is None:
        return 0.0
    raw = text_boxes(answer_text)
    if len(raw) > 20:
        return 0.0
    preds = [p[0] for p in (to_common(b, pred_frame, size, same) for b in raw) if p]
    if not golds:
        return 1.0 if not preds else 0.0
    if not preds:
        return 0.0
    extent = (size if not same else {"rel1": (1.0, 1.0), "rel1000": (1000.0, 1000.0)}.get(frame))
    if extent:
        image = extent[0] * extent[1]
        if not any(area(g) >= 0.5 * image for g in golds) and any(area(p) > 0.9 * image for p in preds):
            return 0.0
    return min(1.0, max(0.0, best_matching(preds, golds) / max(len(golds), len(preds))))


# ---------------------------------------------------------------------------------------------
# The router
# ---------------------------------------------------------------------------------------------

def answer_text(answer):
    if isinstance(answer, str):
        return answer
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    if isinstance(answer, (int, float)):
        return repr(answer)
    if isinstance(answer, list) and all(isinstance(x, str) for x in answer):
        return ", ".join(answer)
    return json.dumps(answer, separators=(",", ":"))


def accuracy(kind, answer, sample, alts):
    gold = answer_text(sample["answer"])
    pred = answer if answer is not None else ""
    if kind == "yes_no":
        return yes_no(pred, gold)
    if kind == "mcq":
        return mcq(pred, gold, sample.get("choices") or [], alts)
    if kind == "numeric":
        return numeric(pred, gold)
    if kind == "math":
        return math_reward(pred, gold, alts)
    if kind == "chart":
        return chart(pred, gold)
    if kind == "iou":
        return iou_reward(answer, sample)
    raise Skip("open_ended needs an embedding table")


def score_sample(sample):
    name = sample.get("reward") if sample.get("reward") is not None else sample.get("task")
    if name not in REWARDS:
        raise Unscorable("unknown or missing task")
    kind = REWARDS[name]
    response = VISION_RE.sub("", sample["response"])
    out = {}
    for ci in (False, True):
        fmt = format_score(response, ci)
        answer = extract_answer(response, ci)
        alts = []
        try:
            acc = accuracy(kind, answer, sample, alts)
        except Skip:
            acc, alts = None, []
        out[ci] = (fmt, acc, alts)
    fmt, acc, alts = out[False]
    alternatives = [(names, fmt, a) for names, a in alts]
    cfmt, cacc, calts = out[True]
    alternatives.append((("tag_case",), cfmt, cacc))
    alternatives += [(("tag_case",) + names, cfmt, a) for names, a in calts]
    return {"format": fmt, "accuracy": acc, "alternatives": alternatives}


def score_line(raw):
    try:
        sample = read_sample(raw)
        return score_sample(sample)
    except Unscorable:
        return {"format": None, "accuracy": None, "alternatives": []}
