"""Every strategy through the real verifier with the replay generator, and each one's own behaviour."""

import pytest

from search import prompts
from search.fixtures import write_fixture_replay
from search.generators import ReplayGenerator, append_replay
from search.strategies import BestOfN, FragmentSearch, Refine
from verify.fixtures import fixture_candidate, fixture_task

STRATEGIES = [BestOfN(n=2), Refine(rounds=2), FragmentSearch(max_len=3)]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_contract_finds_the_fixture_candidate(strategy, replay_all, judge):
    task = fixture_task("softmax")
    result = strategy.search(task, ReplayGenerator(replay_all), judge)
    assert result.best is not None and result.verdict.accepted, result.summary()
    assert result.best.text == fixture_candidate("softmax")
    assert result.cost_unit == "launches" and "no timing" in result.cost_model
    assert result.to_dict()["best"]["verdict"]["accepted"]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_contract_respects_the_sample_budget(strategy, replay_all, judge):
    strategy = type(strategy)(budget={"samples": 0})
    result = strategy.search(fixture_task("softmax"), ReplayGenerator(replay_all), judge)
    assert result.best is None and result.samples == 0


def test_fragment_search_prefers_one_fused_kernel(replay_all, judge):
    # relu_scale_bias: fragment kernels for [0, 2) and [2, 3), and the whole program as one kernel
    result = FragmentSearch().search(fixture_task("relu_scale_bias"), ReplayGenerator(replay_all), judge)
    spans = sorted(a.span for a in result.attempts if a.kind == "fragment")
    assert spans == [(0, 2), (2, 3)]
    assert result.best.kind == "whole" and result.best.cost == 1.0, result.summary()


def test_fragment_search_leaves_an_op_in_pytorch(tmp_path, judge):
    replay = tmp_path / "frag.jsonl"
    write_fixture_replay(replay, whole=False, names=["swish_residual"])  # a kernel for [0, 2) only
    result = FragmentSearch().search(fixture_task("swish_residual"), ReplayGenerator(replay), judge)
    assert result.best.kind == "assembly" and result.best.assembly == "[0:2] kernel | [2:3] torch"
    assert result.verdict.accepted and result.verdict.kernel_launches == 1, result.summary()


def test_fragment_search_falls_back_to_the_whole_program(replay_all, judge):
    result = FragmentSearch().search(fixture_task("rmsnorm"), ReplayGenerator(replay_all), judge)
    assert result.best.kind == "whole" and result.verdict.accepted
    assert any("rsqrt" in note for note in result.notes)


def test_refine_feeds_the_verdict_back(tmp_path, judge):
    task = fixture_task("softmax")
    bad = "I think a softmax kernel would look like this, but no code today."
    first = prompts.task_messages(task)
    verdict = judge.strict.verify(task, bad)
    replay = tmp_path / "refine.jsonl"
    append_replay(replay, first, [bad])
    append_replay(
        replay, prompts.feedback_messages(task, first, bad, verdict), [fixture_candidate("softmax")]
    )
    result = Refine(rounds=3).search(task, ReplayGenerator(replay), judge)
    assert [a.round for a in result.attempts] == [0, 1]
    assert not result.attempts[0].verdict.accepted and result.best.round == 1
    assert "no_code_block" in prompts.feedback_messages(task, first, bad, verdict)[-1]["content"]


def test_best_of_n_keeps_the_cheapest(tmp_path, judge):
    task = fixture_task("relu_scale_bias")
    from search.assembly import Segment
    from search.emit import Piece, assemble_program
    from search.fixtures import fragment_kernels
    from search.frontend import trace

    program = trace(task)
    k = {(s, e): t for n, s, e, t in fragment_kernels() if n == "relu_scale_bias"}
    two_launches = assemble_program(
        program,
        [
            Piece(Segment(0, 2, "kernel", 1), program.fragment(0, 2), k[(0, 2)]),
            Piece(Segment(2, 3, "kernel", 1), program.fragment(2, 3), k[(2, 3)]),
        ],
    )
    replay = tmp_path / "bon.jsonl"
    append_replay(replay, prompts.task_messages(task), [two_launches, fixture_candidate("relu_scale_bias")])
    result = BestOfN(n=2).search(task, ReplayGenerator(replay), judge)
    assert [a.cost for a in result.attempts] == [2.0, 1.0] and result.best.cost == 1.0
