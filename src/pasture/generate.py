"""Generating model outputs for an eval set with any provider (OpenAI-compatible server, llama.cpp, transformers).

Why through the judges' providers: one ``complete(ChatRequest) -> Completion`` contract serves judging and
generation, so every endpoint a judge can use (OpenAI, vLLM, Ollama, a llama.cpp server, a GGUF in process, a
transformers checkpoint) can also be evaluated. The provider applies the model's chat template (server side,
the GGUF's embedded template, or the tokenizer's ``apply_chat_template``).

Resumable: each output is written to the store as soon as it finishes, keyed by (eval set, instruction,
generator, sample_index); a rerun generates only what is missing. The settings that produced a generator's
outputs are recorded as a run (kind ``generate``); resuming a generator with different settings is an error,
so one generator name never mixes outputs of two configurations.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pasture.errors import InputError, PastureError
from pasture.io import write_model_outputs
from pasture.judges.base import ChatRequest, PermanentError, Provider, TransientError
from pasture.records import EvalSet, Instruction, ModelOutput, RunManifest, RunRecord, canonical_json, sha256_text
from pasture.store import Store

GENERATE_RUN_KIND = "generate"

SPECULATIVE_RUN_KIND = "speculative"
"""Run kind of a speculative generation's measures: one per generate call that made outputs with a draft."""


