"""Build the multiple-choice fact corpus ``quiz.jsonl.xz`` shipped in ``src/undo/data/corpora``.

Source: the Debian package ``bsdgames`` (BSD-3-Clause), whose quiz(6) game ships colon-separated fact
files in ``usr/share/games/bsdgames/quiz/`` (``index`` names the columns of each file).

quiz(6) syntax, as read here: a backslash at the end of a line continues the logical line on the next
one; ``\\x`` quotes a character; fields are separated by ``:``; inside a field, ``a|b`` are accepted
alternatives, ``{pat}`` is an optional part and ``[a|b]`` delimits alternatives inside a word. A field's
canonical text is its first alternative at every level, with optional parts kept in full (dropping them
would turn ``Cal{if{ornia}}`` into "Cal", ``{H|h}uns`` into "uns" and ``Central Africa{n Rep{ublic}}``
into "Central Africa"); an accent group such as ``['e|e'|e]`` becomes the accented letter (é).

Per chosen file (FILES: question column, answer column, category, English question template):

* keep logical lines whose canonical question and answer are non-empty and at most MAX_FIELD_CHARS
  characters (and not in SKIP); the first of several lines with the same question (case-insensitive,
  across all files in FILES order) wins;
* order the kept lines by sha256("<file>:<logical line>") and take the first MAX_PER_FILE;
* distractors: the canonical answers of the file's other kept lines, minus every accepted answer (each
  alternative) of any line asking the same question, deduplicated case-insensitively, ordered by
  sha256("<key>:distractor:<answer>"); the first three are taken;
* the right answer's position is int(sha256("<key>:position")) % 4.

Output: ``quiz.jsonl.xz``, one JSON object per line, ``{"category", "question", "choices", "label"}``
(label = index of the right answer in choices), sorted by (category, question), keys sorted, xz preset
9|extreme, and its provenance and licence in ``NOTICE-quiz.md``. The output is byte-identical on rerun.

Usage::

    uv run python scripts/extract_quiz.py                 # apt-get download into a temp dir
    uv run python scripts/extract_quiz.py --debs /tmp/deb # use an already downloaded bsdgames_*.deb

Standard library only (needs ``dpkg-deb``, and ``apt-get`` when --debs is not given).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from debian_packages import deb_version, unpack

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "src" / "undo" / "data" / "corpora"

PACKAGE = "bsdgames"
QUIZ_ROOT = Path("usr/share/games/bsdgames/quiz")
COPYRIGHT = Path("usr/share/doc/bsdgames/copyright")
OUT_NAME = "quiz.jsonl.xz"
NOTICE_NAME = "NOTICE-quiz.md"  # its own file: scripts/extract_corpora.py rewrites NOTICE.md whole


@dataclass(frozen=True)
class Spec:
    file: str  # data file in QUIZ_ROOT
    question_col: int
    answer_col: int
    category: str
    template: str  # "{x}" is replaced by the canonical question field


FILES = (
    Spec("africa", 0, 1, "capitals_africa", "What is the capital of {x}?"),
    Spec("america", 0, 1, "capitals_americas", "What is the capital of {x}?"),
    Spec("asia", 0, 1, "capitals_asia", "What is the capital of {x}?"),
    Spec("europe", 0, 1, "capitals_europe", "What is the capital of {x}?"),
    Spec("state", 0, 1, "us_state_capitals", "What is the capital of the U.S. state of {x}?"),
    Spec("elements", 3, 0, "element_symbols", "What is the chemical symbol of {x}?"),
    Spec("collectives", 0, 1, "collective_nouns", "What is the collective noun for a group of {x}?"),
    Spec("poetry", 2, 3, "poem_authors", 'Who wrote the poem "{x}"?'),
)
# (file, canonical question) pairs left out: jokes rather than facts.
SKIP = {("collectives", "operating companies")}

MAX_FIELD_CHARS = 60
MAX_PER_FILE = 80
N_CHOICES = 4
XZ_PRESET = 9 | lzma.PRESET_EXTREME

# quiz(6) accent notation inside [..] groups: mark -> combining character
ACCENTS = {"'": "\u0301", "^": "\u0302", "~": "\u0303", "°": "\u030a"}


# --- quiz(6) pattern syntax ------------------------------------------------------------------------


def logical_lines(text: str) -> list[str]:
    """Join backslash-continued lines; blank lines are dropped."""
    out: list[str] = []
    buf = ""
    for line in text.splitlines():
        n_trailing = len(line) - len(line.rstrip("\\"))
        if n_trailing % 2 == 1:  # an unquoted backslash at the end: continued
            buf += line[:-1]
            continue
        buf += line
        if buf.strip():
            out.append(buf)
        buf = ""
    if buf.strip():
        out.append(buf)
    return out


def split_fields(line: str) -> list[str]:
    """Split a logical line on the ':' that are neither quoted nor inside {..} or [..]."""
    fields, buf, depth, i = [], [], 0, 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            buf.append(line[i : i + 2])
            i += 2
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth = max(0, depth - 1)
        if c == ":" and depth == 0:
            fields.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    fields.append("".join(buf))
    return fields


def _parse_alts(s: str, i: int, close: str | None) -> tuple[list[list], int]:
    """Parse alternatives up to `close` (or the end); a sequence item is a str, ("opt", alts) or ("grp", alts)."""
    alts: list[list] = [[]]
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            alts[-1].append(s[i + 1])
            i += 2
        elif c == "|":
            alts.append([])
            i += 1
        elif c in "{[":
            inner, i = _parse_alts(s, i + 1, "}" if c == "{" else "]")
            alts[-1].append(("opt" if c == "{" else "grp", inner))
        elif close is not None and c == close:
            return alts, i + 1
        else:
            alts[-1].append(c)
            i += 1
    return alts, i  # an unclosed group ends with the field


def _render_seq(seq: list) -> str:
    out = []
    for item in seq:
        if isinstance(item, str):
            out.append(item)
        elif item[0] == "opt":
            out.append(_render_seq(item[1][0]))
        else:
            out.append(_render_group(item[1]))
    return "".join(out)


def _render_group(alts: list[list]) -> str:
    texts = [_render_seq(a).replace("\b", "") for a in alts]  # accents are overstruck: '<BS>e
    plain, first = texts[-1], texts[0]
    if len(plain) == 1 and plain.isalpha() and len(first) == 2 and plain in first:  # e.g. ['e|e'|e]
        mark = first.replace(plain, "", 1)
        if mark in ACCENTS:
            return unicodedata.normalize("NFC", plain + ACCENTS[mark])
        return plain
    return first


def alternatives(field: str) -> list[str]:
    """Canonical text of each top-level alternative of a field (whitespace collapsed)."""
    alts, _ = _parse_alts(field, 0, None)
    return [" ".join(_render_seq(a).split()) for a in alts]


def canonical(field: str) -> str:
    return alternatives(field)[0]


# --- building the items ------------------------------------------------------------------------------


def sha_int(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)


@dataclass(frozen=True)
class Fact:
    key: str  # "<file>:<logical line>"
    questions: tuple[str, ...]  # every alternative of the question field, the canonical one first
    answers: tuple[str, ...]  # every alternative of the answer field, the canonical one first

    @property
    def question(self) -> str:
        return self.questions[0]

    @property
    def answer(self) -> str:
        return self.answers[0]


def _usable(text: str) -> bool:
    return 0 < len(text) <= MAX_FIELD_CHARS and not any(unicodedata.category(c).startswith("C") for c in text)


def read_facts(quiz_dir: Path, spec: Spec) -> list[Fact]:
    """Every line of a data file whose canonical question and answer are usable, in file order."""
    facts = []
    for line in logical_lines((quiz_dir / spec.file).read_text(encoding="utf-8")):
        fields = split_fields(line)
        if max(spec.question_col, spec.answer_col) >= len(fields):
            continue
        fact = Fact(
            f"{spec.file}:{line}",
            tuple(alternatives(fields[spec.question_col])),
            tuple(alternatives(fields[spec.answer_col])),
        )
        if _usable(fact.question) and _usable(fact.answer) and (spec.file, fact.question) not in SKIP:
            facts.append(fact)
    return facts


def build_items(quiz_dir: Path, specs: tuple[Spec, ...] = FILES) -> list[dict]:
    """The quiz items of all files in `specs`, sorted by (category, question). Pure: reads only quiz_dir."""
    items = []
    seen: set[str] = set()  # question sentences already asked (case-insensitive), across files
    for spec in specs:
        facts = read_facts(quiz_dir, spec)
        # every accepted answer of every question alternative, so that no valid answer becomes a distractor
        valid: dict[str, set[str]] = {}
        for f in facts:
            for q in f.questions:
                valid.setdefault(q.casefold(), set()).update(a.casefold() for a in f.answers if a)
        kept = []
        for f in facts:
            sentence = spec.template.replace("{x}", f.question)
            if sentence.casefold() not in seen:
                seen.add(sentence.casefold())
                kept.append((sentence, f))
        for sentence, fact in sorted(kept, key=lambda sf: sha_int(sf[1].key))[:MAX_PER_FILE]:
            excluded = valid[fact.question.casefold()]
            pool: dict[str, str] = {}
            for other in facts:
                folded = other.answer.casefold()
                if folded not in excluded and folded not in pool:
                    pool[folded] = other.answer
            distractors = sorted(pool.values(), key=lambda a: sha_int(f"{fact.key}:distractor:{a}"))
            if len(distractors) < N_CHOICES - 1:
                continue
            label = sha_int(f"{fact.key}:position") % N_CHOICES
            choices = distractors[: N_CHOICES - 1]
            choices.insert(label, fact.answer)
            items.append({"category": spec.category, "question": sentence, "choices": choices, "label": label})
    return sorted(items, key=lambda it: (it["category"], it["question"]))


def encode_items(items: list[dict]) -> bytes:
    lines = [json.dumps(it, ensure_ascii=False, sort_keys=True) for it in items]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=XZ_PRESET)


# --- provenance ------------------------------------------------------------------------------------

NOTICE_HEADING = "# bsdgames quiz corpus (`quiz.jsonl.xz`): provenance and license"


def license_excerpt(copyright_text: str) -> tuple[str, str]:
    """The paragraph on the standard BSD terms (with its license text) and the one on data files."""
    paras = copyright_text.split("\n\n")
    start = next(i for i, p in enumerate(paras) if p.startswith("Most games are under the standard BSD terms"))
    bsd = "\n\n".join(paras[start : start + 4])  # the lead-in, the copyright line, conditions, disclaimer
    data = next(p for p in paras if p.startswith("Auxiliary and data files"))
    return bsd, data


def notice_section(deb: Path, copyright_text: str, items: list[dict]) -> str:
    bsd, data = license_excerpt(copyright_text)
    counts = {}
    for it in items:
        counts[it["category"]] = counts.get(it["category"], 0) + 1
    rows = "\n".join(f"| `{s.file}` | `{s.category}` | {s.template} | {counts.get(s.category, 0)} |" for s in FILES)
    return f"""{NOTICE_HEADING}

