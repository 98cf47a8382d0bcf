#!/usr/bin/env python3
"""Text-only GRPO data for the SmolLM2-135M-Instruct recipe: five tasks in our sample schema.

Writes recipes/data/smollm2-text/{train,heldout}.jsonl (see that folder's README.md):
  math        reasoning-gym gsm_symbolic / basic_arithmetic / simple_equations /
              fraction_simplification, plus one-step synthetic word problems
  numeric     reasoning-gym chain_sum / products / leg_counting / letter_counting / gcd
  mcq         reasoning-gym basic_arithmetic and family_relationships with synthetic options,
              synthetic "who has the most" and antonym questions (answer: a letter)
  yes_no      synthetic comparisons / primes / parity, reasoning-gym leap years and syllogisms
              (balanced 50/50 per source and per split)
  open_ended  synthetic number-to-words, reasoning-gym spell_backward and family_relationships

Everything is seeded and deterministic (stdlib + reasoning_gym==0.1.25 only). The held-out set is
taken first from every source's pool, so it stays the same when the train size changes, and every
problem is deduplicated across both files (normalised text, and a per-source key such as the
arithmetic expression or the number asked about, so "Is 91 prime?" and "Is 91 a prime number?"
never land on both sides).

  python make_text_tasks.py [--out DIR] [--check]   # --check: only validate existing files
"""

from __future__ import annotations

import argparse
import collections
import json
import math as _math
import random
import re
import sys
from pathlib import Path

RG_VERSION = "0.1.25"
SEED = 20250624  # base seed; every source derives its own from it
MAX_PROBLEM_CHARS = 300
TASKS = ("math", "numeric", "mcq", "yes_no", "open_ended")
LETTERS = "ABCDEFGH"

# ---------------------------------------------------------------------------------------------
# helpers


def norm_text(s: str) -> str:
    s = s.lower()
    s = re.sub(r"\s+", " ", s).strip()
    return s.rstrip(" ?.!:=")


# Answer-format instructions that reasoning-gym appends; our prompt template adds its own.
FORMAT_SUFFIXES = [
    r"\s*Give the result as your final answer\. Do not include units\.\s*$",
    r"\s*Give only the result as your final answer\.\s*$",
    r"\s*Give only the GCD as your final answer\.\s*$",
    r"\s*Give only the simplified fraction as your final answer\.\s*$",
    r"\s*\(Answer Yes or No\)\s*$",
    r"\s*Answer with Yes or No\.\s*$",
    r"\s*Respond only with the word that describes their relationship\.\s*$",
    r"\s*Provide the relationship in one word\.\s*$",
    r"\s*Answer with a single word\.\s*$",
]
# Phrases no problem may contain after cleaning (checked by validate()).
FORBIDDEN = re.compile(
    r"final answer|answer with|respond only|<answer>|answer in|your answer|one word|single word"
    r"|yes or no|do not include units",
    re.I,
)


def strip_format(q: str) -> str:
    q = q.strip()
    for pat in FORMAT_SUFFIXES:
        q = re.sub(pat, "", q)
    return q.strip()


def is_int(s: str) -> bool:
    return re.fullmatch(r"-?\d+", s) is not None


def latex_frac(p: int, q: int) -> str:
    g = _math.gcd(p, q) or 1
    p, q = p // g, q // g
    if q < 0:
        p, q = -p, -q
    if q == 1:
        return str(p)
    return f"-\\frac{{{-p}}}{{{q}}}" if p < 0 else f"\\frac{{{p}}}{{{q}}}"


def max_product_operand_ok(expr: str, limit: int) -> bool:
    """In `a * b` of an expression (no parentheses), the smaller operand is below `limit`."""
    toks = expr.split()
    for i, t in enumerate(toks):
        if t == "*":
            a, b = abs(int(toks[i - 1])), abs(int(toks[i + 1]))
            if min(a, b) >= limit or max(a, b) > 20:
                return False
    return True


ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen " \
       "fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """American English, hyphenated tens, no "and": 347 -> "three hundred forty-seven"."""
    assert 0 <= n < 1000
    if n < 20:
        return ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return TENS[t] + ("" if o == 0 else "-" + ONES[o])
    h, r = divmod(n, 100)
    return ONES[h] + " hundred" + ("" if r == 0 else " " + number_words(r))


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n ** 0.5) + 1))