@dataclass(frozen=True)
class GenerationSettings:
    """How outputs are sampled; all of it is recorded with the generator's outputs.

    Attributes
    ----------
    system_prompt:
        Optional system message before each instruction (None: the instruction is the only message).
    max_tokens:
        Cap on generated tokens per output.
    temperature, top_p:
        Sampling parameters (temperature 0 = greedy).
    seed:
        Base seed; sample ``k`` of every instruction uses ``seed + k`` so samples differ but reruns repeat.
    samples:
        Outputs per instruction (``sample_index`` 0 .. samples-1); more than one needs temperature > 0.
    stop:
        Stop sequences.
    """

    system_prompt: str | None = None
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int = 0
    samples: int = 1
    stop: tuple[str, ...] = field(default=())

    def validate(self) -> None:
        if self.max_tokens < 1:
            raise InputError(f"max tokens must be at least 1, got {self.max_tokens}")
        if self.samples < 1:
            raise InputError(f"samples must be at least 1, got {self.samples}")
        if not 0 <= self.temperature <= 5:
            raise InputError(f"temperature must be in [0, 5], got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.samples > 1 and self.temperature == 0:
            raise InputError("several samples per instruction need temperature > 0 (greedy samples are identical)")

    def digest(self, provider_identity: dict[str, Any]) -> str:
        """What must match for a resumed generator: these settings and the provider's model identity."""
        return sha256_text(canonical_json({"settings": asdict(self), "provider": provider_identity}))

    def messages(self, instruction: str) -> tuple[dict[str, str], ...]:
        user = {"role": "user", "content": instruction}
        if self.system_prompt:
            return ({"role": "system", "content": self.system_prompt}, user)
        return (user,)

    def decoding(self, sample_index: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed + sample_index,
        }
        if self.stop:
            out["stop"] = list(self.stop)
        return out


@dataclass(frozen=True)
class GenerationReport:
    """What :func:`generate` did. ``outputs`` holds every output of the generator on the eval set."""

    generator: str
    eval_set_digest: str
    outputs: tuple[ModelOutput, ...]
    n_new: int
    n_cached: int
    n_failed: int
    errors: tuple[str, ...]
    wall_s: float
    output_path: Path | None = None
    speculative: dict[str, float] | None = None
    """Speculative decoding's measures for this run's new outputs (docs/generate.md), when the provider has them."""

    @property
    def ok(self) -> bool:
        return self.n_failed == 0

    def summary(self) -> str:
        return (
            f"{self.generator}: {len(self.outputs)} outputs ({self.n_new} new, {self.n_cached} already stored"
            + (f", {self.n_failed} FAILED" if self.n_failed else "")
            + f") in {self.wall_s:.1f}s"
            + (_speculative_line(self.speculative) if self.speculative else "")
        )


def _speculative_line(m: dict[str, float]) -> str:
    line = (
        f"\nspeculative: {m['target_passes_per_token']:.3f} target passes/token, acceptance "
        f"{m['acceptance_rate']:.3f}, mean candidates {m['mean_candidate_length']:.2f}, "
        f"{int(m['discarded'])} discarded draft tokens, {m['tokens_per_s']:.1f} tokens/s"
    )
    if "speedup_vs_plain" in m:
        line += f" ({m['speedup_vs_plain']:.2f}× plain decoding of the first instruction)"
    return line


def _pasture_version() -> str:
    import pasture

    return pasture.__version__


def _check_resume(
    store: Store, eval_set_digest: str, generator: str, digest: str, settings: GenerationSettings
) -> None:
    runs = store.latest_runs(eval_set_digest=eval_set_digest, reference_digest="", judge_digest="")
    for run in runs:
        if run.generator == generator and run.kind == GENERATE_RUN_KIND:
            if run.result.get("settings_digest") != digest:
                raise InputError(
                    f"generator '{generator}' already has outputs on this eval set made with other settings or "
                    "another model; choose another --name (or another --store)"
                )
            return
    if store.get_outputs(eval_set_digest, generator):
        raise InputError(
            f"generator '{generator}' already has outputs on this eval set (imported or made elsewhere); "
            "choose another --name"
        )


async def _generate_async(
    store: Store,
    eval_set: EvalSet,
    provider: Provider,
    generator: str,
    settings: GenerationSettings,
    *,
    concurrency: int,
    max_retries: int,
    progress: bool,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> tuple[int, list[str]]:
    digest = eval_set.digest
    done = {(o.instruction, o.sample_index) for o in store.get_outputs(digest, generator)}
    todo = [
        (item, k)
        for item in eval_set.instructions
        for k in range(settings.samples)
        if (item.instruction, k) not in done
    ]
    sem = asyncio.Semaphore(concurrency)
    errors: list[str] = []
    n_new = 0

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn(f"generate {generator[:30]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[tokens]} tokens"),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task_id = bar.add_task("generate", total=len(todo) + len(done), completed=len(done), tokens=0)
        tokens = 0

        async def one(item: Any, k: int) -> None:
            nonlocal n_new, tokens
            request = ChatRequest(messages=settings.messages(item.instruction), decoding=settings.decoding(k))
            async with sem:
                for attempt in range(max_retries + 1):
                    start = time.perf_counter()
                    try:
                        completion = await provider.complete(request)
                        break
                    except TransientError as exc:
                        if attempt == max_retries:
                            errors.append(f"{item.instruction[:40]!r}#{k}: {exc}")
                            bar.advance(task_id)
                            return
                        await asyncio.sleep(min(30.0, exc.retry_after or 2.0**attempt))
                    except PermanentError as exc:
                        errors.append(f"{item.instruction[:40]!r}#{k}: {exc}")
                        bar.advance(task_id)
                        return
            output = ModelOutput(
                instruction=item.instruction,
                output=completion.text,
                generator=generator,
                sample_index=k,
                dataset=item.dataset,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                latency_s=completion.latency_s if completion.latency_s is not None else time.perf_counter() - start,
            )
            store.put_outputs(digest, [output])
            n_new += 1
            tokens += completion.completion_tokens or 0
            bar.update(task_id, advance=1, tokens=tokens)

        remote: Any = None
        if ray is not None and todo:  # nothing to generate: no cluster needed
            from pasture.annotate.ray_backend import RemoteProvider  # only with ray: pasture runs without it

            remote = provider = await RemoteProvider.start(
                provider, address=ray, workers=ray_workers, per_worker=None, concurrency=concurrency
            )
        try:
            await asyncio.gather(*(one(item, k) for item, k in todo))
        finally:
            if remote is not None:
                await remote.close()
    return n_new, errors


def generate(
    store: Store,
    eval_set: EvalSet,
    provider: Provider,
    *,
    generator: str,
    settings: GenerationSettings | None = None,
    concurrency: int = 4,
    max_retries: int = 4,
    output_path: str | Path | None = None,
    progress: bool = True,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> GenerationReport:
    """Generate ``settings.samples`` outputs per instruction of ``eval_set`` with ``provider``, into ``store``.

    Parameters
    ----------
    store:
        Where outputs are written as they finish (and read, to resume).
    eval_set:
        The instructions; stored too, so later commands find it by digest.
    provider:
        Any :class:`pasture.judges.base.Provider` (see ``pasture.providers``).
    generator:
        Name of this model + settings on leaderboards (e.g. ``smollm2-verbose``).
    settings:
        Sampling settings (:class:`GenerationSettings`; defaults when None).
    concurrency:
        Requests in flight at once (batching for servers; in-process providers serialise internally).
    max_retries:
        Retries after transient failures (429, 5xx, timeouts), with exponential backoff.
    output_path:
        Also write all the generator's outputs as an AlpacaEval-compatible ``model_outputs.json``.
    progress:
        Show a progress bar (stderr).
    ray:
        Make the completions on a Ray cluster at this address ('auto' or HOST:PORT): Ray actors hold copies
        of ``provider``, ``concurrency`` requests are shared among them, and the outputs are stored here
        as they finish (docs/evaluate.md, docs/annotate.md "Scale-out on Ray"). Needs pasture[ray].
    ray_workers:
        With ``ray``: how many actors (default one per CPU of the cluster).

    Failed generations are reported (``n_failed``, ``errors``) and not stored, so a rerun retries them.
    """
    settings = settings or GenerationSettings()
    settings.validate()
    if not generator or not generator.strip():
        raise InputError("the generator needs a name")
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}")
    if ray is not None and not ray.strip():
        raise InputError("ray must be a cluster address (HOST:PORT) or 'auto', not empty", param="ray")
    if ray_workers is not None and (ray is None or ray_workers < 1):
        raise InputError(f"ray_workers needs ray and must be at least 1, got {ray_workers}", param="ray_workers")
    started = time.monotonic()
    digest = store.put_eval_set(eval_set)
    identity = provider.identity()
    settings_digest = settings.digest(identity)
    _check_resume(store, digest, generator, settings_digest, settings)

    def record_run(kind: str, result: dict[str, Any]) -> None:
        """A generation run of ``kind`` (no reference, no judge: not on a board) with the provider named."""
        store.put_run(
            eval_set_digest=digest,
            reference_digest="",
            judge_digest="",
            generator=generator,
            kind=kind,
            result=result,
            manifest=RunManifest(
                pasture_version=_pasture_version(),
                eval_set_digest=digest,
                inputs={"provider": provider.name, "model": provider.model},
            ),
        )

    cached = len(store.get_outputs(digest, generator))
    if cached == 0:
        record_run(
            GENERATE_RUN_KIND, {"settings_digest": settings_digest, "settings": asdict(settings), "provider": identity}
        )
    try:
        n_new, errors = asyncio.run(
            _generate_async(
                store,
                eval_set,
                provider,
                generator,
                settings,
                concurrency=concurrency,
                max_retries=max_retries,
                progress=progress,
                ray=ray,
                ray_workers=ray_workers,
            )
        )
    except (TransientError, PermanentError) as exc:  # raised outside a call, e.g. by a client's set-up
        raise PastureError(f"generation with {provider.name}:{provider.model} failed: {exc}") from None
    order = {item.instruction: i for i, item in enumerate(eval_set.instructions)}
    outputs = sorted(
        (o for o in store.get_outputs(digest, generator) if o.instruction in order),
        key=lambda o: (order[o.instruction], o.sample_index),
    )
    path = write_model_outputs(outputs, output_path) if output_path is not None else None
    speculative = provider.speculative_summary() if hasattr(provider, "speculative_summary") else None
    if speculative and n_new:  # measures of this call's new outputs, kept for the report
        record_run(SPECULATIVE_RUN_KIND, {"settings_digest": settings_digest, "n_new": n_new, **speculative})
    return GenerationReport(
        generator=generator,
        eval_set_digest=digest,
        outputs=tuple(outputs),
        n_new=n_new,
        n_cached=cached,
        n_failed=len(errors),
        errors=tuple(errors),
        wall_s=time.monotonic() - started,
        output_path=path,
        speculative=speculative,
    )


SPECULATIVE_COLUMNS: dict[str, str] = {
    "target_passes_per_token": "target passes / token",
    "acceptance_rate": "acceptance",
    "mean_candidate_length": "mean candidates",
    "discarded_per_token": "discarded / token",
    "tokens_per_s": "tokens / s",
    "speedup_vs_plain": "× plain",
    "n_new": "outputs",
}
"""The measures of a speculative generation shown per generator (definitions: docs/generate.md)."""


def speculative_measures(store: Store, eval_set_digest: str) -> pd.DataFrame:
    """The newest speculative generation's measures per generator on one eval set (empty when none).

    Why stored: the generate summary is printed once and lost; the report shows, next to a model's win rate,
    what its decoding cost (target passes per token, acceptance, discarded draft tokens, speed-up).
    """
    newest: dict[str, RunRecord] = {}
    for run in store.runs(kinds=[SPECULATIVE_RUN_KIND], eval_set_digest=eval_set_digest):
        newest[run.generator] = run  # oldest first: the last one wins
    rows = {g: {c: run.result.get(c, math.nan) for c in SPECULATIVE_COLUMNS} for g, run in sorted(newest.items())}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(SPECULATIVE_COLUMNS))
    frame.index.name = "generator"
    return frame


def missing_outputs(outputs: Sequence[ModelOutput], eval_set: EvalSet, samples: int = 1) -> int:
    """How many (instruction, sample) slots of ``eval_set`` have no output: 0 means complete."""
    have = {(o.instruction, o.sample_index) for o in outputs}
    return sum((i.instruction, k) not in have for i in eval_set.instructions for k in range(samples))


MODEL_SPEC_HELP = (
    "the model: 'smollm2' (the bundled SmolLM2-135M-Instruct GGUF), a .gguf path (llama.cpp in process), "
    "'hf:ID_OR_PATH' (transformers), 'openai:MODEL' (any OpenAI-compatible server; see --base-url) or "
    "'anthropic:MODEL'"
)


def provider_from_spec(spec: str, *, base_url: str | None = None, **provider_args: Any) -> Provider:
    """A provider from a one-string model spec (see :data:`MODEL_SPEC_HELP`); extra arguments go to it.

    Why one string: ``--model smollm2``, ``--model ./my.gguf`` or ``--model openai:gpt-4o-mini`` cover the
    three ways to run a model (in process, local checkpoint, endpoint) without a flag for each.
    """
    from pasture.local_models import smollm2_gguf_path
    from pasture.providers import get_provider

    spec = spec.strip()
    if not spec:
        raise InputError("empty model spec; " + MODEL_SPEC_HELP)
    if spec == "smollm2":
        return get_provider("llama_cpp", model_path=smollm2_gguf_path(), model="SmolLM2-135M-Instruct", **provider_args)
    kind, _, rest = spec.partition(":")
    if kind in {"openai", "anthropic"} and rest:
        args = dict(provider_args)
        if base_url is not None:
            args["base_url"] = base_url
        return get_provider(kind, model=rest, **args)
    if kind == "hf" and rest:
        return get_provider("transformers", model=rest, **provider_args)
    if kind == "gguf" and rest:
        spec = rest
    if spec.lower().endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise InputError("GGUF file not found", path=path)
        return get_provider("llama_cpp", model_path=path, **provider_args)
    raise InputError(f"cannot read model spec {spec!r}: " + MODEL_SPEC_HELP)


REFINE_TEMPLATE = (
    "Here is an instruction and a previous answer to it. Write an improved answer: correct what is wrong, keep "
    "what is right. Reply with the improved answer only.\n\nInstruction:\n{instruction}\n\nPrevious answer:\n"
    "{previous}"
)
"""The refine prompt of :func:`refine_chain` (placeholders ``{instruction}`` and ``{previous}``)."""

RefineFilter = Callable[[str, str, str], bool]
"""``keep(instruction, previous, refined)``: whether a refinement replaces the previous answer in the chain."""


def changed_and_nonempty(instruction: str, previous: str, refined: str) -> bool:
    """The default chain filter: keep a refinement that is not empty and not the previous answer again."""
    return bool(refined.strip()) and refined.strip() != previous.strip()


@dataclass(frozen=True)
class RefineChainReport:
    """What :func:`refine_chain` did: the report of each step (step 0 answers the instructions, step t the refine
    prompts of step t − 1's kept answers), the final generator's outputs (``final_generator``, on the original eval
    set) and how many refinements the filter kept at each step."""

    steps: tuple[GenerationReport, ...]
    final_generator: str
    outputs: tuple[ModelOutput, ...]
    kept: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)


