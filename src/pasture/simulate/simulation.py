"""The simulator end to end: outputs -> sampled pairs -> pool labels -> preference datasets on disk.

Everything written is a deterministic function of the outputs, the pool (members' fingerprints, p, seed)
and the clean verdicts in the store: the same inputs give byte-identical files in any process. Run-time
facts that differ between a fresh run and a resumed one (calls made, timings) are returned, not written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pasture.annotate import EngineSettings
from pasture.errors import InputError
from pasture.judges.base import Provider
from pasture.records import EvalSet, ModelOutput, canonical_json, sha256_text
from pasture.simulate.datasets import FORMATS, DatasetFormat, DatasetSummary, write_labels, write_preference_dataset
from pasture.simulate.labels import LabelRun, PairSample, label_pairs, sample_pairs
from pasture.simulate.pool import AnnotatorPool
from pasture.store import Store


@dataclass(frozen=True)
class Simulation:
    """A finished simulation: the pairs sampled, the labels, and the inputs' digest."""

    pool: AnnotatorPool
    sample: PairSample
    run: LabelRun
    outputs_digest: str
    pairs_per_instruction: int

    def manifest(self) -> dict[str, Any]:
        """What produced the datasets, with counts; deterministic (no dates, no call counts)."""
        from pasture import __version__

        return {
            "pasture_version": __version__,
            "pool": {
                "name": self.pool.name,
                "p": self.pool.p,
                "seed": self.pool.seed,
                "members": self.pool.describe(),
            },
            "outputs_digest": self.outputs_digest,
            "pairs_per_instruction": self.pairs_per_instruction,
            "n_instructions": self.sample.n_instructions,
            "n_instructions_skipped": len(self.sample.skipped_instructions),
            "n_pairs": len(self.sample.pairs),
            "n_labels_ok": self.run.n_ok,
            "n_labels_failed": self.run.n_failed,
            "n_flipped": self.run.n_flipped,
        }


def outputs_digest(outputs: Sequence[ModelOutput]) -> str:
    """SHA-256 of the sorted (instruction, generator, sample_index, output) tuples: order-independent."""
    return sha256_text(canonical_json(sorted([o.instruction, o.generator, o.sample_index, o.output] for o in outputs)))


def simulate_preferences(
    outputs: Sequence[ModelOutput],
    pool: AnnotatorPool,
    store: Store,
    *,
    pairs_per_instruction: int = 1,
    settings: EngineSettings | None = None,
    progress: bool = False,
) -> Simulation:
    """Sample pairs of outputs per instruction (seeded by ``pool.seed``) and label them with ``pool``.

    Parameters
    ----------
    outputs:
        Model outputs; several generators and/or several samples per instruction (sample_index).
    pool:
        The annotator pool (members, flip probability ``p``, ``seed``).
    store:
        Where clean verdicts are cached: a rerun calls no judge for what is stored and resumes after a kill.
    pairs_per_instruction:
        Pairs sampled per instruction among its distinct outputs.
    settings:
        How the annotation engine runs (:class:`~pasture.annotate.EngineSettings`: concurrency, retries,
        claims...); the simulator's one-call-at-a-time default when None.
    progress:
        Show the annotation engine's progress bar (stderr).
    """
    sample = sample_pairs(outputs, seed=pool.seed, pairs_per_instruction=pairs_per_instruction)
    run = label_pairs(sample.pairs, pool, store, settings=settings, progress=progress)
    return Simulation(
        pool=pool,
        sample=sample,
        run=run,
        outputs_digest=outputs_digest(outputs),
        pairs_per_instruction=pairs_per_instruction,
    )


def write_simulation(
    simulation: Simulation,
    out_dir: str | Path,
    *,
    formats: Sequence[DatasetFormat] = ("trl", "trl_chat", "alpaca_farm"),
) -> dict[str, Path]:
    """Write ``labels.jsonl`` (every label with provenance), one ``<format>.jsonl`` per format and
    ``manifest.json``; returns the paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"labels": out / "labels.jsonl"}
    write_labels(simulation.run.labels, paths["labels"])
    summaries: dict[str, DatasetSummary] = {}
    for fmt in formats:
        if fmt not in FORMATS:
            raise InputError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")
        paths[fmt] = out / f"{fmt}.jsonl"
        summaries[fmt] = write_preference_dataset(simulation.run.labels, paths[fmt], fmt)
    manifest = simulation.manifest()
    manifest["datasets"] = {
        fmt: {"file": paths[fmt].name, "n_rows": s.n_rows, "n_ties": s.n_ties, "n_failed": s.n_failed}
        for fmt, s in summaries.items()
    }
    paths["manifest"] = out / "manifest.json"
    paths["manifest"].write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return paths


@dataclass(frozen=True)
class PolicySamples:
    """Outputs sampled from a policy for simulation, and the generations that failed (not stored)."""

    outputs: list[ModelOutput]
    n_failed: int


def sample_policy_outputs(
    store: Store,
    eval_set: EvalSet,
    provider: Provider,
    *,
    generator: str,
    samples: int = 2,
    temperature: float = 0.7,
    max_tokens: int = 256,
    seed: int = 0,
    concurrency: int = 1,
    progress: bool = False,
) -> PolicySamples:
    """``samples`` outputs per instruction from a policy (``pasture.generate``), stored and resumable.

    Sample ``k`` uses seed ``seed + k`` where the provider honours seeds; ``temperature`` must be > 0 so
    samples differ. Identical samples of an instruction are never paired (see :func:`sample_pairs`).
    """
    from pasture.generate import GenerationSettings, generate

    if samples < 2:
        raise InputError(f"simulation needs at least 2 samples per instruction, got {samples}")
    report = generate(
        store,
        eval_set,
        provider,
        generator=generator,
        settings=GenerationSettings(samples=samples, temperature=temperature, max_tokens=max_tokens, seed=seed),
        concurrency=concurrency,
        progress=progress,
    )
    return PolicySamples(outputs=list(report.outputs), n_failed=report.n_failed)