NAMES = [("Ana", "She"), ("Ben", "He"), ("Chen", "He"), ("Dina", "She"), ("Eli", "He"),
         ("Fatima", "She"), ("Goran", "He"), ("Hana", "She"), ("Ivo", "He"), ("Jun", "She"),
         ("Kofi", "He"), ("Lena", "She"), ("Mateo", "He"), ("Nora", "She"), ("Omar", "He"),
         ("Priya", "She"), ("Quinn", "He"), ("Rosa", "She"), ("Sami", "He"), ("Tara", "She")]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cards", "stamps", "books", "shells",
         "cookies", "balloons", "coins", "crayons", "eggs", "flowers", "toy cars", "buttons"]

# Each word appears in one pair only, so a distractor is never a second correct answer.
ANTONYMS = [
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"), ("day", "night"),
    ("up", "down"), ("left", "right"), ("open", "closed"), ("full", "empty"), ("hard", "soft"),
    ("wet", "dry"), ("light", "dark"), ("early", "late"), ("young", "old"), ("rich", "poor"),
    ("thick", "thin"), ("long", "short"), ("strong", "weak"), ("clean", "dirty"),
    ("loud", "quiet"), ("high", "low"), ("deep", "shallow"), ("win", "lose"), ("buy", "sell"),
    ("push", "pull"), ("give", "take"), ("first", "last"), ("begin", "end"), ("enter", "exit"),
    ("true", "false"), ("alive", "dead"), ("awake", "asleep"), ("above", "below"),
    ("inside", "outside"), ("front", "back"), ("top", "bottom"), ("north", "south"),
    ("east", "west"), ("summer", "winter"), ("arrive", "leave"), ("laugh", "cry"),
    ("love", "hate"), ("friend", "enemy"), ("war", "peace"), ("question", "answer"),
    ("sweet", "sour"), ("safe", "dangerous"), ("easy", "difficult"), ("cheap", "expensive"),
    ("near", "far"), ("smooth", "rough"), ("wide", "narrow"), ("sharp", "blunt"),
    ("always", "never"), ("everything", "nothing"), ("boy", "girl"), ("man", "woman"),
    ("brother", "sister"), ("before", "after"), ("increase", "decrease"), ("accept", "refuse"),
    ("polite", "rude"), ("brave", "cowardly"), ("kind", "cruel"), ("good", "bad"),
    ("correct", "wrong"), ("innocent", "guilty"), ("success", "failure"),
    ("victory", "defeat"), ("import", "export"), ("maximum", "minimum"),
    ("positive", "negative"), ("public", "private"), ("modern", "ancient"),
    ("forget", "remember"), ("lend", "borrow"), ("sink", "float"), ("melt", "freeze"),
    ("hello", "goodbye"), ("tight", "loose"), ("raw", "cooked"), ("interesting", "boring"),
    ("visible", "invisible"), ("possible", "impossible"), ("legal", "illegal"),
    ("rise", "fall"), ("attack", "defend"), ("lost", "found"), ("pass", "fail"),
    ("start", "finish"), ("major", "minor"), ("plus", "minus"), ("add", "subtract"),
    ("multiply", "divide"), ("future", "past"), ("sunrise", "sunset"), ("inhale", "exhale"),
    ("dawn", "dusk"), ("shout", "whisper"), ("catch", "throw"), ("fresh", "stale"),
    ("generous", "selfish"), ("humble", "proud"), ("hero", "villain"),
    ("teacher", "student"), ("solid", "liquid"), ("wild", "tame"), ("friendly", "hostile"),
    ("beautiful", "ugly"), ("stop", "go"), ("real", "fake"), ("clever", "stupid"),
    ("lazy", "hardworking"), ("permanent", "temporary"), ("vertical", "horizontal"),
    ("natural", "artificial"), ("senior", "junior"), ("include", "exclude"),
    ("ascend", "descend"), ("winner", "loser"), ("guest", "host"),
    ("employer", "employee"), ("upstairs", "downstairs"),
]

RELATIONS = ["father", "mother", "son", "daughter", "husband", "wife", "brother", "sister",
             "grandfather", "grandmother", "grandson", "granddaughter", "father-in-law",
             "mother-in-law", "son-in-law", "daughter-in-law", "uncle", "aunt"]


