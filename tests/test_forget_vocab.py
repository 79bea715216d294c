"""The forget vocabulary from data, the views of a teacher it feeds, and the embedding-reset control."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from undo.data.blocks import TokenBlocks
from undo.model import losses
from undo.stages.forget_vocab import reset_rows, select, token_counts


def test_the_forget_vocabulary_is_what_the_forget_domain_uses_far_more_often():
    """Two synthetic domains over 8 tokens: 0-1 shared, 2-4 forget-only, 5-7 retain-only; token 4 is rare in the
    forget text (below the minimum count), token 1 only 3x more frequent there."""
    forget = np.array([[0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4]] * 2)
    retain = np.array([[0, 0, 1, 5, 6, 7, 5, 6, 7, 5, 6, 7, 5, 6, 7, 0]] * 2)
    masked = np.ones_like(retain, dtype=bool)
    masked[:, 0] = False  # a masked position (a question token) is not counted
    f, r = token_counts(TokenBlocks(forget, None, {}), 8), token_counts(TokenBlocks(retain, masked, {}), 8)
    assert f.tolist() == [2, 6, 10, 12, 2, 0, 0, 0] and r.tolist() == [4, 2, 0, 0, 0, 8, 8, 8]
    # add-one smoothed frequency ratios: token 1 2.2, token 2 10.4, token 3 12.4, token 4 2.9
    assert select(f, r, ratio=10.0, min_count=5).nonzero()[0].tolist() == [2, 3]
    assert select(f, r, ratio=2.0, min_count=5).nonzero()[0].tolist() == [1, 2, 3]
    assert select(f, r, ratio=2.0, min_count=1).nonzero()[0].tolist() == [1, 2, 3, 4]


def test_the_masked_teacher_and_the_top_k_tail_by_hand():
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    masked = losses.MaskTokens(torch.tensor([False, False, False, True]))(logits)
    assert masked[0].tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6, 0.0])
    tail = losses.TopKTail(2)(logits)  # p = .1 .2 .3 .4: the top two kept, the other .3 shared by two tokens
    assert tail[0].tolist() == pytest.approx([0.15, 0.15, 0.3, 0.4])
    student = torch.log(torch.tensor([[0.25, 0.25, 0.25, 0.25]]))
    mask = torch.tensor([[True, True]])  # position 0 predicts token 1: one counted position
    pair = (torch.cat([logits, logits])[None], torch.cat([student, student])[None])
    for view, q in ((losses.MaskTokens(torch.tensor([False, False, False, True])), [1 / 6, 2 / 6, 3 / 6]),
                    (losses.TopKTail(2), [0.15, 0.15, 0.3, 0.4])):  # fmt: skip
        by_hand = sum(x * (math.log(x) - math.log(0.25)) for x in q)
        assert losses.forward_kl(*pair, mask, view).item() == pytest.approx(by_hand, abs=1e-6)


@pytest.mark.parametrize("view", [losses.MaskTokens(torch.arange(301) % 7 == 0), losses.TopKTail(16)])
def test_a_view_gives_the_same_kl_and_gradients_in_chunks(view):
    generator = torch.Generator().manual_seed(5)
    hidden_s = torch.randn(2, 9, 16, generator=generator, requires_grad=True)
    hidden_t = torch.randn(2, 9, 24, generator=generator)
    head_s, head_t = torch.randn(301, 16, generator=generator), torch.randn(301, 24, generator=generator)
    mask = torch.rand(2, 9, generator=generator) > 0.3
    plain = losses.forward_kl(hidden_t @ head_t.t(), hidden_s @ head_s.t(), mask, view)
    (grad_plain,) = torch.autograd.grad(plain, [hidden_s])
    for chunk_rows in (None, 4):
        chunked = losses.forward_kl(
            losses.Head(hidden_t, head_t, None, chunk_rows), losses.Head(hidden_s, head_s, None, chunk_rows), mask, view
        )
        (grad,) = torch.autograd.grad(chunked, [hidden_s])
        assert chunked.item() == pytest.approx(plain.item(), abs=1e-5) and torch.allclose(grad, grad_plain, atol=1e-6)


def test_resetting_rows_redraws_exactly_those_embedding_rows_seeded(micro_model):
    tokens = torch.zeros(micro_model.config.vocab_size, dtype=torch.bool)
    tokens[[3, 7, 11]] = True
    before = micro_model.get_input_embeddings().weight.detach().clone()
    reset_rows(micro_model, tokens, seed=1)
    after = micro_model.get_input_embeddings().weight.detach()
    changed = (after != before).any(-1)
    assert changed.nonzero().squeeze(1).tolist() == [3, 7, 11]
    assert micro_model.get_output_embeddings().weight.data_ptr() == micro_model.get_input_embeddings().weight.data_ptr()
    assert after[tokens].std().item() == pytest.approx(micro_model.config.initializer_range, rel=0.5)
    again = before.clone()
    micro_model.get_input_embeddings().weight.data.copy_(again)
    reset_rows(micro_model, tokens, seed=1)
    assert torch.equal(micro_model.get_input_embeddings().weight.detach(), after)


def test_distillation_variant_options_are_checked_before_anything_runs():
    from undo.params import InvalidParams
    from undo.stages.distill import Params

    train = {"mix": {"en": 1.0}, "optim": {"lr": 1e-3, "steps": 2}, "batch_size": 2, "teacher": "unlearn/x"}
    Params.parse({"role": "reset", "teacher": "unlearn/x", "batch_size": 2})
    Params.parse({**train, "role": "distilled", "teacher_view": "top-k", "top_k": 64})
    bad = [
        ({"role": "reset", **train}, "does not train"),
        ({"role": "distilled", "teacher": "unlearn/x", "batch_size": 2}, "needs mix and optim"),
        ({**train, "role": "distilled", "teacher_view": "top-k"}, "needs top_k"),
        ({**train, "role": "distilled", "top_k": 8}, "needs top_k"),
        ({**train, "role": "distilled", "teacher_view": "mask-korean"}, "teacher_view"),
    ]
    for params, problem in bad:
        with pytest.raises(InvalidParams, match=problem):
            Params.parse(params)
