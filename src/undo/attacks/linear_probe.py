"""A linear probe on frozen hidden states: does a model still encode the forgotten answers, whether or not it
says them? A multinomial logistic regression reads the last digit of each x/÷ problem's answer from the hidden
state at the end of its prompt, one probe per layer, trained on the problems of one part of the facts and scored
on the problems of the facts it never saw (a keyed split, undo.data.facts). A model that never learned
multiplication encodes its operands, from which the answer's last digit is no linear function; a model that still
computes the answer encodes it. No weight of the model changes.
"""

from __future__ import annotations

import torch

from undo.data import arithmetic
from undo.data.facts import FactSplit
from undo.errors import UserError
from undo.evaluate.arithmetic import ArithmeticAccuracy
from undo.evaluate.generation import prompt_ids
from undo.params import Count, Float, Schema

ATTACKER = "linear-probe"  # how its relearn runs name their attacker: the report keeps them apart
PROBE_SEED = 7  # the probe's problems: drawn apart from the evaluation problems (arithmetic.EVAL_SEED)


class LinearProbe(Schema):
    """`items` problems per forget operation and format; `weight_decay` the L2 penalty of the probe's weights."""

    items: Count = 300
    weight_decay: Float = 1e-3


def forget_operations(setting) -> list[str]:
    """The operations a setting forgets, from its arithmetic task that scores the forget metric."""
    for task in setting.tasks:
        if isinstance(task, ArithmeticAccuracy) and {m.name for m in task.metrics} & set(setting.forget.mean_of):
            return list(task.ops)
    raise UserError(
        f"a linear probe reads the answers of forgotten arithmetic problems; {setting.name} has none: use it with "
        "--setting arithmetic"
    )


def labelled_problems(ops: list[str], n: int) -> list[arithmetic.Item]:
    return arithmetic.evaluation_items(ops, n, seed=PROBE_SEED)


def last_digit(item: arithmetic.Item) -> int:
    return round(item.value) % 10


@torch.no_grad()
def hidden_states(model, tokenizer, items: list[arithmetic.Item]) -> torch.Tensor:
    """[layers + 1, items, hidden]: each layer's state (the embeddings first) at the last token of each prompt, in
    float32; one prompt at a time, so no padding shifts a position."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    states = []
    for item in items:
        ids = torch.tensor([prompt_ids(tokenizer, item.qa.prompt)], device=device)
        out = model(input_ids=ids, output_hidden_states=True, logits_to_keep=1)
        states.append(torch.stack([h[0, -1].float() for h in out.hidden_states]))
    model.train(was_training)
    return torch.stack(states, dim=1).cpu()


def fit_and_score(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, decay: float
) -> float:
    """Accuracy on `test` of a multinomial logistic regression fitted to `train` (features standardised by the
    training set's statistics; L-BFGS, deterministic)."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    train, test = (train - mean) / std, (test - mean) / std
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    weight = torch.zeros(train.size(1), classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = torch.nn.functional.cross_entropy(train @ weight + bias, train_labels) + decay * weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    with torch.no_grad():
        return float(((test @ weight + bias).argmax(1) == test_labels).float().mean())


def probe(model, tokenizer, ops: list[str], split: FactSplit, config: LinearProbe) -> dict[str, float]:
    """{"probe_layer<i>": held-out accuracy of layer i's probe, "probe_majority": the accuracy of always answering
    the shown part's most common digit}."""
    items = labelled_problems(ops, config.items)
    parts = {part: [i for i in items if split.part(i.fact) == part] for part in ("shown", "held_out")}
    labels = {part: torch.tensor([last_digit(i) for i in chosen]) for part, chosen in parts.items()}
    states = {part: hidden_states(model, tokenizer, chosen) for part, chosen in parts.items()}
    scores = {
        f"probe_layer{layer}": fit_and_score(
            states["shown"][layer], labels["shown"], states["held_out"][layer], labels["held_out"], config.weight_decay
        )
        for layer in range(states["shown"].size(0))
    }
    majority = torch.bincount(labels["shown"], minlength=10).argmax()
    return {**scores, "probe_majority": float((labels["held_out"] == majority).float().mean())}
