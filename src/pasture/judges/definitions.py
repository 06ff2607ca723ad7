"""Judge definitions: the built-in judges, user TOML files, and :func:`get_judge`.

A definition (:class:`JudgeSpec`) is plain data: provider name and arguments, protocol, template (a
built-in name or a file path), parser and decoding parameters. ``build()`` turns it into a live judge.
User files are small TOML documents (stdlib ``tomllib``)::

    name = "my-judge"
    protocol = "pairwise_graded"          # any registered protocol (pasture.judges.protocols), e.g.
                                          # pairwise_logprob | pairwise_graded | single_score | reference_score
                                          # | critique | response_score (the last two judge one response)
    template = "pairwise_graded_v1"       # a built-in template name, or a path (relative to this file)
    [provider]
    name = "openai"                       # any registered provider: openai, anthropic, llama_cpp, transformers
    model = "gpt-4o-mini"
    # base_url = "http://127.0.0.1:8000/v1"; api_key_env = "OPENAI_API_KEY" (keys never go in the file)
    [decoding]
    max_tokens = 512
    temperature = 0
    [parser]                              # optional; the protocol's default otherwise
    kind = "graded_verdict"               # logprob (labels = ["A", "B"], loose = true) | graded_verdict
                                          # | score (low = 1, high = 10) | critique

A programmatic judge names a function: ``[provider] name = "python"``, ``function = "module:qualname"``,
optional ``version``. A jury names its members: ``[provider] name = "jury"``, ``members = [...]``,
``aggregation``, optional ``weights`` (``pasture.judges.jury``).
"""

from __future__ import annotations

import difflib
import importlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from pasture.errors import InputError, JudgeError
from pasture.judges.base import Judge, ResponseJudge
from pasture.judges.judge import LLMJudge, ProgrammaticJudge
from pasture.judges.method_protocols import METHOD_PARSERS
from pasture.judges.parsers import (
    CritiqueParser,
    ExpectedDigitParser,
    GradedVerdictParser,
    LabelLogprobParser,
    Parser,
    ScoreParser,
)
from pasture.judges.prompts import BUILTIN_TEMPLATES, builtin_template
from pasture.judges.protocols import get_protocol, protocol_names
from pasture.judges.self_j import is_self_j_checkpoint, load_self_j_judge
from pasture.judges.templates import PromptTemplate
from pasture.judges.trained import is_head_file, load_distilled_judge
from pasture.providers import get_provider
from pasture.records import OFFICIAL_JUDGE_ALIASES

SMOLLM2 = "@smollm2"
"""Stands for the SmolLM2-135M-Instruct GGUF path (``pasture.local_models.smollm2_gguf_path``) in a spec."""

LLAMA_CPP_SERVER_URL = "http://127.0.0.1:8000/v1"
"""Where ``python -m llama_cpp.server`` listens by default."""

NEEDS_PATH = ""
"""A template that must be given at run time (``template=PATH``): third-party text pasture never ships."""


@dataclass(frozen=True)
class JudgeSpec:
    """A judge definition as data; ``build()`` makes the judge."""

    name: str
    provider: str
    provider_args: Mapping[str, Any]
    protocol: str
    template: str
    decoding: Mapping[str, Any] = field(default_factory=dict)
    parser: Mapping[str, Any] | None = None
    description: str = ""

    def with_overrides(self, **overrides: Any) -> JudgeSpec:
        """A copy with some parts replaced (see :func:`get_judge`)."""
        spec = self
        args = dict(spec.provider_args)
        if "provider" in overrides:
            new = overrides.pop("provider")
            if new != spec.provider:
                args = {"model": args["model"]} if "model" in args else {}
            spec = replace(spec, provider=new)
        for key in ("name", "protocol", "template", "parser", "description"):
            if key in overrides:
                value = overrides.pop(key)
                changes: dict[str, Any] = {key: str(value) if key == "template" else value}
                spec = replace(spec, **changes)
        if "decoding" in overrides:
            spec = replace(spec, decoding={**spec.decoding, **overrides.pop("decoding")})
        args.update({k: v for k, v in overrides.items() if v is not None})
        return replace(spec, provider_args=args)

    def build(self) -> Judge:
        """The live judge (an :class:`LLMJudge` of a single-response protocol judges with ``judge_response``)."""
        if self.provider == "python":
            return _programmatic(self)
        if self.provider == "jury":
            from pasture.judges.jury import jury_from_args

            return jury_from_args(self.name, self.provider_args)
        try:
            get_protocol(self.protocol)
        except JudgeError as exc:
            raise JudgeError(f"judge {self.name!r}: {exc}") from None
        provider = get_provider(self.provider, **_resolve_args(self.provider_args))
        return LLMJudge(
            name=self.name,
            provider=provider,
            template=load_template(self.template, judge=self.name),
            parser=make_parser(self.parser, self.protocol),
            decoding=self.decoding,
            protocol=self.protocol,
        )


