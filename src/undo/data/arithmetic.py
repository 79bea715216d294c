"""The arithmetic setting's data: equations "a op b = c" and templated word problems, as (prompt, answer) pairs.

Operands follow the paper: + and - draw from 1..50 (a subtraction's result is never negative), x and ÷ from
1..20 (a division is built as (a * b) / b, so every answer is an integer). Each operation has 20 training
templates and 10 held-out templates that only evaluation items use. Every draw is a keyed hash of (seed, item,
field), so the data are identical across runs, platforms and Python versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from undo.errors import UserError

TRAIN_SEED = 99
EVAL_SEED = 42
EVAL_ITEMS = 100  # per operation and format
OPERATIONS = ("add", "sub", "mul", "div")
FORMATS = ("eq", "word")
SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
ANSWER = "{answer}"


def metric_name(op: str, form: str) -> str:
    """The accuracy metric of one operation and format, e.g. "mul_eq"."""
    return f"{op}_{form}"


@dataclass(frozen=True)
class QA:
    """A document trained with loss on the answer only: prompt + answer + suffix."""

    prompt: str
    answer: str
    suffix: str = ""

    @property
    def text(self) -> str:
        """The whole document, for training with loss on every token."""
        return self.prompt + self.answer + self.suffix


@dataclass(frozen=True)
class Item:
    """One evaluation (or training) problem: its operation, format, the QA text and the numeric answer."""

    op: str
    format: str
    qa: QA
    value: int
    n1: int  # the operands, as the problem states them
    n2: int

    @property
    def metric(self) -> str:
        return metric_name(self.op, self.format)

    @property
    def fact(self) -> str:
        """The addition or multiplication fact the problem tests: its unordered pair of summands or factors
        (3 * 4, 4 * 3, 12 / 4 and 12 / 3 test one fact)."""
        pair = (self.n2, self.value) if self.op in ("sub", "div") else (self.n1, self.n2)
        kind = "add" if self.op in ("add", "sub") else "mul"
        return f"{kind}:{min(pair)},{max(pair)}"


NAMES = (
    "Ada", "Bruno", "Chen", "Dalia", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lena", "Mateo",
    "Nora", "Oskar", "Priya", "Quinn", "Rosa", "Sami", "Tova", "Umar", "Vera", "Wim", "Yara", "Zeno",
)  # fmt: skip
OBJECTS = (
    "apples", "pencils", "marbles", "stamps", "shells", "buttons", "cookies", "stickers", "coins", "books",
    "cards", "beads", "lemons", "candles", "bolts", "tickets",
)  # fmt: skip
CONTAINERS = ("box", "basket", "jar", "bag", "crate", "drawer", "tin", "bucket")
PLACES = ("market", "library", "garden", "school", "harbour", "workshop", "bakery", "museum")
GROUPS = ("friends", "classmates", "teams", "neighbours", "cousins", "tables", "shelves", "rows")

# Templates: {name}, {name2}, {n1}, {n2}, {obj}, {container}, {place}, {group} and exactly one {answer}.
# add: n1 + n2; sub: n1 - n2; mul: n1 * n2; div: n1 / n2 (n1 = answer * n2).
TRAIN_TEMPLATES = {
    "add": (
        "{name} has {n1} {obj} and finds {n2} more at the {place}. Now {name} has {answer} {obj}.",
        "A {container} holds {n1} {obj}. {name} puts in {n2} more, so it holds {answer} {obj}.",
        "{name} bought {n1} {obj} and {name2} bought {n2}. Together they bought {answer} {obj}.",
        "There were {n1} {obj} at the {place} and {n2} more arrived. Then there were {answer} {obj}.",
        "{name} collected {n1} {obj} on Monday and {n2} on Tuesday, {answer} {obj} in all.",
        "On one shelf are {n1} {obj} and on another {n2}. Both shelves hold {answer} {obj}.",
        "{name} had {n1} {obj}. {name2} gave {name} {n2} more. {name} now owns {answer} {obj}.",
        "The {place} sold {n1} {obj} in the morning and {n2} in the afternoon: {answer} {obj} that day.",
        "One {container} has {n1} {obj}, a second has {n2}. The two together have {answer} {obj}.",
        "{name} counted {n1} {obj}, then counted {n2} more. The count is now {answer} {obj}.",
        "A class of {n1} pupils is joined by {n2} more, making {answer} pupils.",
        "{name} read {n1} pages, then {n2} pages more, reading {answer} pages altogether.",
        "The {group} brought {n1} {obj} and {name} brought {n2}, for a total of {answer} {obj}.",
        "{name} walked {n1} km on Saturday and {n2} km on Sunday, so {answer} km that weekend.",
        "A bus carries {n1} people and {n2} get on at the {place}. It now carries {answer} people.",
        "{name} saved {n1} coins and earned {n2} more. {name} has saved {answer} coins.",
        "In the {container} are {n1} red {obj} and {n2} blue {obj}, {answer} {obj} in the {container}.",
        "{name2} planted {n1} seeds and {name} planted {n2}. They planted {answer} seeds.",
        "The first box of {obj} weighs {n1} kg and the second {n2} kg; both weigh {answer} kg.",
        "{name} scored {n1} points, then {n2} points. The total score is {answer} points.",
    ),
    "sub": (
        "{name} has {n1} {obj} and gives {n2} to {name2}. Now {name} has {answer} {obj}.",
        "A {container} holds {n1} {obj}. {name} takes out {n2}, so it holds {answer} {obj}.",
        "There were {n1} {obj} at the {place} and {n2} were sold. Then there were {answer} {obj}.",
        "{name} had {n1} {obj} and lost {n2} of them. {name} has {answer} {obj} left.",
        "The {place} had {n1} {obj} and used {n2} today, leaving {answer} {obj}.",
        "{name} baked {n1} {obj} and the {group} ate {n2}. There are {answer} {obj} left.",
        "A bus carries {n1} people and {n2} get off at the {place}. It now carries {answer} people.",
        "{name} saved {n1} coins and spent {n2}. {name} still has {answer} coins.",
        "Of {n1} {obj} in the {container}, {n2} are broken, so {answer} {obj} are whole.",
        "{name} needs {n1} {obj} and already has {n2}. {name} still needs {answer} {obj}.",
        "A book has {n1} pages and {name} has read {n2}. {answer} pages remain.",
        "{name2} had {n1} {obj}, then gave {n2} away, keeping {answer} {obj}.",
        "The {container} held {n1} {obj} until {n2} fell out. Now it holds {answer} {obj}.",
        "{name} climbed {n1} steps and came down {n2}. {name} is {answer} steps up.",
        "There are {n1} seats at the {place} and {n2} are taken, so {answer} seats are free.",
        "{name} picked {n1} {obj} but {n2} were bad. {name} kept {answer} good {obj}.",
        "A rope of {n1} metres loses {n2} metres, leaving {answer} metres of rope.",
        "{name} owned {n1} {obj} and sold {n2} at the {place}. {name} owns {answer} {obj} now.",
        "Out of {n1} {obj}, the {group} took {n2}, and {answer} {obj} stayed behind.",
        "{name} had {n1} minutes and used {n2} of them, with {answer} minutes to spare.",
    ),
    "mul": (
        "{name} has {n1} {container}s with {n2} {obj} in each. That makes {answer} {obj}.",
        "There are {n1} {group} with {n2} {obj} each, {answer} {obj} in all.",
        "{name} buys {n1} packs of {n2} {obj}, getting {answer} {obj}.",
        "A {place} has {n1} rows of {n2} chairs, so it has {answer} chairs.",
        "Each of {n1} {container}s holds {n2} {obj}. Together they hold {answer} {obj}.",
        "{name} reads {n2} pages a day for {n1} days, reading {answer} pages.",
        "{n1} {group} each bring {n2} {obj} to the {place}: {answer} {obj} arrive.",
        "{name} stacks {n1} layers of {n2} {obj}, a stack of {answer} {obj}.",
        "A shelf has {n1} sections and each holds {n2} {obj}, so the shelf holds {answer} {obj}.",
        "{name2} earns {n2} coins a week for {n1} weeks and earns {answer} coins.",
        "There are {n1} tables at the {place} with {n2} {obj} on each, {answer} {obj} on the tables.",
        "{name} plants {n1} rows with {n2} seeds per row, planting {answer} seeds.",
        "A {container} holds {n2} {obj}, and {name} fills {n1} of them with {answer} {obj}.",
        "{n1} trays of {n2} {obj} come out of the oven: {answer} {obj}.",
        "{name} walks {n2} km every day for {n1} days, walking {answer} km.",
        "Each of the {n1} {group} gets {n2} {obj}, so {answer} {obj} are handed out.",
        "A box has {n1} layers and {n2} {obj} per layer. It has {answer} {obj}.",
        "{name} gives {n2} {obj} to each of {n1} {group}, giving away {answer} {obj}.",
        "The {place} orders {n1} crates of {n2} {obj}, {answer} {obj} in the order.",
        "{name} ties {n1} bundles of {n2} {obj}: {answer} {obj} are tied.",
    ),
    "div": (
        "{name} shares {n1} {obj} equally among {n2} {group}. Each gets {answer} {obj}.",
        "{n1} {obj} are packed into {n2} {container}s equally, {answer} {obj} per {container}.",
        "{name} splits {n1} coins into {n2} equal piles of {answer} coins.",
        "A {place} puts {n1} chairs into {n2} equal rows, with {answer} chairs per row.",
        "{n1} {obj} go onto {n2} shelves evenly, so each shelf gets {answer} {obj}.",
        "{name} reads {n1} pages in {n2} days, the same each day: {answer} pages a day.",
        "The {group} divide {n1} {obj} into {n2} equal groups of {answer} {obj}.",
        "{name2} packs {n1} {obj} into bags of equal size, {n2} bags with {answer} {obj} each.",
        "{n1} pupils form {n2} equal teams of {answer} pupils.",
        "{name} cuts a {n1} metre rope into {n2} equal pieces of {answer} metres.",
        "{n1} {obj} are shared by {n2} {group}, and each one receives {answer} {obj}.",
        "A {container} of {n1} {obj} is emptied into {n2} bowls equally, {answer} {obj} per bowl.",
        "{name} walks {n1} km in {n2} days at the same pace, {answer} km per day.",
        "{n1} seeds are planted in {n2} equal rows, {answer} seeds to a row.",
        "The {place} spreads {n1} {obj} over {n2} tables evenly: {answer} {obj} per table.",
        "{name} earns {n1} coins over {n2} weeks, the same each week, so {answer} coins a week.",
        "{n1} {obj} fill {n2} {container}s, the same number in each: {answer} {obj} apiece.",
        "{name} hands out {n1} {obj} to {n2} {group}, {answer} {obj} for each.",
        "{n1} tickets are split evenly between {n2} {group}, {answer} tickets each.",
        "{name} sorts {n1} {obj} into {n2} equal rows of {answer} {obj}.",
    ),
}
EVAL_TEMPLATES = {
    "add": (
        "{name} owned {n1} {obj}. After a trip to the {place}, {name} had {n2} more, which is {answer} {obj}.",
        "{n1} {obj} lay on the table and {name2} added {n2}, giving {answer} {obj} on the table.",
        "The {group} gathered {n1} {obj} and then another {n2}, gathering {answer} {obj}.",
        "{name} drove {n1} km before lunch and {n2} km after it, {answer} km in the day.",
        "If a {container} has {n1} {obj} and receives {n2} more, it contains {answer} {obj}.",
        "{name} and {name2} have {n1} and {n2} {obj}. Between them they have {answer} {obj}.",
        "A farm had {n1} hens and bought {n2} more; the farm has {answer} hens.",
        "{name} wrote {n1} lines yesterday and {n2} today: {answer} lines so far.",
        "At the {place}, {n1} visitors came early and {n2} came late, {answer} visitors overall.",
        "Adding {n2} {obj} to {name}'s {n1} {obj} gives {name} {answer} {obj}.",
    ),
    "sub": (
        "{name} owned {n1} {obj}. After a trip to the {place}, {name} had {n2} fewer, which is {answer} {obj}.",
        "{n1} {obj} lay on the table and {name2} removed {n2}, leaving {answer} {obj} on the table.",
        "The {group} had {n1} {obj} and used up {n2}, keeping {answer} {obj}.",
        "{name} must drive {n1} km and has driven {n2} km, so {answer} km are left.",
        "If a {container} has {n1} {obj} and {n2} are taken, it contains {answer} {obj}.",
        "A farm had {n1} hens and sold {n2}; the farm has {answer} hens.",
        "{name} wrote {n1} lines and deleted {n2}: {answer} lines remain.",
        "At the {place}, {n1} visitors came and {n2} left early, so {answer} visitors stayed.",
        "Taking {n2} {obj} from {name}'s {n1} {obj} leaves {name} {answer} {obj}.",
        "{name2} began with {n1} {obj} and ended with {n2} fewer, ending with {answer} {obj}.",
    ),
    "mul": (
        "{name} fills {n1} {container}s, putting {n2} {obj} into each, for {answer} {obj}.",
        "At the {place} there are {n1} stalls and every stall sells {n2} {obj}: {answer} {obj} are sold.",
        "The {group} form {n1} lines of {n2} people, which is {answer} people.",
        "{name} saves {n2} coins in each of {n1} months, saving {answer} coins.",
        "A garden has {n1} beds with {n2} flowers in every bed, {answer} flowers altogether.",
        "{name2} buys {n2} {obj} on each of {n1} days and buys {answer} {obj}.",
        "If {n1} {container}s contain {n2} {obj} apiece, they contain {answer} {obj}.",
        "{name} runs {n1} laps of {n2} metres, running {answer} metres.",
        "A wall is {n1} bricks high and {n2} bricks wide, {answer} bricks in the wall.",
        "{n1} cars carry {n2} passengers each, carrying {answer} passengers.",
    ),
    "div": (
        "{name} fills {n2} {container}s equally with {n1} {obj}, putting {answer} {obj} into each.",
        "At the {place}, {n1} {obj} are sold evenly by {n2} stalls, {answer} {obj} per stall.",
        "The {group} make {n2} equal lines out of {n1} people, {answer} people per line.",
        "{name} saves {n1} coins evenly over {n2} months, {answer} coins a month.",
        "A garden has {n1} flowers in {n2} beds with the same number in every bed: {answer} flowers per bed.",
        "{name2} buys {n1} {obj} over {n2} days, the same each day, buying {answer} {obj} a day.",
        "If {n2} {container}s contain {n1} {obj} shared evenly, each contains {answer} {obj}.",
        "{name} runs {n1} metres in {n2} equal laps of {answer} metres.",
        "A wall of {n1} bricks is {n2} bricks high, so it is {answer} bricks wide.",
        "{n1} passengers ride in {n2} cars, the same number in each: {answer} passengers per car.",
    ),
}


def fingerprint() -> str:
    """Identifies the generator's templates and word lists, for cache keys."""
    content = [TRAIN_TEMPLATES, EVAL_TEMPLATES, NAMES, OBJECTS, CONTAINERS, PLACES, GROUPS, SYMBOLS]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


