"""Data: packing, tokenizer, the block cache, corpus loaders and their error messages, batch mixing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from undo.data.corpora import iter_documents
from undo.data.packing import pack
from undo.data.prepare import prepared_blocks
from undo.data.sampling import Mixture
from undo.errors import UserError


def test_packing_keeps_every_token_in_order_with_separators_and_masks():
    docs = [([5, 6, 7], [False, True, True]), [8, 9], ([10] * 6, [True] * 6)]
    ids, mask, packer = pack(docs, block_len=4, eot_id=1)
    stream = [5, 6, 7, 1, 8, 9, 1, 10, 10, 10, 10, 10, 10, 1]
    masks = [False, True, True, True, True, True, True] + [True] * 7
    assert ids.shape == (3, 4)
    assert ids.ravel().tolist() == stream[:12]
    assert mask.ravel().tolist() == masks[:12]
    assert packer.n_tokens == len(stream)
    assert packer.remainder == 2  # only the final partial block is left out


def test_tokenizer_round_trips_korean_and_english(tokenizer):
    for text in ["서식 메뉴에서 표를 선택합니다.", "Choose Format - Table.\nPress Enter."]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, len(tokenizer)) == (0, 1, 2048 + 391)


def test_numbers_tokenize_the_same_wherever_they_stand(tokenizer):
    pieces = lambda text: [tokenizer.decode([i]) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]  # noqa: E731
    assert pieces("12 * 7 = 84") == ["12", " ", "*", " ", "7", " =", " ", "84"]
    assert "400" in pieces("Ada has 400 shells.") and pieces("x400y")[1] == "400"
    assert pieces("9 + 3 = ") == pieces("9 + 3 = 12")[:-1]  # a prompt is a token prefix of its answered text
    assert pieces("2024") == ["202", "4"]  # beyond 400: leftmost-longest number tokens


def test_second_prepare_hits_the_cache(tmp_path, monkeypatch):
    import undo.data.prepare

    source = {"kind": "embedded", "name": "libreoffice_ko"}
    first = prepared_blocks(source, "embedded", 128, "validation", tmp_path)
    monkeypatch.setattr(undo.data.prepare, "_build", lambda *args: pytest.fail("the cache entry was rebuilt"))
    second = prepared_blocks(source, "embedded", 128, "validation", tmp_path)
    assert np.array_equal(first.ids, second.ids)
    assert len(first) > 100 and first.mask is None
    assert first.meta["n_tokens_unused"] < 128


def test_embedded_splits_are_disjoint_and_nonempty():
    source = {"kind": "embedded", "name": "libreoffice_ko"}
    train, validation = set(iter_documents(source, "train")), set(iter_documents(source, "validation"))
    assert train and validation and not train & validation


def test_hub_loader_reads_local_jsonl_in_fineweb_format(tmp_path):
    path = tmp_path / "fineweb.jsonl"
    rows = [{"text": f"document number {i}", "id": f"<urn:{i}>", "url": "http://x", "score": 3.1} for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = {"kind": "hub", "path": "json", "data_files": [str(path)], "validation_docs": 2}
    assert list(iter_documents(source, "validation")) == ["document number 0", "document number 1"]
    assert list(iter_documents(source, "train")) == [f"document number {i}" for i in range(2, 5)]
    blocks = prepared_blocks(source, "embedded", 4, "train", tmp_path / "cache")
    assert len(blocks) >= 2


def test_unreadable_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": oops\n')
    source = {"kind": "hub", "path": "json", "data_files": [str(path)]}
    with pytest.raises(UserError, match=r"broken.jsonl, line 3: not valid JSON"):
        list(iter_documents(source, "train"))


def test_missing_corpus_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        list(iter_documents({"kind": "hub", "path": "json", "data_files": [str(tmp_path / "nope.jsonl")]}, "train"))
    with pytest.raises(UserError, match=r"embedded corpus file .* is missing"):
        list(iter_documents({"kind": "embedded", "name": "no_such_corpus"}, "train"))


def test_empty_dataset_after_filtering_is_a_clear_error(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text('{"text": "hi"}\n')
    source = {"kind": "hub", "path": "json", "data_files": [str(path)], "validation_docs": 1}
    with pytest.raises(UserError, match="has no train data after filtering"):
        prepared_blocks(source, "embedded", 128, "train", tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written left behind


def test_mixture_draws_rows_in_proportion_and_counts_epochs(exp):
    domains = {d: exp.blocks(d, "validation") for d in ("en", "ko")}
    mix = Mixture(domains, {"en": 0.75, "ko": 0.25}, batch_size=8, seed=0)
    batches = [next(mix) for _ in range(50)]
    assert batches[0]["input_ids"].shape == (8, 128)
    drawn = mix.samplers["en"].drawn / (mix.samplers["en"].drawn + mix.samplers["ko"].drawn)
    assert 0.65 < drawn < 0.85
    assert mix.epochs()["ko"] == pytest.approx(mix.samplers["ko"].drawn / len(domains["ko"]), abs=1e-3)


@pytest.mark.parametrize("offline", [True, False])
def test_hub_tokenizer_or_dataset_out_of_reach_is_one_line(monkeypatch, offline):
    """Offline without a cache, or a hub that does not answer (checked in seconds, not minutes of retries)."""
    import undo.io.hub
    from undo.data.tokenizer import load_tokenizer

    undo.io.hub._hub_problem.cache_clear()
    if not offline:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    try:
        for load in (
            lambda: load_tokenizer("google/gemma-2-2b"),
            lambda: next(iter_documents({"kind": "hub", "path": "HuggingFaceFW/fineweb-edu", "name": "x"}, "train")),
        ):
            with pytest.raises(UserError) as err:
                load()
            text = str(err.value)
            assert "\n" not in text and "cannot fetch " in text and "HF_HUB_OFFLINE=1" in text
            assert ("127.0.0.1:9 does not answer" in text) != offline
    finally:
        undo.io.hub._hub_problem.cache_clear()
