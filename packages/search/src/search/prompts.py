"""Prompts for the generators, built on packages/synth's template (the one its datasets are made with),
so a model trained on synth's data sees the same prompt at test time.

    task_messages(task)                                   # the chat messages asking for a kernel
    feedback_messages(task, messages, completion, verdict)  # one more turn: the verdict, then a request
"""

from __future__ import annotations

from search.generators.base import Messages
from synth.prompts import PromptTemplate
from verify.task import Task
from verify.verdict import Verdict


def task_messages(task: Task) -> Messages:
    """synth's default template (`synth.prompts.PromptTemplate`) filled with the task's code."""
    return PromptTemplate().messages(task.code)


def feedback_text(verdict: Verdict) -> str:
    """What the verifier said, as a request for a better program.

    >>> from verify.verdict import Verdict
    >>> v = Verdict().fail("correct", "wrong_values", "trial 0: max abs error 0.5")
    >>> print(feedback_text(v).splitlines()[0])
    Your program was rejected at the correct stage (wrong_values): trial 0: max abs error 0.5
    """
    if not verdict.accepted:
        return (
            f"Your program was rejected at the {verdict.stage} stage ({verdict.error_class}): "
            f"{verdict.message}\n"
            "Fix it and answer with the complete corrected program in one ```python block."
        )
    if verdict.speedup_eager is not None:
        speed = f"{verdict.speedup_eager:.2f}x the speed of PyTorch eager"
        if verdict.speedup_compile is not None:
            speed += f" and {verdict.speedup_compile:.2f}x the speed of torch.compile"
        return (
            f"Your program is correct and runs at {speed}. Make it faster (fuse more, use better block "
            "sizes, fewer launches) and answer with the complete program in one ```python block."
        )
    return (
        "Your program is correct. Make it faster (fewer kernel launches, more fusion) and answer with the "
        "complete program in one ```python block."
    )


def feedback_messages(task: Task, messages: Messages, completion: str, verdict: Verdict) -> Messages:
    """`messages` continued with the model's `completion` and the verifier's feedback on it."""
    return [
        *messages,
        {"role": "assistant", "content": completion},
        {"role": "user", "content": feedback_text(verdict)},
    ]
