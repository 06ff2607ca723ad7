"""The farm round builder: the AlpacaFarm-style loop as a recipe of the iterative driver (docs/train.md, "The farm
loop").

For each prompt x, two samples a, b from the current policy M_k (labels ``a`` and ``b``: one sample each, seeded
apart); identical pairs are not judged. The round's **pairwise** judge compares (a, b) through the annotation engine
(judgments stored, never paid twice); each decided verdict is then flipped with probability ``flip_p`` by
:func:`pasture.simulate.noise.flip_labels`, keyed by the judgment key and the round's seed (simulated annotator
noise, AlpacaFarm's p = 0.25). The pair is (x, preferred ≻ other) by the possibly flipped label. Ties, failed
judgments and identical samples give no pair.

The counts the farm loop reports (pairs, ties, failed labels, flips) are written to ``labels.json`` in the round's
directory, next to the driver's ``data.json``.
"""

from __future__ import annotations

import json
from typing import cast

from pasture.annotate.engine import EngineSettings, annotate
from pasture.annotate.pairs import PairToJudge
from pasture.errors import InputError
from pasture.judges.base import Judge, ResponseJudge
from pasture.simulate.noise import flip_labels
from pasture.train.builders import FarmSettings
from pasture.train.core import PreferencePair
from pasture.train.loop import BuiltRound, RoundContext


def build_farm(ctx: RoundContext) -> BuiltRound:
    """Two samples of the current policy per prompt, labelled by the round's pairwise judge plus flip noise."""
    s = ctx.settings
    assert isinstance(s, FarmSettings)
    if not 0.0 <= s.flip_p <= 1.0:
        raise InputError(f"builder setting flip_p={s.flip_p}: a probability must lie in [0, 1]")
    judge = ctx.judge
    if isinstance(judge, ResponseJudge) or not isinstance(judge, Judge):
        raise InputError(
            f"builder farm compares two responses; judge {judge.name!r} scores single responses (give a pairwise judge)"
        )
    gen_a = ctx.sample_generator(ctx.policy, "a", 1, ctx.train_set)
    gen_b = ctx.sample_generator(ctx.policy, "b", 1, ctx.train_set)
    a = [row[0] for row in ctx.sample(ctx.policy, "a", 1)]
    b = [row[0] for row in ctx.sample(ctx.policy, "b", 1)]
    to_judge = [PairToJudge(p, x, gen_a, y, gen_b) for p, x, y in zip(ctx.prompts, a, b, strict=True) if x != y]
    report = annotate(
        ctx.store, judge, to_judge, settings=EngineSettings(concurrency=ctx.config.concurrency), progress=False
    )
    ok = [j for j in report.judgments if j.status == "ok" and j.preference is not None]
    failed = len(to_judge) - len(ok)
    decided = [j for j in ok if j.preference != 1.5]
    noisy = flip_labels(
        [float(cast(float, j.preference)) for j in decided],  # ok holds only judgments with a preference
        [j.key for j in decided],
        p=s.flip_p,
        seed=ctx.config.round_train(ctx.index).seed,
    )
    pairs = tuple(
        PreferencePair(j.instruction, j.output_2, j.output_1)
        if label > 1.5
        else PreferencePair(j.instruction, j.output_1, j.output_2)
        for j, label in zip(decided, noisy, strict=True)
    )
    counts = {
        "n_pairs": len(pairs),
        "n_ties": len(ok) - len(decided),
        "n_failed_labels": failed,
        "n_identical": len(ctx.prompts) - len(to_judge),
        "label_flips": sum(1 for j, label in zip(decided, noisy, strict=True) if label != j.preference),
    }
    (ctx.round_dir / "labels.json").write_text(json.dumps(counts, indent=2), encoding="utf-8")
    ctx.n_failed_judgments += failed
    return BuiltRound(pairs=pairs, n_skipped=len(ctx.prompts) - len(pairs), n_failed_judgments=failed)
