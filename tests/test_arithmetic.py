"""The arithmetic setting: the generator, answer-only masks, batched greedy decoding and the number parser."""

from __future__ import annotations

import hashlib
import re

import pytest
import torch

from undo.data import arithmetic
from undo.data.arithmetic import EVAL_TEMPLATES, OPERATIONS, QA, evaluation_items, render, training_items
from undo.data.blocks import TokenBlocks
from undo.data.packing import pack
from undo.data.prepare import encode_documents
from undo.data.sampling import to_batch
from undo.errors import UserError
from undo.evaluate.arithmetic import ArithmeticAccuracy
from undo.evaluate.generation import greedy_continuations, parse_number, prompt_ids
from undo.model import losses
from undo.settings import get_setting


def test_generator_is_deterministic_and_pinned():
    first = [item.qa for item in training_items(list(OPERATIONS), 50, 50)]
    assert first == [item.qa for item in training_items(list(OPERATIONS), 50, 50)]
    # Keyed hashes, not a PRNG stream: this digest holds on every platform and Python version.
    text = "\n".join(q.prompt + q.answer + q.suffix for q in first)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "9913dd29c665f021"
    assert len(evaluation_items(list(OPERATIONS))) == 800


@pytest.mark.parametrize("op", OPERATIONS)
def test_every_answer_is_right_in_both_formats(op):
    compute = {"add": int.__add__, "sub": int.__sub__, "mul": int.__mul__}
    compute["div"] = lambda a, b: a // b if a % b == 0 else None
    low, high = (1, 50) if op in ("add", "sub") else (1, 20)
    for items in (list(training_items([op], 300, 300)), evaluation_items([op])):
        for item in items:
            assert item.qa.answer == str(item.value) and item.value >= 0
            numbers = [int(n) for n in re.findall(r"\d+", item.qa.prompt)]
            assert len(numbers) == 2
            if item.format == "eq":
                a, b = numbers
                assert item.qa.prompt == f"{a} {arithmetic.SYMBOLS[op]} {b} = " and not item.qa.suffix
                assert compute[op](a, b) == item.value
            else:  # templates may name the two numbers in either order
                assert item.qa.suffix and item.value in (compute[op](*numbers), compute[op](*numbers[::-1]))
            operands = (item.value, min(numbers)) if op == "div" else numbers
            assert all(low <= n <= high for n in operands)


def test_held_out_templates_never_occur_in_training_text():
    docs = [q.prompt + q.answer + q.suffix for q in (i.qa for i in training_items(list(OPERATIONS), 2000, 2000))]
    for op, templates in EVAL_TEMPLATES.items():
        for template in templates:
            pattern = re.compile(re.sub(r"\\\{\w+\\\}", ".+?", re.escape(template)))
            assert not any(pattern.fullmatch(doc) for doc in docs), template
            assert template not in arithmetic.TRAIN_TEMPLATES[op]


def test_answer_only_loss_through_packing_and_batching_equals_a_hand_computation(tokenizer, micro_model):
    docs = [QA("3 * 4 = ", "12"), QA("Ada has 5 shells and finds 2 more. Now Ada has ", "7", " shells.")]
    encoded = encode_documents(tokenizer.backend_tokenizer, docs)
    assert [sum(mask) for _, mask in encoded] == [1, 1]  # "12" and "7": a number is one token
    block_len = max(len(ids) for ids, _ in encoded) + 1
    # one document per block: pad the first with a plain text so the second starts its own block
    filler = tokenizer("x" * 40, add_special_tokens=False)["input_ids"][: block_len - len(encoded[0][0]) - 2]
    ids, mask, _ = pack([encoded[0], filler, encoded[1], [5] * block_len], block_len, tokenizer.eos_token_id)
    batch = to_batch(TokenBlocks(ids, mask, {}), torch.arange(len(ids)).numpy())
    with torch.no_grad():
        logits = micro_model(input_ids=batch["input_ids"]).logits
        loss = losses.cross_entropy(logits, batch["input_ids"], batch["loss_mask"])
        by_hand, count = 0.0, 0
        for row in range(len(ids)):
            log_p = torch.log_softmax(logits[row].float(), -1)
            for t in range(1, block_len):
                if batch["loss_mask"][row, t]:
                    by_hand -= log_p[t - 1, batch["input_ids"][row, t]].item()
                    count += 1
    answer_tokens = 1 + 1 + 1  # the equation's end-of-text follows its answer and is a target too
    assert count >= answer_tokens
    assert loss.item() == pytest.approx(by_hand / count, rel=1e-5)


