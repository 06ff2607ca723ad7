"""The iterative driver on a real chat model that is its own judge by prompt (what ``pasture loop --task model`` runs).

The start policy is ``"smollm2"`` (SmolLM2-135M-Instruct, de-quantised once into ``workdir/start-model`` so a rerun
loads the same float weights and resumes the same rounds) or a checkpoint directory. Each round's judge is the
current policy prompted with the self-rewarding rubric (:class:`~pasture.train.builders.prompt_self_judge.
PromptSelfJudge`); the evaluator is the same prompt on the start policy M0 (there is no oracle on a real model).
Store: ``workdir/store.db``. A 135M self-judge shows only the plumbing (docs/train.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pasture.train.builders.prompt_self_judge import SELF_REWARD_JUDGE_V1, PromptSelfJudge
from pasture.train.loop import LoopConfig, LoopResult, run_loop
from pasture.train.models import load_policy


def run_prompted_loop(
    config: LoopConfig,
    model: str | Path,
    train_prompts: Sequence[str],
    eval_prompts: Sequence[str],
    workdir: str | Path,
    *,
    template: str = SELF_REWARD_JUDGE_V1,
) -> LoopResult:
    """Run (or resume) ``config.rounds`` rounds from ``model`` with the policy as its own prompted judge."""
    work = Path(workdir)
    cache = work / "start-model" if str(model) == "smollm2" else None
    start, tok = load_policy(model, cache_dir=cache)
    evaluator = PromptSelfJudge(template).for_policy(start, tok)
    return run_loop(
        start, tok, train_prompts, eval_prompts, PromptSelfJudge(template), evaluator, work / "store.db", work, config
    )
