"""The shipped multiple-choice quiz corpus and the script that builds it (run here on synthetic data, offline)."""

from __future__ import annotations

import importlib.util
import json
import lzma
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from undo.data.quiz import _quiz_path, categories, load_quiz

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "extract_quiz.py"


@pytest.fixture(scope="module")
def extract_quiz():
    spec = importlib.util.spec_from_file_location("extract_quiz", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["extract_quiz"] = module  # dataclasses resolve annotations through sys.modules
    sys.path.insert(0, str(SCRIPT.parent))  # its helper module beside it, as when run as a script
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("extract_quiz", None)
        sys.path.remove(str(SCRIPT.parent))


def test_every_item_has_four_distinct_choices_and_a_label_in_range():
    for item in load_quiz():
        assert len(item.choices) == 4, item
        assert len({c.casefold() for c in item.choices}) == 4, item
        assert 0 <= item.label < 4 and item.answer == item.choices[item.label]
        assert item.question and all(c.strip() == c and c for c in item.choices), item


def test_size_categories_and_balanced_answer_positions():
    items = load_quiz()
    assert 400 <= len(items) <= 600
    assert len(categories()) == 8 and categories() == sorted({it.category for it in items})
    positions = Counter(it.label for it in items)
    for k in range(4):
        assert 0.15 <= positions[k] / len(items) <= 0.35, positions
    assert max(Counter(it.category for it in items).values()) <= 80


def test_no_right_answer_is_offered_as_a_wrong_one_for_the_same_question():
    answers = defaultdict(set)
    for it in load_quiz():
        answers[it.question.casefold()].add(it.answer.casefold())
    for it in load_quiz():
        distractors = {c.casefold() for i, c in enumerate(it.choices) if i != it.label}
        assert not distractors & answers[it.question.casefold()], it
    questions = [(it.category, it.question) for it in load_quiz()]
    assert questions == sorted(questions) and len(set(questions)) == len(questions)


def test_shipped_file_is_in_the_scripts_canonical_encoding(extract_quiz):
    raw = lzma.decompress(_quiz_path().read_bytes()).decode("utf-8")
    rows = [json.loads(line) for line in raw.splitlines()]
    assert [list(r) for r in rows] == [["category", "choices", "label", "question"]] * len(rows)
    assert lzma.decompress(extract_quiz.encode_items(rows)).decode("utf-8") == raw
    assert any("é" in c for r in rows for c in r["choices"])  # accents kept as UTF-8, not escaped
    assert {r["category"] for r in rows} == {s.category for s in extract_quiz.FILES}


SYNTHETIC = {
    "caps": "\n".join(
        [
            "France:Paris",
            "Italy:Rom[e|a]",
            "Spain:Madrid",
            "Portugal:Lisbo[n|a]",
            "Peru:Lima",
            "{The }Gambia:Banjul",
            "Cal{if{ornia}}|CA:Sacramento|Sac",
            "Cameroon:Yaound['\be|e\b'|e]",
            "Norway:\\",
            "Oslo",
            "France:Lyon",  # repeated question: dropped, and Lyon is then an accepted answer for France
            "Empty:",
            ":Nowhere",
            "Longland:" + "X" * 61,
            "Bolivia:La Paz|Sucre",
            "Chile:Sucre",  # an accepted answer for Bolivia: never offered as a wrong one there
            "Esc\\:ape:Colon",
        ]
    )
    + "\n",
    "syms": "H:Hydrogen\nHe:Helium\nLi:Lithium\nBe:Beryllium\nB:Boron\n",
}
EXPECTED = {
    "What is the capital of France?": "Paris",
    "What is the capital of Italy?": "Rome",
    "What is the capital of Spain?": "Madrid",
    "What is the capital of Portugal?": "Lisbon",
    "What is the capital of Peru?": "Lima",
    "What is the capital of The Gambia?": "Banjul",
    "What is the capital of California?": "Sacramento",
    "What is the capital of Cameroon?": "Yaoundé",
    "What is the capital of Norway?": "Oslo",
    "What is the capital of Bolivia?": "La Paz",
    "What is the capital of Chile?": "Sucre",
    "What is the capital of Esc:ape?": "Colon",
    "Symbol of Hydrogen?": "H",
    "Symbol of Helium?": "He",
    "Symbol of Lithium?": "Li",
    "Symbol of Beryllium?": "Be",
    "Symbol of Boron?": "B",
}


def test_build_follows_the_rules_on_a_synthetic_quiz_directory(extract_quiz, tmp_path):
    for name, text in SYNTHETIC.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    specs = (
        extract_quiz.Spec("caps", 0, 1, "caps", "What is the capital of {x}?"),
        extract_quiz.Spec("syms", 1, 0, "syms", "Symbol of {x}?"),
    )
    items = extract_quiz.build_items(tmp_path, specs)
    assert items == extract_quiz.build_items(tmp_path, specs)
    assert extract_quiz.encode_items(items) == extract_quiz.encode_items(items)

    assert {it["question"]: it["choices"][it["label"]] for it in items} == EXPECTED
    assert [(it["category"], it["question"]) for it in items] == sorted(
        (it["category"], it["question"]) for it in items
    )
    file_answers = {"caps": {*EXPECTED.values(), "Lyon"}}  # the dropped repeat is still a line of the file
    for it in items:
        assert len({c.casefold() for c in it["choices"]}) == 4
        if it["category"] == "caps":
            assert set(it["choices"]) <= file_answers["caps"] - {"H", "He", "Li", "Be", "B"}, it
        else:
            assert set(it["choices"]) <= {"H", "He", "Li", "Be", "B"}, it  # distractors from the same file only


def test_accepted_answers_of_a_question_are_never_distractors(extract_quiz, tmp_path):
    # A accepts 1, 2, 7, 8 and (repeated) 6: of the file's answers only 3, 4 and 5 may be its distractors
    (tmp_path / "tiny").write_text("A:1|2|7|8\nB:2\nC:3\nD:4\nE:5\nF:7\nG:8\nA:6\n", encoding="utf-8")
    items = extract_quiz.build_items(tmp_path, (extract_quiz.Spec("tiny", 0, 1, "tiny", "{x}?"),))
    by_question = {it["question"]: it for it in items}
    assert sorted(by_question) == ["A?", "B?", "C?", "D?", "E?", "F?", "G?"]
    assert sorted(by_question["A?"]["choices"]) == ["1", "3", "4", "5"]
    assert by_question["A?"]["choices"][by_question["A?"]["label"]] == "1"


def test_build_caps_each_file_by_hash_order(extract_quiz, tmp_path, monkeypatch):
    for name, text in SYNTHETIC.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    spec = extract_quiz.Spec("caps", 0, 1, "caps", "{x}?")
    full = extract_quiz.build_items(tmp_path, (spec,))
    monkeypatch.setattr(extract_quiz, "MAX_PER_FILE", 5)
    capped = extract_quiz.build_items(tmp_path, (spec,))
    assert len(capped) == 5
    assert all(it in full for it in capped)  # same items, same choices: keys do not depend on the cap