def place(correct: str, distractors: list[str], pos: int) -> tuple[list[str], str]:
    """Choices with `correct` at index `pos`; returns (choices, letter)."""
    choices = list(distractors)
    choices.insert(pos, correct)
    return choices, LETTERS[pos]


# ---------------------------------------------------------------------------------------------
# sources: each is a generator of candidate dicts
#   {"problem", "answer" (or mcq: "gold" + "distract"), "key", "label" (yes_no), "meta"}
# Candidates are filtered by the builder (length, global dedup, label balance).


def rg_iter(name: str, seed: int, size: int, **cfg):
    import reasoning_gym as rg

    ds = rg.create_dataset(name, size=size, seed=seed, **cfg)
    for i in range(size):
        yield i, ds[i]


def rg_meta(name, seed, idx, cfg=None, **extra):
    m = {"generator": f"reasoning_gym=={RG_VERSION}:{name}", "seed": seed, "index": idx}
    if cfg:
        m["config"] = cfg
    m.update(extra)
    return m


def syn_meta(name, seed, **extra):
    m = {"generator": f"make_text_tasks.py:{name}", "seed": seed}
    m.update(extra)
    return m


# ---- math


def src_gsm_symbolic(seed):
    for i, x in rg_iter("gsm_symbolic", seed, 20000):
        # integer answers, and no number in the text above 1000 (easier for a 135M model)
        if not is_int(x["answer"]) or abs(int(x["answer"])) > 1000:
            continue
        if any(float(v.replace(",", "")) > 1000 for v in re.findall(r"\d[\d,]*(?:\.\d+)?", x["question"])):
            continue
        yield {"problem": strip_format(x["question"]), "answer": x["answer"],
               "key": "gsm:" + norm_text(x["question"]), "meta": rg_meta("gsm_symbolic", seed, i)}


BASIC_MATH_CFG = dict(min_terms=2, max_terms=3, min_digits=1, max_digits=2,
                      operators=["+", "-", "*"], allow_parentheses=False, allow_negation=False,
                      format_style="natural")


def src_basic_arithmetic_math(seed):
    for i, x in rg_iter("basic_arithmetic", seed, 20000, **BASIC_MATH_CFG):
        expr = x["metadata"]["expression"]
        if not max_product_operand_ok(expr, 10) or abs(int(x["answer"])) > 200:
            continue
        yield {"problem": x["question"], "answer": x["answer"], "key": "expr:" + expr,
               "meta": rg_meta("basic_arithmetic", seed, i, BASIC_MATH_CFG)}


SIMPLE_EQ_CFG = dict(min_terms=2, max_terms=2, min_value=1, max_value=10)


def src_simple_equations(seed):
    for i, x in rg_iter("simple_equations", seed, 20000, **SIMPLE_EQ_CFG):
        if not is_int(x["answer"]):
            continue
        yield {"problem": x["question"], "answer": x["answer"],
               "key": "eq:" + x["metadata"]["equation"].replace(" ", ""),
               "meta": rg_meta("simple_equations", seed, i, SIMPLE_EQ_CFG)}


FRACTION_CFG = dict(min_value=1, max_value=12, min_factor=2, max_factor=6,
                    styles=["plain", "latex_frac"])


def src_fraction_simplification(seed):
    for i, x in rg_iter("fraction_simplification", seed, 20000, **FRACTION_CFG):
        m = x["metadata"]
        if m["simplified_denominator"] == 1:  # "6/6" -> 1 teaches little
            continue
        yield {"problem": strip_format(x["question"]),
               "answer": latex_frac(m["simplified_numerator"], m["simplified_denominator"]),
               "key": f"frac:{m['numerator']}/{m['denominator']}",
               "meta": rg_meta("fraction_simplification", seed, i, FRACTION_CFG,
                               rg_answer=x["answer"])}


