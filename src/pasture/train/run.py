"""The Python functions behind ``pasture train``: one method, from files or on the synthetic task, resumable.

A finished run leaves a checkpoint directory with ``stats.json`` (written last); running the same command
again finds it and returns the stored result instead of training again. The synthetic task additionally
stores its shared setup (SFT policy, noisy pairs, reward model) under ``<output>/setup`` and each method's row
of the comparison table as ``<output>/<method>/row.json``, which ``pasture methods report`` collects.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from pasture.errors import InputError
from pasture.train.core import TrainingData, TrainStats, checkpoint_done, load_stats, save_checkpoint, timed
from pasture.train.registry import MethodSettings, RunIdentity, TrainSettings, get_method, run_identity

if TYPE_CHECKING:
    from pasture.train.cut import JudgedResponse
    from pasture.train.recipes import SyntheticConfig

RUN_FILE = "run.json"
"""Next to every stored result: the :class:`~pasture.train.registry.RunIdentity` that produced it (and its digest)."""


@dataclass(frozen=True)
class FileInputs:
    """What ``pasture train`` reads for a real model: the starting model and the files the method needs."""

    model: str = "smollm2"
    pairs: Path | None = None
    demonstrations: Path | None = None
    prompts: Path | None = None
    reward_model: Path | None = None
    judgments: Path | None = None


_INPUT_HELP = {
    "pairs": "--pairs (JSONL with prompt/chosen/rejected)",
    "demonstrations": "--demonstrations (JSONL with instruction/output)",
    "prompts": "--prompts (JSONL with instruction)",
    "reward_model": "--reward-model (a reward_model checkpoint)",
    "judgments": "--judgments (JSONL with instruction/output/good/critique)",
}


def content_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's (relative path, file digest) list: the input's content identity."""
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        raise InputError("not found", path=path)
    entries = [
        [p.relative_to(path).as_posix(), _file_sha256(p)]
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    ]
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _model_digest(spec: str) -> str:
    if spec == "smollm2":
        from pasture.local_models import smollm2_gguf_path

        return content_digest(smollm2_gguf_path())
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise InputError("not a model directory (no config.json); give 'smollm2' or a checkpoint", path=path)
    return content_digest(path)


def file_run_identity(method: str, inputs: FileInputs, settings: MethodSettings, train: TrainSettings) -> RunIdentity:
    """The identity of a ``pasture train`` run from files: method, settings, shared settings and the content
    digests of the model and of every input file the method reads (a missing input is a one-line error)."""
    spec = get_method(method)
    digests: dict[str, str] = {"model": _model_digest(inputs.model)}
    for name in spec.inputs:
        path = getattr(inputs, name)
        if path is None:
            raise InputError(f"{method} needs {_INPUT_HELP[name]}")
        digests[name] = content_digest(Path(path))
    return run_identity(method, settings, train, digests)


def check_stored(out: Path, identity: RunIdentity, done: bool) -> bool:
    """Whether ``out`` holds a finished result of exactly ``identity`` (reuse it). A finished result of other
    settings, or one with no recorded identity, is a one-line error naming what differs; an unfinished one
    is overwritten."""
    if not done:
        return False
    record = out / RUN_FILE
    if not record.is_file():
        raise InputError(f"holds a finished run with no {RUN_FILE} (settings unknown); use another --output", path=out)
    stored = json.loads(record.read_text(encoding="utf-8"))
    if stored.get("digest") == identity.digest:
        return True
    diff = "; ".join(identity.differences(stored.get("identity", {}))[:6])
    raise InputError(f"holds a finished run with other settings ({diff}); use another --output", path=out)


def write_identity(out: Path, identity: RunIdentity) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"digest": identity.digest, "identity": identity.describe()}
    (out / RUN_FILE).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")


def train_from_files(
    method: str,
    output: str | Path,
    inputs: FileInputs,
    settings: MethodSettings | None = None,
    train: TrainSettings | None = None,
) -> TrainStats:
    """Train ``method`` (a registered method) from ``inputs`` and save the result to ``output``.

    ``settings`` default to the method's own (its registry settings class), ``train`` to the shared defaults.
    The run's identity (method, every setting, content digests of model and data) is stored in
    ``output/run.json``: a finished run there is returned only when its identity matches; a finished run of
    other settings is an error naming the differences, never silently returned. A trained policy's stats also
    record forgetting: ``old_text_before`` / ``old_text_after`` (:func:`pasture.train.retention.text_score` on the
    bundled held-out team-written text) and ``old_text_retention`` (after / before).
    """
    from pasture.train.models import load_policy, read_demonstrations, read_preference_pairs, read_prompts
    from pasture.train.retention import text_score
    from pasture.train.reward import RewardModel

    spec = get_method(method)
    if spec.trainer is None:
        raise InputError(f"{method} is inference-time only; run it with --task synthetic")
    settings = settings if settings is not None else spec.settings()
    train = train or TrainSettings()
    out = Path(output)
    identity = file_run_identity(method, inputs, settings, train)
    if check_stored(out, identity, checkpoint_done(out)):
        return load_stats(out)
    prompts: list[str] = []
    responses: list[str] = []
    if "demonstrations" in spec.inputs:
        prompts, responses = read_demonstrations(cast(Path, inputs.demonstrations))
    if "prompts" in spec.inputs:
        prompts = read_prompts(cast(Path, inputs.prompts))
    data = TrainingData(
        prompts=prompts,
        responses=responses,
        pairs=read_preference_pairs(cast(Path, inputs.pairs)) if "pairs" in spec.inputs else (),
        reward_model=RewardModel.load(cast(Path, inputs.reward_model)) if "reward_model" in spec.inputs else None,
        judged=_read_judgments(cast(Path, inputs.judgments)) if "judgments" in spec.inputs else (),
    )
    model, tok = load_policy(inputs.model)
    write_identity(out, identity)
    old_before = text_score(model, tok) if spec.produces == "policy" else None  # before training moves the weights
    trained, stats = spec.trainer_function()(model, tok, data, settings, train)
    if old_before is not None:  # forgetting: held-out team-written text, before and after (pasture.train.retention)
        from pasture.train.table import retention_ratio

        old_after = text_score(trained, tok)
        stats.metrics.update(old_text_before=old_before, old_text_after=old_after)
        stats.metrics["old_text_retention"] = retention_ratio(old_before, old_after) or float("nan")
    save_checkpoint(out, trained, tok if spec.produces in ("policy", "judge") else None, stats)
    return stats  # type: ignore[no-any-return]


