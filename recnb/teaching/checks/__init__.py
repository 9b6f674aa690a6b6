"""Checks for the course assignments (``notebooks/assignments``): immediate feedback, no server needed.

A student calls a check in the cell below an exercise, e.g. ``checks.check_ndcg(ndcg)``.
Each check runs the student's function on small inputs it builds itself, compares
the result with recnb's own implementation (or, where every right answer differs, such
as a random draw, checks its properties), and then:

- prints one line if everything matches;
- raises :class:`CheckFailed` (an ``AssertionError``) if something does not: what is
  wrong, the smallest failing input, expected against got, and a hint where to look.
  In Jupyter only that message is shown, not the check's own traceback;
- prints a reminder and returns if the function still raises the bare
  ``NotImplementedError()`` of the student version (not answered yet), so a fresh
  notebook runs top to bottom. With ``strict=True``, or under ``nbgrader validate``
  and ``nbgrader autograde`` (which set ``NBGRADER_EXECUTION``), that raises too.

Two rules keep the grading honest:

- a function that calls recnb's implementation of the exercise (``recnb.evaluation.metrics.ndcg`` for
  ``ndcg``, under any name, or through a function that calls it) fails with a message that
  the point is to write it; the check watches the calls made while the student's function runs;
- ``cases=`` adds inputs, and those are the grader's hidden tests: a failure on one says
  what is wrong and gives the hint, but never shows the input, the expected or the actual
  value, and whatever the function prints on it is dropped, so the assignment can be set again.

Checks return ``None``: nbgrader would read a number returned by a test cell as partial credit.
"""

from recnb.teaching.checks._core import CheckFailed
from recnb.teaching.checks.ablation import check_paired_difference, paired_example
from recnb.teaching.checks.attention import (
                        attention_example,
                        check_attention_mask,
                        check_causal_mask,
                        check_multi_head_attention,
                        check_padding_mask,
)
from recnb.teaching.checks.markov import check_markov_scores, check_transition_counts
from recnb.teaching.checks.protocol import check_rank_among, check_sample_candidates, rank_example
from recnb.teaching.checks.ranking import check_hit_rate, check_mrr, check_ndcg
from recnb.teaching.checks.training import check_accumulate_gradients, check_masked_loss_sum, check_train_step

__all__ = [
    "CheckFailed", "attention_example", "check_accumulate_gradients", "check_attention_mask", "check_causal_mask",
    "check_hit_rate", "check_markov_scores", "check_masked_loss_sum", "check_mrr", "check_multi_head_attention",
    "check_ndcg", "check_padding_mask", "check_paired_difference", "check_rank_among", "check_sample_candidates",
    "check_train_step", "check_transition_counts", "paired_example", "rank_example",
]