def src_word_problem(seed):
    rng = random.Random(seed)
    while True:
        name, pron = rng.choice(NAMES)
        item = rng.choice(ITEMS)
        kind = rng.randrange(6)
        if kind == 0:
            a, b = rng.randint(2, 20), rng.randint(2, 20)
            p = f"{name} has {a} {item}. {pron} gets {b} more. How many {item} does {name} have now?"
            ans = a + b
        elif kind == 1:
            a = rng.randint(5, 30)
            b = rng.randint(1, a - 1)
            p = f"{name} has {a} {item} and gives {b} to a friend. How many {item} does {name} have left?"
            ans = a - b
        elif kind == 2:
            a, b = rng.randint(2, 25), rng.randint(2, 15)
            p = f"There are {a} {item} in a box. {name} puts {b} more {item} in the box. How many {item} are in the box now?"
            ans = a + b
        elif kind == 3:
            a, b = rng.randint(2, 6), rng.randint(2, 10)
            p = f"{name} has {a} bags with {b} {item} in each bag. How many {item} does {name} have in total?"
            ans = a * b
        elif kind == 4:
            a, b = rng.randint(2, 5), rng.randint(2, 8)
            p = f"{name} shares {a * b} {item} equally among {a} friends. How many {item} does each friend get?"
            ans = b
        else:
            a = rng.randint(6, 40)
            b = rng.randint(1, a - 1)
            p = f"A box holds {a} {item}. {name} takes out {b} of them. How many {item} are left in the box?"
            ans = a - b
        yield {"problem": p, "answer": str(ans), "key": "wp:" + norm_text(p),
               "meta": syn_meta("word_problem", seed, template=kind)}


# ---- numeric

CHAIN_CFG = dict(min_terms=2, max_terms=3, min_digits=1, max_digits=2, allow_negation=False)


def src_chain_sum(seed):
    for i, x in rg_iter("chain_sum", seed, 20000, **CHAIN_CFG):
        expr = x["metadata"]["expression"]
        # rg: "State the final answer to the following arithmetic problem: 6 + 0 - 1 ="
        yield {"problem": f"{expr} =", "answer": x["answer"], "key": "expr:" + expr,
               "meta": rg_meta("chain_sum", seed, i, CHAIN_CFG)}


PRODUCTS_CFG = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=1, allow_negation=False)


def src_products(seed):
    for i, x in rg_iter("products", seed, 20000, **PRODUCTS_CFG):
        expr = x["metadata"]["expression"]
        a, b = (int(t) for t in expr.split(" * "))
        # rg gives every factor the same digit count: one-digit tables, 0 and 1 left out
        # (36 unordered pairs in all, hence the small share)
        if min(a, b) < 2:
            continue
        yield {"problem": strip_format(x["question"]), "answer": x["answer"],
               "key": "expr:" + " * ".join(map(str, sorted((a, b)))),
               "meta": rg_meta("products", seed, i, PRODUCTS_CFG)}


LEG_CFG = dict(min_animals=1, max_animals=2, min_instances=1, max_instances=4)


def src_leg_counting(seed):
    for i, x in rg_iter("leg_counting", seed, 20000, **LEG_CFG):
        q = x["question"].strip()
        q = re.sub(r"^Your task is to count how many legs.*?\n\nNow, how", "How", q, flags=re.S)
        key = "legs:" + ",".join(f"{k}={v}" for k, v in sorted(x["metadata"]["animals"].items()))
        yield {"problem": q, "answer": x["answer"], "key": key,
               "meta": rg_meta("leg_counting", seed, i, LEG_CFG)}


LETTER_CFG = dict(min_words=1, max_words=3)


def src_letter_counting(seed):
    for i, x in rg_iter("letter_counting", seed, 20000, **LETTER_CFG):
        yield {"problem": x["question"], "answer": x["answer"], "key": "lc:" + norm_text(x["question"]),
               "meta": rg_meta("letter_counting", seed, i, LETTER_CFG)}


GCD_CFG = dict(min_numbers=2, max_numbers=2, min_value=2, max_value=40)


def src_gcd(seed):
    for i, x in rg_iter("gcd", seed, 20000, **GCD_CFG):
        nums = x["metadata"]["numbers"]
        yield {"problem": strip_format(x["question"]), "answer": x["answer"],
               "key": "gcd:" + ",".join(map(str, sorted(nums))),
               "meta": rg_meta("gcd", seed, i, GCD_CFG)}


# ---- mcq

MCQ_ARITH_CFG = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=2, operators=["+", "-"],
                     allow_parentheses=False, allow_negation=False, format_style="natural")


