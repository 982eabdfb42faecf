"""verify: the kernel verifier and reward engine every other package trusts.

    from verify import Task, Verifier, VerifyConfig
    with Verifier(VerifyConfig()) as v:
        print(v.verify(Task.from_file("task.py"), open("completion.md").read()).summary())
"""
from verify.candidate import Candidate, FormatError, extract_program
from verify.config import VerifyConfig
from verify.memory import TaskTooLarge
from verify.task import Task, TaskError
from verify.verdict import STAGES, Timing, Verdict
from verify.verifier import Verifier

__all__ = ["Candidate", "FormatError", "extract_program", "VerifyConfig", "Task", "TaskError", "TaskTooLarge",
           "STAGES", "Timing", "Verdict", "Verifier"]