def _read_judgments(path: Path) -> list[JudgedResponse]:
    from pasture.train.cut import read_judged_responses

    return read_judged_responses(path)


def synthetic_identity(method: str, config: SyntheticConfig) -> RunIdentity:
    """The identity of a synthetic-task run: the recipe's settings for ``method`` and the task's configuration."""
    from pasture.train.recipes import recipe

    r = recipe(method, config.seed) if method not in ("sft", "reward_model") else None
    settings = r.settings if r is not None else get_method(method).settings()
    train = r.train if r is not None else TrainSettings(seed=config.seed)
    inputs: dict[str, object] = {"synthetic_task": asdict(config)}
    if r is not None and r.n_prompts is not None:
        inputs["n_prompts"] = r.n_prompts
    return run_identity(method, settings, train, inputs)


def synthetic_config(seed: int = 0, *, quick: bool = False) -> SyntheticConfig:
    """The synthetic task's configuration; ``quick`` shrinks every size (smoke runs; figures not the documented)."""
    from pasture.train.recipes import SyntheticConfig

    if not quick:
        return SyntheticConfig(seed=seed)
    return SyntheticConfig(
        seed=seed,
        n_sft_prompts=300,
        sft_steps=30,
        n_pair_prompts=400,
        rm_steps=10,
        n_rl_prompts=64,
        n_eval_prompts=32,
        n_heldout_pair_prompts=32,
    )


def run_synthetic(method: str, output: str | Path, *, seed: int = 0, quick: bool = False) -> dict[str, object]:
    """Train and evaluate ``method`` on the synthetic task; store and return its comparison-table row.

    The row (``<output>/<method>/row.json``, or ``accuracy.json`` for the reward model) is reused only when the
    run identity stored beside it (``<output>/<method>/run.json``: the recipe's settings and the task's
    configuration) matches; a finished result of other settings is an error. ``quick`` shrinks every size.
    """
    from pasture.train.compare import MethodRow
    from pasture.train.recipes import best_of_n_curve, best_of_n_outputs, evaluate_synthetic, train_synthetic_method
    from pasture.train.setup_store import load_or_build_setup

    get_method(method)
    cfg = synthetic_config(seed, quick=quick)
    identity = synthetic_identity(method, cfg)
    out = Path(output)
    row_path = out / method / "row.json"
    for done in (row_path, out / method / "accuracy.json"):
        if check_stored(out / method, identity, done.is_file()):
            return dict(json.loads(done.read_text(encoding="utf-8")))
    setup = load_or_build_setup(out / "setup", cfg)
    write_identity(out / method, identity)
    row: MethodRow
    extra: dict[str, object] = {"run_identity": identity.digest}
    if method == "sft":
        row = evaluate_synthetic(setup, method, setup.sft, setup.sft_stats)
    elif method == "reward_model":
        from pasture.train.recipes import heldout_pairs
        from pasture.train.reward import pair_accuracy

        # a reward model is not a policy: it gets no row in the comparison table, its accuracy is stored instead
        record = {
            "method": method,
            "heldout_accuracy": pair_accuracy(setup.reward_model, setup.tokenizer, heldout_pairs(setup)),
            "train_accuracy": setup.rm_stats.metrics.get("train_accuracy"),
            "train_tokens": setup.rm_stats.train_tokens,
            "wall_s": setup.rm_stats.wall_s,
            **extra,
        }
        path = out / method / "accuracy.json"
        path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        return record
    elif method == "best_of_n":
        extra["curve"] = {str(k): v for k, v in best_of_n_curve(setup).items()}
        stats = TrainStats(method="best_of_n")
        with timed(stats):
            bon = best_of_n_outputs(setup, seed + 3)
        stats.generated_tokens = bon.generated_tokens
        row = evaluate_synthetic(setup, method, setup.sft, stats, outputs=bon.select(len(bon.candidates[0])))
    else:
        policy, stats = train_synthetic_method(setup, method)
        save_checkpoint(out / method / "checkpoint", policy, setup.tokenizer, stats)
        row = evaluate_synthetic(setup, method, policy, stats)
    record = {**asdict(row), **extra}
    row_path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    return record