def src_mcq_arithmetic(seed):
    rng = random.Random(seed)
    for i, x in rg_iter("basic_arithmetic", seed, 20000, **MCQ_ARITH_CFG):
        c = int(x["answer"])
        offs = [-10, -2, -1, 1, 2, 10, 11, -11, 9, -9]
        rng.shuffle(offs)
        distract = [str(c + o) for o in offs if c < 0 or c + o >= 0][:3]  # no negative options unless c < 0
        yield {"problem": x["question"], "gold": str(c), "distract": distract,
               "key": "expr:" + x["metadata"]["expression"],
               "meta": rg_meta("basic_arithmetic", seed, i, MCQ_ARITH_CFG,
                               choices_from="synthetic distractors (answer +-1, 2, 9, 10, 11)")}


FAMILY_CFG = dict(min_family_size=3, max_family_size=4)


def family_problem(q: str) -> str:
    return strip_format(q)


def src_mcq_family(seed):
    rng = random.Random(seed)
    for i, x in rg_iter("family_relationships", seed, 20000, **FAMILY_CFG):
        gold = x["answer"]
        if gold not in RELATIONS:
            continue
        others = [r for r in RELATIONS if r != gold]
        distract = rng.sample(others, 3)
        p = family_problem(x["question"])
        yield {"problem": p, "gold": gold, "distract": distract, "key": "fam:" + norm_text(p),
               "meta": rg_meta("family_relationships", seed, i, FAMILY_CFG,
                               choices_from="synthetic distractors (other relation words)")}


def src_mcq_most(seed):
    rng = random.Random(seed)
    while True:
        names = [nm for nm, _ in rng.sample(NAMES, 4)]
        item = rng.choice(ITEMS)
        most = rng.random() < 0.5
        vals = rng.sample(range(2, 60), 4)
        parts = [f"{nm} has {v} {item}" for nm, v in zip(names, vals)]
        p = ", ".join(parts[:-1]) + f" and {parts[-1]}. Who has the {'most' if most else 'fewest'} {item}?"
        win = vals.index(max(vals) if most else min(vals))
        distract = [nm for k, nm in enumerate(names) if k != win]
        rng.shuffle(distract)
        yield {"problem": p, "gold": names[win], "distract": distract, "key": "most:" + norm_text(p),
               "meta": syn_meta("most", seed)}


def src_mcq_antonym(seed):
    rng = random.Random(seed)
    pairs = list(ANTONYMS)
    rng.shuffle(pairs)
    words = [w for pr in ANTONYMS for w in pr]
    for a, b in pairs:
        w, gold = (a, b) if rng.random() < 0.5 else (b, a)
        distract = rng.sample([x for x in words if x not in (a, b)], 2)
        p = rng.choice([f"Which word means the opposite of \"{w}\"?",
                        f"What is the opposite of \"{w}\"?"])
        yield {"problem": p, "gold": gold, "distract": distract,
               "key": "ant:" + "/".join(sorted((a, b))), "meta": syn_meta("antonym", seed)}


# ---- yes_no


def src_yn_compare(seed):
    rng = random.Random(seed)
    n = 0
    while True:
        yes = n % 2 == 0
        n += 1
        a, b = rng.randint(2, 50), rng.randint(2, 50)
        op = rng.choice(["+", "-"])
        if op == "-" and b > a:
            a, b = b, a
        s = a + b if op == "+" else a - b
        rel = rng.choice(["greater", "less"])
        d = rng.randint(1, 10)
        if rel == "greater":
            c = s - d if yes else s + rng.randint(0, 10)
        else:
            c = s + d if yes else s - rng.randint(0, 10)
        if c < 0:
            continue
        p = f"Is {a} {op} {b} {rel} than {c}?"
        truth = (s > c) if rel == "greater" else (s < c)
        assert truth == yes
        yield {"problem": p, "answer": "yes" if yes else "no", "label": yes,
               "key": "cmp:" + p, "meta": syn_meta("compare", seed)}


def src_yn_prime(seed):
    rng = random.Random(seed)
    primes = [k for k in range(2, 300) if is_prime(k)]
    composites = [k for k in range(4, 300) if not is_prime(k)]
    rng.shuffle(primes)
    rng.shuffle(composites)
    for p_, c_ in zip(primes, composites):
        for k, yes in ((p_, True), (c_, False)):
            p = rng.choice([f"Is {k} a prime number?", f"Is {k} prime?"])
            yield {"problem": p, "answer": "yes" if yes else "no", "label": yes,
                   "key": f"prime:{k}", "meta": syn_meta("prime", seed)}