`quiz.jsonl.xz` contains multiple-choice questions built from the data files of the quiz(6) game
(`usr/share/games/bsdgames/quiz/`) as shipped in this Debian 12 (bookworm) package:

- `{PACKAGE}` version `{deb_version(deb)}` (`{deb.name}`)

The package's copyright file (`usr/share/doc/bsdgames/copyright`) says, verbatim (two excerpts):

```
{bsd}
```

```
{data}
```

The quiz data files bear no copyright notice of their own; per the above, they fall under the
standard BSD terms (BSD-3-Clause) quoted first, Copyright (c) 1980, 1982, 1983, 1985-1994 The
Regents of the University of California, and `quiz.jsonl.xz` is distributed under the same terms.
The choice of files, the question templates and the distractors were added by this project.

## What was extracted

From each of these files, one question per line (the question column, the answer column), phrased
with a fixed English template:

| file | category | question | items |
|---|---|---|---|
{rows}

A field's canonical text is its first `a|b` alternative, with `{{optional}}` parts kept in full and
quiz(6) accent groups such as `['e|e'|e]` rendered as accented letters. Lines with an empty or
longer than {MAX_FIELD_CHARS}-character question or answer, repeated questions, and one joke entry are
dropped; at most {MAX_PER_FILE} lines per file are kept, chosen by sha256 of the line. Each item has
the right answer and three distractors: canonical answers of other lines of the same file that are
not an accepted answer to the question, chosen by sha256; the right answer's position is chosen by
sha256 too. One JSON line per item: `{{"category", "question", "choices", "label"}}` with `label` the
index of the right answer in `choices`, sorted by (category, question).