def refine_chain(
    store: Store,
    eval_set: EvalSet,
    provider: Provider,
    *,
    generator: str,
    steps: int,
    settings: GenerationSettings | None = None,
    template: str = REFINE_TEMPLATE,
    keep: RefineFilter = changed_and_nonempty,
    concurrency: int = 4,
    progress: bool = True,
) -> RefineChainReport:
    """A refinement chain y_0 → y_1 → … → y_steps per instruction (EVOLVE's inference; docs/generate.md).

    y_0 is :func:`generate`'s output under ``generator``; step t answers the refine prompt
    ``template.format(instruction=x, previous=c_{t−1})`` (its own eval set, generator ``<generator>/refine<t>``),
    and the filter ``keep(x, c_{t−1}, y_t)`` decides whether y_t becomes the chain's answer c_t (else c_t = c_{t−1}).
    The final answers c_steps are stored under ``<generator>+refine<steps>`` on ``eval_set``, to be evaluated like
    any generator. Every step is stored and resumable; one sample per instruction (``settings.samples`` must be 1).
    A judge-based filter (keep y_t when a judge scores it above c_{t−1}) is any ``keep`` callable.
    """
    settings = settings or GenerationSettings()
    if settings.samples != 1:
        raise InputError(f"a refinement chain follows one answer per instruction; got samples={settings.samples}")
    if steps < 1:
        raise InputError(f"refine steps must be at least 1, got {steps}")
    if "{instruction}" not in template or "{previous}" not in template:
        raise InputError("the refine template needs both {instruction} and {previous} placeholders")
    first = generate(
        store, eval_set, provider, generator=generator, settings=settings, concurrency=concurrency, progress=progress
    )
    reports = [first]
    current = {o.instruction: o.output for o in first.outputs}
    kept: list[int] = []
    for t in range(1, steps + 1):
        by_prompt = {template.format(instruction=x, previous=y): x for x, y in current.items()}
        step_set = EvalSet(
            name=f"{eval_set.name}-refine{t}", instructions=tuple(Instruction(instruction=p) for p in by_prompt)
        )
        rep = generate(
            store,
            step_set,
            provider,
            generator=f"{generator}/refine{t}",
            settings=settings,
            concurrency=concurrency,
            progress=progress,
        )
        reports.append(rep)
        n = 0
        for o in rep.outputs:
            x = by_prompt[o.instruction]
            if keep(x, current[x], o.output):
                current[x] = o.output
                n += 1
        kept.append(n)
    final = f"{generator}+refine{steps}"
    digest = store.put_eval_set(eval_set)
    stored = {o.instruction: o.output for o in store.get_outputs(digest, final)}
    stale = [x for x, y in stored.items() if x in current and current[x] != y]
    if stale:
        raise InputError(
            f"generator '{final}' already holds other chain answers (another filter or template?) for "
            f"{len(stale)} instructions, e.g. {stale[0][:40]!r}; choose another --name"
        )
    dataset = {i.instruction: i.dataset for i in eval_set.instructions}
    store.put_outputs(
        digest,
        [ModelOutput(instruction=x, output=y, generator=final, dataset=dataset.get(x)) for x, y in current.items()],
    )
    order = {i.instruction: k for k, i in enumerate(eval_set.instructions)}
    outputs = sorted(store.get_outputs(digest, final), key=lambda o: order.get(o.instruction, len(order)))
    return RefineChainReport(tuple(reports), final, tuple(outputs), tuple(kept))