def load_template(spec: str, *, judge: str = "?") -> PromptTemplate:
    """A built-in template by name, or a template file by path."""
    if spec == NEEDS_PATH:
        raise JudgeError(f"judge {judge!r} needs a template file", param="template")
    if spec in BUILTIN_TEMPLATES:
        return builtin_template(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise JudgeError(
            f"template {spec!r} is neither a built-in ({', '.join(sorted(BUILTIN_TEMPLATES))}) nor a file",
            param="template",
        )
    return PromptTemplate.from_path(path)


def make_parser(spec: Mapping[str, Any] | None, protocol: str) -> Parser[Any]:
    """A parser from its definition; None gives the protocol's default (``JudgeProtocol.default_parser``)."""
    if spec is None:
        spec = get_protocol(protocol).default_parser
    kind = spec.get("kind")
    unknown = set(spec) - {"kind", "labels", "loose", "low", "high"}
    if unknown:
        raise JudgeError(f"unknown parser option(s) {sorted(unknown)}")
    if kind == "logprob":
        labels = list(spec.get("labels", ["A", "B"]))
        if len(labels) != 2:
            raise JudgeError("a logprob parser needs exactly two labels (shown-first wins, shown-second wins)")
        return LabelLogprobParser(str(labels[0]), str(labels[1]), loose=bool(spec.get("loose", True)))
    if kind == "graded_verdict":
        return GradedVerdictParser()
    if kind == "score":
        return ScoreParser(int(spec.get("low", 1)), int(spec.get("high", 10)))
    if kind == "critique":
        return CritiqueParser()
    if kind == "expected_digit":
        return ExpectedDigitParser()
    if kind in METHOD_PARSERS:  # yes_no, item_list, rule_list, ... (pasture.judges.method_protocols)
        return METHOD_PARSERS[str(kind)]
    known = ", ".join(["logprob", "graded_verdict", "score", "critique", "expected_digit", *METHOD_PARSERS])
    raise JudgeError(f"unknown parser kind {kind!r}; known: {known}")


def _resolve_args(args: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(args)
    for key, value in out.items():
        if value == SMOLLM2:
            from pasture.local_models import smollm2_gguf_path

            out[key] = smollm2_gguf_path()
    return out


def _programmatic(spec: JudgeSpec) -> ProgrammaticJudge:
    target = str(spec.provider_args.get("function", ""))
    module_name, _, qualname = target.partition(":")
    if not module_name or not qualname:
        raise JudgeError(f"judge {spec.name!r}: function must be 'module:qualname', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise JudgeError(f"judge {spec.name!r}: cannot import {target!r}: {exc}") from None
    if not callable(obj):
        raise JudgeError(f"judge {spec.name!r}: {target!r} is not callable")
    version = spec.provider_args.get("version")
    return ProgrammaticJudge(obj, name=spec.name, version=str(version) if version is not None else None)


_LOGPROB_DECODING = {"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20}
_GRADED_DECODING = {"max_tokens": 512, "temperature": 0}
_SMALL_GRADED_DECODING = {"max_tokens": 96, "temperature": 0}


def _smollm2_server(
    name: str, protocol: str, template: str, decoding: Mapping[str, Any], description: str
) -> JudgeSpec:
    """A SmolLM2-135M judge behind a local OpenAI-compatible server (``python -m llama_cpp.server``).

    The GGUF path is in the arguments (``weights_path``) so that the fingerprint digests the weights the server
    is assumed to serve; override ``base_url`` for another port.
    """
    args = {"model": "SmolLM2-135M-Instruct", "base_url": LLAMA_CPP_SERVER_URL, "weights_path": SMOLLM2}
    return JudgeSpec(name, "openai", args, protocol, template, decoding, description=description)


def _gpt_4o_mini(name: str, protocol: str, template: str, decoding: Mapping[str, Any], description: str) -> JudgeSpec:
    """An OpenAI gpt-4o-mini judge (needs OPENAI_API_KEY); the built-ins on it differ in protocol and template."""
    return JudgeSpec(name, "openai", {"model": "gpt-4o-mini"}, protocol, template, decoding, description=description)


# the builders take (name, protocol, template, decoding, description); the one-offs are spelled out in full
BUILTIN_JUDGES: dict[str, JudgeSpec] = {
    s.name: s
    for s in (
        JudgeSpec(
            name="smollm2-logprob",
            provider="llama_cpp",
            provider_args={"model_path": SMOLLM2, "model": "SmolLM2-135M-Instruct"},
            protocol="pairwise_logprob",
            template="pairwise_logprob_v1",
            decoding=_LOGPROB_DECODING,
            description="SmolLM2-135M in process (llama.cpp); offline default; weak and position-biased",
        ),
        _smollm2_server(
            "smollm2-logprob-server", "pairwise_logprob", "pairwise_logprob_v1", _LOGPROB_DECODING,
            "SmolLM2-135M behind `python -m llama_cpp.server` (override base_url)",
        ),
        _smollm2_server(
            "smollm2-graded-server", "pairwise_graded", "pairwise_graded_v1", _SMALL_GRADED_DECODING,
            "graded verdict from SmolLM2 behind a local server (often unparsable: it is tiny)",
        ),
        JudgeSpec(
            name="weighted_alpaca_eval_gpt4_turbo",
            provider="openai",
            provider_args={"model": "gpt-4-1106-preview"},
            protocol="pairwise_logprob",
            template=NEEDS_PATH,
            decoding=dict(OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"].decoding),
            parser={"kind": "logprob", "labels": ["m", "M"], "loose": False},
            description="AlpacaEval 2's official judge (template: alpaca_eval_clf.txt); reuses imported annotations",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-logprob", "pairwise_logprob", "pairwise_logprob_v1",
            {"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 5},
            "OpenAI gpt-4o-mini, one token, label probabilities (needs OPENAI_API_KEY)",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-graded", "pairwise_graded", "pairwise_graded_v1", _GRADED_DECODING,
            "OpenAI gpt-4o-mini, reasoning then A>>B..B>>A (needs OPENAI_API_KEY)",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-score", "single_score", "single_score_v1", _GRADED_DECODING,
            "OpenAI gpt-4o-mini grades each output 1-10; preference from the two grades",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-reference", "reference_score", "reference_score_v1", _GRADED_DECODING,
            "OpenAI gpt-4o-mini grades the model output against the reference output (5 = as good)",
        ),
        JudgeSpec(
            name="claude-graded",
            provider="anthropic",
            provider_args={"model": "claude-haiku-4-5"},
            protocol="pairwise_graded",
            template="pairwise_graded_v1",
            decoding={"max_tokens": 512},
            description="Anthropic Claude Haiku 4.5, reasoning then A>>B..B>>A (needs ANTHROPIC_API_KEY)",
        ),
        _smollm2_server(
            "smollm2-critique-server", "critique", "critique_v1", _SMALL_GRADED_DECODING,
            "one response: SmolLM2 behind a local server writes a critique and a verdict good/bad",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-critique", "critique", "critique_v1", _GRADED_DECODING,
            "one response: gpt-4o-mini writes what is wrong (or that nothing is) and a verdict good/bad",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-response-score", "response_score", "single_score_v1", _GRADED_DECODING,
            "one response: gpt-4o-mini grades it 1-10 on its own",
        ),
        _smollm2_server(
            "smollm2-rule-check-server", "rule_check", "rule_check_v1", {"max_tokens": 32, "temperature": 0},
            "one response and one rule: SmolLM2 behind a local server answers yes/no (AutoRule's verifier)",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-rule-check", "rule_check", "rule_check_v1", {"max_tokens": 64, "temperature": 0},
            "one response and one rule: gpt-4o-mini answers yes/no (AutoRule's verifier)",
        ),
        _smollm2_server(
            "smollm2-reference-grade-server", "reference_grade", "reference_score_v1", _SMALL_GRADED_DECODING,
            "one response graded 1-10 against a reference by SmolLM2 behind a local server (PUGC)",
        ),
        _gpt_4o_mini(
            "gpt-4o-mini-reference-grade", "reference_grade", "reference_score_v1", _GRADED_DECODING,
            "one response graded 1-10 against a reference by gpt-4o-mini (PUGC's reference-guided score)",
        ),
        JudgeSpec(
            name="longer-wins",
            provider="python",
            provider_args={"function": "pasture.judges.judge:longer_output_wins"},
            protocol="programmatic",
            template="",
            description="programmatic: the longer output wins (a length-biased judge for tests of methods)",
        ),
    )
}  # fmt: skip
"""The built-in judges by name (``pasture judges`` lists them)."""


def load_spec(path: str | Path) -> JudgeSpec:
    """Read a judge definition from a TOML file; errors name the file and the field."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read judge file: {exc.strerror or exc}", path=p) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid TOML: {exc}", path=p) from None
    allowed = {"name", "protocol", "template", "provider", "decoding", "parser", "description"}
    unknown = set(data) - allowed
    if unknown:
        raise InputError(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}", path=p)
    provider = data.get("provider")
    if not isinstance(provider, dict) or "name" not in provider:
        raise InputError("needs a [provider] table with a name", path=p, field="provider")
    if any("key" in k.lower() and k != "api_key_env" for k in provider):
        raise InputError("API keys never go in judge files; name the variable with api_key_env", path=p)
    args = {k: v for k, v in provider.items() if k != "name"}
    protocol = str(data.get("protocol", "programmatic" if provider["name"] == "python" else ""))
    template = str(data.get("template", ""))
    if provider["name"] == "jury":  # members: judge names, or TOML paths relative to this file
        protocol = "jury"
        if isinstance(args.get("members"), list):
            args["members"] = [
                str(p.parent / m) if str(m).endswith(".toml") and not Path(m).expanduser().is_absolute() else m
                for m in args["members"]
            ]
    elif provider["name"] != "python":
        if protocol not in protocol_names():
            raise InputError(f"protocol must be one of {protocol_names()}", path=p, field="protocol")
        if template and template not in BUILTIN_TEMPLATES:
            candidate = Path(template).expanduser()
            template = str(candidate if candidate.is_absolute() else (p.parent / candidate))
    for key in ("decoding", "parser"):
        if key in data and not isinstance(data[key], dict):
            raise InputError("must be a table", path=p, field=key)
    return JudgeSpec(
        name=str(data.get("name", p.stem)),
        provider=str(provider["name"]),
        provider_args=args,
        protocol=protocol,
        template=template,
        decoding=dict(data.get("decoding", {})),
        parser=data.get("parser"),
        description=str(data.get("description", "")),
    )


def get_spec(name_or_path: str | Path) -> JudgeSpec:
    """A built-in definition by name, or a TOML file's."""
    key = str(name_or_path)
    if key in BUILTIN_JUDGES:
        return BUILTIN_JUDGES[key]
    path = Path(key).expanduser()
    if path.suffix == ".toml" or path.is_file():
        return load_spec(path)
    close = difflib.get_close_matches(key, BUILTIN_JUDGES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else " (`pasture judges` lists them)"
    raise JudgeError(f"unknown judge {key!r}: not a built-in nor a .toml file{hint}", param="judge")


def get_judge(name_or_path: str | Path, **overrides: Any) -> Judge:
    """Build a judge from a built-in name or a TOML file, with parts overridden.

    ``overrides`` may replace ``template`` (built-in name or path), ``protocol``, ``parser`` (a parser
    definition), ``name``, ``provider`` (a provider name; its arguments then start from ``model`` only),
    merge into ``decoding`` (a dict), or set any provider argument (``model``, ``base_url``,
    ``api_key_env``, ``endpoint``, ``timeout_s``, ``model_path``, ...). Examples::

        get_judge("weighted_alpaca_eval_gpt4_turbo", template="../shared/alpacaeval/judge_config/alpaca_eval_clf.txt")
        get_judge("smollm2-logprob-server", base_url="http://127.0.0.1:8080/v1")
        get_judge("gpt-4o-mini-graded", model="gpt-4o")
        get_judge("distilled/head.json")   # a judge saved by `pasture distill-judge`
        get_judge("out/self_j")            # a checkpoint saved by `pasture train self_j` (pairwise by grades)
    """
    if is_head_file(name_or_path):
        # a head saved by `pasture distill-judge` (pasture.judges.trained): only its name can be overridden
        extra = sorted(set(overrides) - {"name"})
        if extra:
            raise JudgeError(f"a distilled judge ({name_or_path}) takes no override but name; got {extra}")
        return load_distilled_judge(name_or_path, name=overrides.get("name"))
    if is_self_j_checkpoint(name_or_path):
        # a checkpoint saved by `pasture train self_j` (pasture.judges.self_j): pairwise by its grades
        return _self_j(name_or_path, "pairwise", overrides)
    return get_spec(name_or_path).with_overrides(**overrides).build()


def _self_j(path: str | Path, kind: Literal["pairwise", "response"], overrides: Mapping[str, Any]) -> LLMJudge:
    extra = sorted(set(overrides) - {"name", "device"})
    if extra:
        raise JudgeError(f"a Self-J judge ({path}) takes no override but name and device; got {extra}")
    return load_self_j_judge(path, kind=kind, name=overrides.get("name"), device=overrides.get("device", "cpu"))


def get_response_judge(name_or_path: str | Path, **overrides: Any) -> ResponseJudge:
    """:func:`get_judge` for a judge of ONE response (protocol ``critique``, ``response_score``, ...), typed
    for ``pasture.annotate.annotate_responses``; a pairwise judge is a clear error. A Self-J checkpoint folder
    gives its single-response judge (protocol ``expected_digit``)."""
    if is_self_j_checkpoint(name_or_path):
        return _self_j(name_or_path, "response", overrides)
    judge = get_judge(name_or_path, **overrides)
    if isinstance(judge, LLMJudge) and judge.kind == "response":
        return judge
    raise JudgeError(
        f"judge {judge.name!r} compares pairs (protocol {judge.fingerprint.protocol}); a single-response judge "
        f"has one of the protocols {', '.join(protocol_names('response'))}"
    )


def list_judges(template: str | Path | None = None) -> pd.DataFrame:
    """The built-in judges as a table: provider, model, protocol, fingerprint digest (first 12 hex), notes.

    A judge that cannot be built here (a missing optional package or file) is listed with the reason in
    ``notes`` and an empty digest. The official AlpacaEval judge needs its template file: with
    ``template`` it is built from that file; without, its documented alias digest is shown.
    """
    rows = []
    for name, spec in BUILTIN_JUDGES.items():
        notes = spec.description
        digest = ""
        try:
            if spec.template == NEEDS_PATH and spec.provider != "python":
                if template is None:
                    alias = OFFICIAL_JUDGE_ALIASES.get(name)
                    digest = alias.digest[:12] if alias else ""
                    notes += " [digest of the documented alias; build it with --template PATH]"
                else:
                    digest = spec.with_overrides(template=str(template)).build().fingerprint.digest[:12]
            else:
                digest = spec.build().fingerprint.digest[:12]
        except (JudgeError, InputError) as exc:
            notes = f"unavailable here: {exc}"
        model = str(spec.provider_args.get("model") or spec.provider_args.get("function", ""))
        rows.append(
            {"judge": name, "provider": spec.provider, "model": model, "protocol": spec.protocol,
             "fingerprint": digest, "notes": notes}
        )  # fmt: skip
    return pd.DataFrame(rows).set_index("judge")