def src_yn_parity(seed):
    rng = random.Random(seed)
    n = 0
    while True:
        yes = n % 2 == 0
        n += 1
        k = rng.randint(1, 999)
        ask_even = rng.random() < 0.5
        if (k % 2 == 0) != (ask_even == yes):
            k += 1
        p = f"Is {k} an {'even' if ask_even else 'odd'} number?"
        assert ((k % 2 == 0) == ask_even) == yes
        yield {"problem": p, "answer": "yes" if yes else "no", "label": yes,
               "key": f"parity:{k}", "meta": syn_meta("parity", seed)}


LEAP_CFG = dict(tasks=["is_leap_year"], leap_year_range=400)


def src_yn_leap(seed):
    for i, x in rg_iter("calendar_arithmetic", seed, 20000, **LEAP_CFG):
        ans = x["answer"].strip().lower()
        year = re.search(r"\b(\d{4})\b", x["question"]).group(1)
        yield {"problem": strip_format(x["question"]), "answer": ans, "label": ans == "yes",
               "key": f"leap:{year}", "meta": rg_meta("calendar_arithmetic", seed, i, LEAP_CFG)}


def src_yn_syllogism(seed):
    for i, x in rg_iter("syllogism", seed, 20000):
        ans = x["answer"].strip().lower()
        p = strip_format(x["question"])
        yield {"problem": p, "answer": ans, "label": ans == "yes", "key": "syl:" + norm_text(p),
               "meta": rg_meta("syllogism", seed, i)}


# ---- open_ended


def src_number_words(seed):
    rng = random.Random(seed)
    while True:
        k = rng.randint(1, 99) if rng.random() < 0.5 else rng.randint(100, 999)
        p = rng.choice([f"Write the number {k} in words.", f"How do you write {k} in English words?"])
        yield {"problem": p, "answer": number_words(k), "key": f"numwords:{k}",
               "meta": syn_meta("number_words", seed)}


SPELL_CFG = dict(min_word_len=3, max_word_len=6)


def common_words() -> set[str]:
    from reasoning_gym.data import read_data_file

    return set(re.findall(r"[a-z]+", read_data_file("in_the_year_2889.txt")))


def src_spell_backward(seed):
    common = common_words()
    for i, x in rg_iter("spell_backward", seed, 200000, **SPELL_CFG):
        w = x["metadata"]["word"]
        # keep ordinary lowercase words (ones that occur in the package's Jules Verne text)
        if w not in common or w == w[::-1]:
            continue
        yield {"problem": x["question"], "answer": x["answer"], "key": f"spell:{w}",
               "meta": rg_meta("spell_backward", seed, i, SPELL_CFG,
                               filter="word occurs in reasoning_gym/data/in_the_year_2889.txt")}


def src_open_family(seed):
    for i, x in rg_iter("family_relationships", seed, 20000, **FAMILY_CFG):
        p = family_problem(x["question"])
        yield {"problem": p, "answer": x["answer"], "key": "fam:" + norm_text(p),
               "meta": rg_meta("family_relationships", seed, i, FAMILY_CFG)}


# ---------------------------------------------------------------------------------------------
# the mix: task -> [(source name, generator, heldout count, train count)]
# seed offsets keep sources independent; they are part of the recipe (see README).