@pytest.mark.parametrize(
    "text, value",
    [("12.", 12.0), ("12 apples", 12.0), ("-3", -3.0), ("12<|endoftext|><pad>", 12.0), ("", None), ("  ", None),
     ("<|endoftext|>12", None), ("apples 12", None), ("1,2", None), ("nan", None), (" 7\n", 7.0)],
)  # fmt: skip
def test_number_parser_on_tricky_outputs(text, value):
    assert parse_number(text, "<|endoftext|>") == value


def test_batched_and_one_at_a_time_decoding_agree(tokenizer, micro_model):
    prompts = [prompt_ids(tokenizer, i.qa.prompt) for i in evaluation_items(["add"], 6)]
    with torch.no_grad():  # make end-of-text likely, so some rows finish early and are padded in the batch
        micro_model.get_input_embeddings().weight[tokenizer.eos_token_id] *= 3
    micro_model.eval()
    batched = greedy_continuations(micro_model, prompts, tokenizer, batch_size=len(prompts))
    single = [greedy_continuations(micro_model, [p], tokenizer)[0] for p in prompts]
    assert batched == single
    finished = [text for text in batched if text.endswith(tokenizer.eos_token)]
    assert 0 < len(finished) < len(batched) or any(len(t) < max(map(len, batched)) for t in batched)
    assert not any(tokenizer.pad_token in text for text in batched)


def test_evaluation_prompts_are_laid_out_as_training_packs_a_document(tokenizer, exp, monkeypatch):
    """Packing puts end-of-text before every document but the first, so a prompt is read after that separator;
    without it the embedded base model answered 0.26 / 0.04 of + / x equations instead of 0.53 / 0.97."""
    import undo.evaluate.arithmetic as evaluator

    item = evaluation_items(["mul"], 1)[0]
    other = evaluation_items(["add"], 1)[0]
    ids, _, _ = pack(encode_documents(tokenizer.backend_tokenizer, [other.qa, item.qa]), 1, tokenizer.eos_token_id)
    seen = []

    def answer(model, prompts, *args, **kwargs):
        seen.extend(prompts)
        return [""] * len(prompts)

    monkeypatch.setattr(evaluator, "greedy_continuations", answer)
    ArithmeticAccuracy(ops=("mul",)).evaluate(torch.nn.Linear(1, 1), exp, names=[item.metric])
    prompt = seen[0]
    stream = ids.reshape(-1).tolist()
    at = stream.index(tokenizer.eos_token_id)
    assert prompt[0] == tokenizer.eos_token_id and stream[at : at + len(prompt)] == prompt


def test_bad_names_are_one_clear_line():
    with pytest.raises(UserError, match="unknown metric 'mul_acc' for setting 'arithmetic'"):
        get_setting("arithmetic").metric("mul_acc")
    with pytest.raises(UserError, match="unknown arithmetic operation 'pow'"):
        ArithmeticAccuracy(ops=("add", "pow"))
    with pytest.raises(UserError, match=r"must contain exactly one \{answer\} slot"):
        render("{name} has {n1} apples.", {"name": "Ada", "n1": 3, "answer": 3})


def test_accuracy_counts_right_answers_per_operation_and_format(exp, monkeypatch):
    """A stub answers + equations right, + word problems right when the answer is even, and x never: the accuracy
    of each operation and format is exactly the share answered right, however answers end."""
    import undo.evaluate.arithmetic as evaluator

    tokenizer = exp.tokenizer
    items = evaluation_items(["add", "mul"])
    by_prompt = {tuple(prompt_ids(tokenizer, item.qa.prompt)): item for item in items}
    right = lambda item: item.op == "add" and (item.format == "eq" or item.value % 2 == 0)  # noqa: E731

    def answer(model, prompts, *args, **kwargs):
        texts = []
        for prompt in prompts:
            item = by_prompt[tuple(prompt)]
            value = item.value if right(item) else item.value + 1
            texts.append(f"{value:g}{tokenizer.eos_token}7" if item.format == "eq" else f" {value:g} apples.")
        return texts

    monkeypatch.setattr(evaluator, "greedy_continuations", answer)
    accuracy = ArithmeticAccuracy(ops=("add", "mul")).evaluate(torch.nn.Linear(1, 1), exp)
    add_word = [item for item in items if item.op == "add" and item.format == "word"]
    assert accuracy["add_eq"] == 1.0 and accuracy["mul_eq"] == accuracy["mul_word"] == 0.0
    assert accuracy["add_word"] == sum(map(right, add_word)) / len(add_word) and 0 < accuracy["add_word"] < 1
