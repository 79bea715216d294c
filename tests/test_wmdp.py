"""The WMDP setting: multiple-choice scoring through lm-evaluation-harness, question-answer data, a pretrained
start checkpoint, the paper-scale loaders on local files, and reports without an oracle."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from undo.data.corpora import iter_documents, question_answer
from undo.data.prepare import encode_documents
from undo.errors import UserError
from undo.evaluate.multiple_choice import MultipleChoice
from undo.settings import get_setting

RIGHT = " text"
WRONG = (" table", " cell", " page")


class FixedLogits(PreTrainedModel):
    """A causal LM whose next-token logits are the same everywhere: `bias` (zeros: a uniform model)."""

    config_class = PretrainedConfig

    def __init__(self, config, bias: torch.Tensor):
        super().__init__(config)
        self.bias = torch.nn.Parameter(bias)

    def forward(self, input_ids, attention_mask=None, **kwargs):
        return CausalLMOutput(logits=self.bias.expand(*input_ids.shape, -1))


class Rows(MultipleChoice):
    """A local task over fixed rows: the right answer is always " text", at every position equally often."""

    def rows(self, held_out=None):
        return [
            {"question": f"Question {i}?", "choices": [*WRONG[: i % 4], RIGHT, *WRONG[i % 4 :]], "label": i % 4}
            for i in range(40)
        ]


def score(model, tokenizer, tmp_path, task=None) -> float:
    exp = SimpleNamespace(tokenizer=tokenizer, out=tmp_path, scale=SimpleNamespace(eval_batch_size=16))
    mc = Rows("acc", quiz=("any",)) if task is None else MultipleChoice("acc", task=task)
    return mc.evaluate(model, exp)["acc"]


def fixed_model(tokenizer, favour: str | None, kind: type[FixedLogits] = FixedLogits) -> FixedLogits:
    config = PretrainedConfig(vocab_size=len(tokenizer), max_position_embeddings=256)
    bias = torch.zeros(len(tokenizer))
    if favour is not None:
        (token,) = tokenizer(favour, add_special_tokens=False)["input_ids"]
        bias[token] = 10.0
    return kind(config, bias)


def test_lm_eval_scores_a_model_preferring_the_right_answer_at_100_percent_and_a_uniform_one_at_chance(
    tokenizer, tmp_path
):
    for choice in (RIGHT, *WRONG):  # each choice is one token, so a uniform model ties and picks the first
        assert len(tokenizer(choice, add_special_tokens=False)["input_ids"]) == 1
    assert score(fixed_model(tokenizer, RIGHT), tokenizer, tmp_path) == 1.0
    assert score(fixed_model(tokenizer, None), tokenizer, tmp_path) == 0.25
    assert score(fixed_model(tokenizer, WRONG[0]), tokenizer, tmp_path) == 0.0


class Recording(FixedLogits):
    """A uniform model that keeps every row of input ids lm-eval scores."""

    def __init__(self, config, bias: torch.Tensor):
        super().__init__(config, bias)
        self.rows: list[list[int]] = []

    def forward(self, input_ids, attention_mask=None, **kwargs):
        self.rows += input_ids.tolist()
        return super().forward(input_ids)


def test_lm_eval_scores_each_choice_after_the_end_of_text_token_as_training_packed_the_question(tokenizer, tmp_path):
    model = fixed_model(tokenizer, None, kind=Recording)
    score(model, tokenizer, tmp_path)
    ((ids, _),) = encode_documents(tokenizer.backend_tokenizer, [question_answer("Question 3?", RIGHT.strip())])
    packed = [tokenizer.eos_token_id, *ids]  # a training document follows the end-of-text token of the one before
    # lm-eval feeds context + choice without its last token (whose logits it does not need)
    assert packed[:-1] in [row[: len(packed) - 1] for row in model.rows]
    assert all(row[0] == tokenizer.eos_token_id for row in model.rows)


def test_an_unknown_lm_eval_task_is_one_line(tokenizer, tmp_path):
    mc = MultipleChoice("acc", task="no_such_task")
    with pytest.raises(UserError, match="has no task 'no_such_task'"):
        mc.evaluate(fixed_model(tokenizer, None), SimpleNamespace(tokenizer=tokenizer, out=tmp_path))


def test_quiz_documents_train_the_answer_only_in_the_papers_qa_format(tokenizer):
    source = {"kind": "quiz", "categories": ["element_symbols"], "passes": 2}
    docs = list(iter_documents(source, "train"))
    assert len(docs) == 2 * len(list(iter_documents(source, "validation")))
    assert docs[0] != docs[len(docs) // 2]  # each pass in its own order
    doc = docs[0]
    assert doc.prompt.endswith("?\nAnswer:") and doc.answer.startswith(" ")
    ((ids, mask),) = encode_documents(tokenizer.backend_tokenizer, [doc])
    answer = tokenizer(doc.answer, add_special_tokens=False)["input_ids"]
    assert [i for i, m in zip(ids, mask, strict=True) if m] == answer
    # lm-eval scores the same split: context "...Answer:" and the choice after a space
    whole = tokenizer(doc.prompt + doc.answer, add_special_tokens=False)["input_ids"]
    assert whole == ids


def test_question_answer_files_load_and_a_missing_field_names_file_and_line(tmp_path):
    good = tmp_path / "qa.jsonl"
    good.write_text("".join(json.dumps({"question": f"Q{i}?", "answer": f"A{i}"}) + "\n" for i in range(5)))
    source = {"kind": "qa", "data_files": [str(good)], "validation_docs": 2}
    assert [d.answer for d in iter_documents(source, "validation")] == [" A0", " A1"]
    assert [d.prompt for d in iter_documents(source, "train")] == ["Q2?\nAnswer:", "Q3?\nAnswer:", "Q4?\nAnswer:"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "Q?", "answer": "A"}) + "\n" + json.dumps({"question": "Q2?"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl, line 2: no string 'answer' field"):
        list(iter_documents({"kind": "qa", "data_files": [str(bad)]}, "train"))
    with pytest.raises(UserError, match=r"does not exist: write it with scripts/make_qa\.py"):
        list(iter_documents({"kind": "qa", "data_files": [str(tmp_path / "none.jsonl")]}, "train"))


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"text": "A cyber corpus document."}, "text"),  # cais/wmdp-corpora: cyber forget/retain, bio retain
        ({"title": "T", "abstract": "Ab", "text": "A bio forget paper.", "doi": "10/x"}, "text"),  # bio forget
        ({"text": " = Valkyria Chronicles = \n"}, "text"),  # WikiText-2
        ({"uuid": "u", "instruction": "Do it", "response": "Done.", "task_category": "Planning"}, "response"),  # Magpie
    ],
)
def test_paper_scale_loaders_read_local_files_of_each_format(tmp_path, row, field):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    source = {"kind": "hub", "path": "json", "data_files": [str(path)], "validation_docs": 1, "text_field": field}
    assert list(iter_documents(source, "validation")) == [row[field]]
    assert list(iter_documents(source, "train")) == [row[field]]


@pytest.mark.parametrize("domain", ["bio", "cyber"])
def test_wmdp_paper_grids_are_one_domain_each_from_the_papers_checkpoint(domain):
    import run_distill
    import run_pretrain
    import run_relearn
    import run_unlearn
    from undo.experiment import Experiment
    from undo.runner.jobs import validate

    exp = Experiment(f"wmdp-{domain}", "paper", "/nonexistent")
    grids = [m.GRIDS[(f"wmdp-{domain}", "paper")] for m in (run_pretrain, run_unlearn, run_distill, run_relearn)]
    validate(exp, [job for jobs in grids for job in jobs])
    (base,) = grids[0]
    assert base.params["start"] == "google/gemma-2-2b"
    assert {t.task for t in exp.setting.tasks} == {f"wmdp_{domain}", "mmlu"}  # scored on its own domain only
    assert exp.setting.forget.mean_of == (f"wmdp_{domain}",)
    qa = exp.scale.corpora["forget"]["data_files"]
    assert qa == [f"data/wmdp/{domain}_forget_qa.jsonl"]
    assert domain in exp.scale.corpora["forget-corpus"].get("name", exp.scale.corpora["forget-corpus"]["path"])
    assert {job.params["teacher"] for job in grids[2]} == {"unlearn/selected:maxent", "unlearn/selected:rmu"}
    # the attack trains on the raw corpora: the family the report reads, not off-target text
    from undo.stages.relearn import Params, family

    attack = Params.parse(grids[3][0].params, exp.domains)
    assert family(exp, attack) == exp.scale.attack_family == "finetune"


def test_the_joint_wmdp_setting_has_no_paper_scale():
    with pytest.raises(UserError, match=r"unknown scale 'paper' for setting 'wmdp'"):
        get_setting("wmdp").scale("paper")


def test_the_gated_bio_forget_corpus_is_one_line(monkeypatch):
    import datasets

    def gated(*args, **kwargs):
        raise OSError("Dataset 'cais/wmdp-bio-forget-corpus' is a gated dataset on the Hub. Visit huggingface.co")

    monkeypatch.setattr(datasets, "load_dataset", gated)
    source = get_setting("wmdp-bio").scale("paper").corpora["forget-corpus"]
    with pytest.raises(UserError, match=r"cais/wmdp-bio-forget-corpus.*gated and needs a token") as err:
        next(iter_documents(source, "train"))
    assert "\n" not in str(err.value)


def test_a_start_checkpoint_that_is_missing_or_gated_is_one_line(monkeypatch, tmp_path):
    from transformers import AutoModelForCausalLM

    from undo.model.models import load_start

    with pytest.raises(UserError, match=r"start checkpoint .*nowhere does not exist"):
        load_start(str(tmp_path / "nowhere"))

    def gated(*args, **kwargs):
        raise OSError("You are trying to access a gated repo. Make sure to have access to it at huggingface.co")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", gated)
    with pytest.raises(UserError, match=r"google/gemma-2-2b .*gated and needs a token.*tokens/hf_token\.txt"):
        load_start("google/gemma-2-2b")


def test_a_local_start_checkpoint_is_evaluated_and_unlearned_without_pretraining(tmp_path, tokenizer):
    """The paper's WMDP path on a local folder: the base run records the checkpoint, later stages load it."""
    from undo.experiment import Experiment
    from undo.model.models import build_model, save_model
    from undo.runner.jobs import Job
    from undo.runner.launch import launch

    start = tmp_path / "pretrained"
    save_model(build_model("micro", tokenizer, seed=3), tokenizer, start)
    exp = Experiment("wmdp", "smoke", tmp_path / "out")
    common = {"batch_size": 4, "seed": 0}
    jobs = [
        Job("pretrain", "base", {"role": "base", "start": str(start), **common}),
        Job(
            "unlearn",
            "maxent",
            {"method": "maxent", "args": {"retain": "kl"}, "optim": {"lr": 1e-3, "steps": 2}, **common},
        ),
    ]
    assert launch(exp, jobs[:1]) == 0 and launch(exp, jobs[1:]) == 0
    base = exp.finished("pretrain/base")
    assert (base / "start.json").is_file() and not (base / "model").exists()
    assert set(exp.summary("pretrain/base")["metrics"]) >= {"forget_acc", "retain_acc", "en_ce"}
    loaded = exp.load_model("pretrain/base")
    assert torch.equal(
        loaded.model.embed_tokens.weight, build_model("micro", tokenizer, seed=3).model.embed_tokens.weight
    )
    assert exp.summary("unlearn/maxent")["base"] == "pretrain/base"