## Regenerating

    uv run python scripts/extract_quiz.py              # downloads the package with apt-get
    uv run python scripts/extract_quiz.py --debs DIR   # or use the .deb file already in DIR

The output and this notice are byte-identical on rerun with the same package version.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--debs", type=Path, help="folder holding bsdgames_*.deb (default: apt-get download)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="extract_quiz_") as tmp:
        deb, root = unpack([PACKAGE], args.debs, Path(tmp))[PACKAGE]
        items = build_items(root / QUIZ_ROOT)
        copyright_text = (root / COPYRIGHT).read_text(encoding="utf-8")

    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / OUT_NAME
    out_file.write_bytes(encode_items(items))
    notice = args.out / NOTICE_NAME
    notice.write_text(notice_section(deb, copyright_text, items), encoding="utf-8")
    counts: dict[str, int] = {}
    for it in items:
        counts[it["category"]] = counts.get(it["category"], 0) + 1
    for category, n in sorted(counts.items()):
        print(f"{category:<20} {n:4d}")
    positions = [sum(it["label"] == k for it in items) for k in range(N_CHOICES)]
    print(f"items={len(items)} label_positions={positions}")
    print(f"wrote {out_file} ({out_file.stat().st_size} bytes)")
    print(f"wrote {notice}")


if __name__ == "__main__":
    main()