def _draw(seed: int, index: int, key: str, n: int) -> int:
    """A uniform integer in [0, n) keyed by (seed, item, field): the same on every platform."""
    digest = hashlib.blake2b(f"{seed}:{index}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n


def operands(op: str, seed: int, index: int, key: str = "") -> tuple[int, int, int]:
    """(n1, n2, answer) with n1 op n2 = answer."""
    if op in ("add", "sub"):
        a, b = 1 + _draw(seed, index, key + "a", 50), 1 + _draw(seed, index, key + "b", 50)
        return (a, b, a + b) if op == "add" else (max(a, b), min(a, b), max(a, b) - min(a, b))
    if op in ("mul", "div"):
        a, b = 1 + _draw(seed, index, key + "a", 20), 1 + _draw(seed, index, key + "b", 20)
        return (a, b, a * b) if op == "mul" else (a * b, b, a)
    raise UserError(f"unknown arithmetic operation {op!r}: choose from {OPERATIONS}")


def render(template: str, slots: dict) -> QA:
    """Fill a template's slots and cut it at the answer slot into prompt, answer and suffix."""
    if template.count(ANSWER) != 1:
        raise UserError(f"word-problem template {template!r} must contain exactly one {ANSWER} slot")
    prompt, _, suffix = template.partition(ANSWER)
    return QA(prompt.format(**slots), str(slots["answer"]), suffix.format(**slots))


def make_item(op: str, form: str, seed: int, index: int, templates: dict[str, tuple[str, ...]]) -> Item:
    key = f"{op}.{form}."  # independent draws for every operation and format
    n1, n2, answer = operands(op, seed, index, key)
    if form == "eq":
        return Item(op, form, QA(f"{n1} {SYMBOLS[op]} {n2} = ", str(answer)), answer, n1, n2)
    if form != "word":
        raise UserError(f"unknown arithmetic format {form!r}: choose from {FORMATS}")
    pick = lambda field, pool: pool[_draw(seed, index, key + field, len(pool))]  # noqa: E731
    name = pick("name", NAMES)
    others = [n for n in NAMES if n != name]
    slots = {
        "name": name,
        "name2": pick("name2", others),
        "n1": n1,
        "n2": n2,
        "answer": answer,
        "obj": pick("obj", OBJECTS),
        "container": pick("container", CONTAINERS),
        "place": pick("place", PLACES),
        "group": pick("group", GROUPS),
    }
    return Item(op, form, render(pick("template", templates[op]), slots), answer, n1, n2)


def training_items(ops: list[str], equations: int, word_problems: int, seed: int = TRAIN_SEED) -> Iterator[Item]:
    """Training problems of the given operations, interleaved: per index, every op's equation(s) and word
    problem in turn, so any prefix of the stream is balanced."""
    for index in range(max(equations, word_problems)):
        for op in ops:
            if index < equations:
                yield make_item(op, "eq", seed, index, TRAIN_TEMPLATES)
            if index < word_problems:
                yield make_item(op, "word", seed, index, TRAIN_TEMPLATES)


def evaluation_items(ops: list[str], n: int = EVAL_ITEMS, seed: int = EVAL_SEED) -> list[Item]:
    """n equations and n word problems (held-out templates) per operation."""
    return [make_item(op, form, seed, i, EVAL_TEMPLATES) for op in ops for form in FORMATS for i in range(n)]