PLAN = {
    "math": [
        ("reasoning-gym/gsm_symbolic", src_gsm_symbolic, 14, 140),
        ("reasoning-gym/basic_arithmetic", src_basic_arithmetic_math, 10, 100),
        ("reasoning-gym/simple_equations", src_simple_equations, 6, 60),
        ("reasoning-gym/fraction_simplification", src_fraction_simplification, 4, 40),
        ("synthetic/word_problem", src_word_problem, 6, 60),
    ],
    "numeric": [
        ("reasoning-gym/chain_sum", src_chain_sum, 13, 130),
        ("reasoning-gym/products", src_products, 3, 30),
        ("reasoning-gym/leg_counting", src_leg_counting, 9, 90),
        ("reasoning-gym/letter_counting", src_letter_counting, 9, 90),
        ("reasoning-gym/gcd", src_gcd, 6, 60),
    ],
    "mcq": [
        ("reasoning-gym/basic_arithmetic", src_mcq_arithmetic, 12, 120),
        ("reasoning-gym/family_relationships", src_mcq_family, 10, 100),
        ("synthetic/most", src_mcq_most, 10, 100),
        ("synthetic/antonym", src_mcq_antonym, 8, 80),
    ],
    "yes_no": [
        ("synthetic/compare", src_yn_compare, 10, 100),
        ("synthetic/prime", src_yn_prime, 8, 80),
        ("synthetic/parity", src_yn_parity, 6, 60),
        ("reasoning-gym/calendar_arithmetic", src_yn_leap, 6, 60),
        ("reasoning-gym/syllogism", src_yn_syllogism, 10, 100),
    ],
    "open_ended": [
        ("synthetic/number_words", src_number_words, 16, 160),
        ("reasoning-gym/spell_backward", src_spell_backward, 14, 140),
        ("reasoning-gym/family_relationships", src_open_family, 10, 100),
    ],
}


def build():
    seen_text: set[str] = set()
    seen_key: set[str] = set()
    out = {"heldout": [], "train": []}
    for t_i, task in enumerate(TASKS):
        for s_i, (source, gen, n_held, n_train) in enumerate(PLAN[task]):
            seed = SEED + 1000 * t_i + 17 * s_i
            need = n_held + n_train
            balanced = task == "yes_no"
            by_label = {True: [], False: []}
            pool = []
            for cand in gen(seed):
                p = cand["problem"]
                if len(p) > MAX_PROBLEM_CHARS:
                    continue
                nt, key = norm_text(p), cand["key"]
                if nt in seen_text or key in seen_key:
                    continue
                if balanced:
                    if len(by_label[cand["label"]]) >= need // 2:
                        if all(len(v) >= need // 2 for v in by_label.values()):
                            break
                        continue
                    by_label[cand["label"]].append(cand)
                else:
                    pool.append(cand)
                seen_text.add(nt)
                seen_key.add(key)
                if balanced and all(len(v) >= need // 2 for v in by_label.values()):
                    break
                if not balanced and len(pool) >= need:
                    break
            if balanced:
                got = sum(len(v) for v in by_label.values())
                yes, no = by_label[True], by_label[False]
                held = yes[: n_held // 2] + no[: n_held // 2]
                train = yes[n_held // 2:] + no[n_held // 2:]
            else:
                got = len(pool)
                held, train = pool[:n_held], pool[n_held:]
            if got < need:
                sys.exit(f"{task}/{source}: only {got} unique candidates, need {need}")
            for split, items in (("heldout", held), ("train", train)):
                for c in items:
                    out[split].append((task, source, seed, c))
    rows = {}
    for split, items in out.items():
        rng = random.Random(SEED + (1 if split == "train" else 2))
        rng.shuffle(items)
        counters = collections.Counter()
        slots = collections.Counter()  # mcq: the gold option's slot cycles per choice count
        lines = []
        for task, source, seed, c in items:
            counters[task] += 1
            if "gold" in c:
                n = len(c["distract"]) + 1
                choices, answer = place(c["gold"], c["distract"], slots[n] % n)
                slots[n] += 1
            else:
                choices, answer = c.get("choices"), c["answer"]
            rec = {"id": f"smollm2-text-{split}-{task}-{counters[task]:03d}", "source": source,
                   "task": task, "problem": c["problem"], "answer": answer}
            if choices:
                rec["choices"] = choices
            rec["meta"] = c["meta"]
            lines.append(rec)
        rows[split] = lines
    return rows


# ---------------------------------------------------------------------------------------------
# validation

NUM_RE = re.compile(r"-?\d+(\.\d+)?")
FRAC_RE = re.compile(r"-?\\frac\{\d+\}\{\d+\}")
ALLOWED_KEYS = {"id", "source", "task", "problem", "answer", "choices", "meta"}


def validate(paths: dict[str, Path]) -> int:
    errors = []
    texts = {}
    ids = set()
    stats = {}
    for split, path in paths.items():
        counts = collections.Counter()
        letters = collections.Counter()
        yn = collections.Counter()
        for ln, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.name}:{ln}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: not JSON ({e})")
                continue
            if set(r) - ALLOWED_KEYS or not {"id", "source", "task", "problem", "answer"} <= set(r):
                errors.append(f"{where}: fields {sorted(r)}")
                continue
            t, a, p = r["task"], r["answer"], r["problem"]
            if r["id"] in ids:
                errors.append(f"{where}: duplicate id {r['id']}")
            ids.add(r["id"])
            if t not in TASKS:
                errors.append(f"{where}: task {t!r}")
            if not isinstance(a, str) or not a.strip():
                errors.append(f"{where}: answer {a!r}")
                continue
            if len(p) > MAX_PROBLEM_CHARS:
                errors.append(f"{where}: problem has {len(p)} chars")
            if FORBIDDEN.search(p):
                errors.append(f"{where}: answer-format instruction in problem: {p!r}")
            ch = r.get("choices", [])
            if t == "mcq":
                if not (3 <= len(ch) <= 4) or len(set(ch)) != len(ch):
                    errors.append(f"{where}: choices {ch!r}")
                if not (len(a) == 1 and a in LETTERS[: len(ch)]):
                    errors.append(f"{where}: mcq answer {a!r} for {len(ch)} choices")
                if re.search(r"\([A-D]\)\s|\bOptions:", p):
                    errors.append(f"{where}: options repeated in problem")
                letters[a] += 1
            elif ch:
                errors.append(f"{where}: choices on a {t} sample")
            if t == "numeric" and not NUM_RE.fullmatch(a):
                errors.append(f"{where}: numeric answer {a!r}")
            if t == "math" and not (NUM_RE.fullmatch(a) or FRAC_RE.fullmatch(a)):
                errors.append(f"{where}: math answer {a!r}")
            if t == "yes_no":
                if a not in ("yes", "no"):
                    errors.append(f"{where}: yes_no answer {a!r}")
                yn[a] += 1
            nt = norm_text(p)
            if nt in texts:
                errors.append(f"{where}: duplicate problem (also {texts[nt]}): {p!r}")
            texts[nt] = where
            counts[(t, r["source"])] += 1
        stats[split] = (counts, letters, yn)
        if yn["yes"] != yn["no"]:
            errors.append(f"{path.name}: yes_no not balanced {dict(yn)}")
    for split, (counts, letters, yn) in stats.items():
        path = paths[split]
        print(f"== {split}: {sum(counts.values())} lines, {path.stat().st_size} bytes ({path})")
        by_task = collections.Counter()
        for (t, s), n in counts.items():
            by_task[t] += n
        for t in TASKS:
            print(f"  {t:<11} {by_task[t]:>4}")
            for (t2, s), n in sorted(counts.items()):
                if t2 == t:
                    print(f"      {s:<40} {n:>4}")
        print(f"  mcq letters {dict(sorted(letters.items()))}; yes_no {dict(sorted(yn.items()))}")
    total = sum(p.stat().st_size for p in paths.values())
    if total > 2_000_000:
        errors.append(f"files total {total} bytes > 2 MB")
    for e in errors[:50]:
        print("ERROR", e, file=sys.stderr)
    if errors:
        print(f"{len(errors)} errors", file=sys.stderr)
        return 1
    print(f"ok: all lines valid, no duplicate problems across files, {total} bytes in all")
    return 0


def main():
    here = Path(__file__).resolve()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=here.parents[2] / "recipes/data/smollm2-text")
    ap.add_argument("--check", action="store_true", help="only validate the existing files")
    args = ap.parse_args()
    paths = {"heldout": args.out / "heldout.jsonl", "train": args.out / "train.jsonl"}
    if not args.check:
        import importlib.metadata as md

        have = md.version("reasoning_gym")
        if have != RG_VERSION:
            sys.exit(f"reasoning_gym {have} installed, this recipe pins {RG_VERSION}")
        rows = build()
        args.out.mkdir(parents=True, exist_ok=True)
        for split, path in paths.items():
            with path.open("w", encoding="utf-8") as f:
                for r in rows[split]:
                    f.write(json.dumps(r, ensure_ascii=False, separators=(", ", ": ")) + "\n")
    sys.exit(validate(paths))


if __name__ == "__main__":
    main()
