"""Trained judges: a Bradley–Terry head over text features, distilled from another judge's verdicts.

Why: every other judge in pasture is a prompt over someone else's model. A store fills with a strong judge's
verdicts as users evaluate; a head trained on them is a judge that costs nothing, runs offline and
deterministically, and can be measured against the judge it imitates (``pasture.distill``, docs/judges.md
"Trained judges").

The head scores one output with features computed from its text (and the instruction), and prefers the
model slot with probability ``sigmoid(w · (f(output_2) - f(output_1)) / scale)``. The features enter only as
a difference, so the judge is symmetric (swapping the slots gives ``3 - preference``) and blind to the shown
order: its position bias is zero by construction. Its fingerprint names the feature set and version (as the
template digest) and digests the head's weights (as the weights digest), so two heads trained on different
data never share stored judgments.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pasture.analysis.style import markdown_counts
from pasture.errors import InputError, JudgeError
from pasture.judges.base import JudgeRequest, Verdict
from pasture.records import JudgeFingerprint, canonical_json, sha256_text

FeatureSet = Literal["length", "style", "style_words"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("length", "style", "style_words")
"""``length``: log characters only (the length-only predictor, the bias to beat); ``style``: length, markdown,
refusal, repetition and instruction-overlap features; ``style_words``: ``style`` plus hashed word
frequencies."""

FEATURES_VERSION = 1
"""Bumped whenever a feature's definition changes (it enters the fingerprint)."""

WORD_BUCKETS = 256
"""Hashed word-frequency buckets of the ``style_words`` set."""

HEAD_KIND = "pasture-distilled-judge"
"""The ``kind`` field of a saved head file (how :func:`is_head_file` recognises one)."""

DISTILLED_PROVIDER = "distilled"
"""Provider name in a distilled judge's fingerprint."""

DISTILLED_PROTOCOL = "bradley_terry_head"
"""Protocol name in a distilled judge's fingerprint."""

STYLE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_lines",
    "headers",
    "lists",
    "bold",
    "code_blocks",
    "empty",
    "refusal",
    "instruction_overlap",
    "type_token_ratio",
    "repeated_trigrams",
    "mean_word_length",
    "digits",
    "non_ascii",
    "questions",
    "ends_cleanly",
)
"""The dense features of one output, in column order (definitions in docs/judges.md)."""

_WORD = re.compile(r"[A-Za-z0-9']+")
_REFUSAL = re.compile(
    r"\b(?:i(?:'m| am) (?:sorry|unable|not able)|i can(?:not|'t) (?:help|assist|provide|answer|do)|"
    r"as an ai\b|as a language model)",
    re.IGNORECASE,
)
_CLEAN_END = set(".!?)]}\"'`*:")


def feature_names(feature_set: FeatureSet) -> tuple[str, ...]:
    """The column names of ``feature_set``."""
    if feature_set == "length":
        return ("log_chars",)
    if feature_set == "style":
        return STYLE_NAMES
    if feature_set == "style_words":
        return STYLE_NAMES + tuple(f"word_{i:03d}" for i in range(WORD_BUCKETS))
    raise JudgeError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")


def _bucket(word: str, cache: dict[str, int]) -> int:
    b = cache.get(word)
    if b is None:
        # a stable hash (Python's str hash changes between processes)
        b = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=4).digest(), "little") % WORD_BUCKETS
        cache[word] = b
    return b


def output_features(
    instruction: str, output: str, feature_set: FeatureSet, *, _buckets: dict[str, int] | None = None
) -> np.ndarray:
    """The features of one ``output`` to ``instruction`` (columns of :func:`feature_names`)."""
    n = len(output)
    if feature_set == "length":
        return np.array([math.log1p(n)])
    words = [w.lower() for w in _WORD.findall(output)]
    n_words = len(words)
    per_k = 1000.0 / n if n else 0.0
    headers, lists, bold = markdown_counts(output)
    stripped = output.strip()
    instr_words = {w.lower() for w in _WORD.findall(instruction)}
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    dense = [
        math.log1p(n),
        math.log1p(sum(1 for line in output.splitlines() if line.strip())),
        headers * per_k,
        lists * per_k,
        bold * per_k,
        output.count("```") // 2,
        float(not stripped),
        float(bool(_REFUSAL.search(output))),
        len(instr_words & set(words)) / len(instr_words) if instr_words else 0.0,
        len(set(words)) / n_words if n_words else 0.0,
        1.0 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0,
        sum(map(len, words)) / n_words if n_words else 0.0,
        sum(c.isdigit() for c in output) / n if n else 0.0,
        sum(ord(c) > 127 for c in output) / n if n else 0.0,
        output.count("?") * per_k,
        float(bool(stripped) and stripped[-1] in _CLEAN_END),
    ]
    if feature_set == "style":
        return np.array(dense)
    if feature_set != "style_words":
        raise JudgeError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    counts = np.zeros(WORD_BUCKETS)
    cache = {} if _buckets is None else _buckets
    for w in words:
        counts[_bucket(w, cache)] += 1.0
    if n_words:
        counts *= 100.0 / n_words  # per 100 words
    return np.concatenate([np.array(dense), counts])


class FeatureCache:
    """Features of each (instruction, output) computed once per run, keyed by the digest of both texts.

    Why: a distillation set holds each reference output in every model's pairs (10 models = 10 copies), and
    the held-out evaluations refit on the same texts many times.
    """

    def __init__(self, feature_set: FeatureSet) -> None:
        feature_names(feature_set)  # validates the name
        self.feature_set = feature_set
        self._rows: dict[str, np.ndarray] = {}
        self._buckets: dict[str, int] = {}

    def __call__(self, instruction: str, output: str) -> np.ndarray:
        key = sha256_text(canonical_json([instruction, output]))
        row = self._rows.get(key)
        if row is None:
            row = output_features(instruction, output, self.feature_set, _buckets=self._buckets)
            self._rows[key] = row
        return row

    def differences(
        self, instructions: Sequence[str], outputs_1: Sequence[str], outputs_2: Sequence[str]
    ) -> np.ndarray:
        """Per pair: features of output_2 minus features of output_1 (rows = pairs)."""
        rows = [self(i, o2) - self(i, o1) for i, o1, o2 in zip(instructions, outputs_1, outputs_2, strict=True)]
        return np.vstack(rows) if rows else np.zeros((0, len(feature_names(self.feature_set))))


@dataclass(frozen=True)
class DistilledHead:
    """A trained Bradley–Terry head: P(model slot wins) = sigmoid(sum(weights * diff / scales)).

    ``scales`` are the standard deviations of each feature difference on the training pairs (1 where that
    is 0); differences are divided by them, never centred, so the head stays symmetric. ``teacher`` names
    the judge it imitates (name and fingerprint digest); ``n_train`` counts the pairs it was fitted on.
    """

    feature_set: FeatureSet
    weights: tuple[float, ...]
    scales: tuple[float, ...]
    l2: float
    teacher_name: str
    teacher_digest: str
    n_train: int
    features_version: int = FEATURES_VERSION

    def __post_init__(self) -> None:
        k = len(feature_names(self.feature_set))
        if len(self.weights) != k or len(self.scales) != k:
            raise JudgeError(f"head of feature set {self.feature_set!r} needs {k} weights and scales")

    def logits(self, differences: np.ndarray) -> np.ndarray:
        """The linear predictor per pair (model slot minus reference slot)."""
        return np.asarray(differences / np.asarray(self.scales)) @ np.asarray(self.weights)

    def preferences(self, differences: np.ndarray) -> np.ndarray:
        """Preference by slot per pair, in [1, 2] (2 = model wins)."""
        return 1.0 + 1.0 / (1.0 + np.exp(-self.logits(differences)))

    def to_json(self) -> dict[str, object]:
        return {
            "kind": HEAD_KIND,
            "feature_set": self.feature_set,
            "features_version": self.features_version,
            "weights": list(self.weights),
            "scales": list(self.scales),
            "l2": self.l2,
            "teacher_name": self.teacher_name,
            "teacher_digest": self.teacher_digest,
            "n_train": self.n_train,
        }

    @property
    def weights_digest(self) -> str:
        """SHA-256 of the head's canonical JSON: any change of weight, scale or feature set changes it."""
        return sha256_text(canonical_json(self.to_json()))

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> DistilledHead:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read head file: {exc.strerror or exc}", path=p) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc}", path=p) from None
        if not isinstance(data, dict) or data.get("kind") != HEAD_KIND:
            raise InputError(f"not a distilled judge head (needs kind = {HEAD_KIND!r}); make one with "
                             "`pasture distill-judge`", path=p)  # fmt: skip
        if data.get("features_version") != FEATURES_VERSION:
            raise InputError(
                f"head made with features version {data.get('features_version')}, this pasture computes "
                f"version {FEATURES_VERSION}: retrain it with `pasture distill-judge`",
                path=p,
            )
        try:
            return cls(
                feature_set=data["feature_set"],
                weights=tuple(float(x) for x in data["weights"]),
                scales=tuple(float(x) for x in data["scales"]),
                l2=float(data["l2"]),
                teacher_name=str(data["teacher_name"]),
                teacher_digest=str(data["teacher_digest"]),
                n_train=int(data["n_train"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"head file field missing or malformed: {exc}", path=p) from None


def is_head_file(path: str | Path) -> bool:
    """True when ``path`` is a JSON file whose ``kind`` is a distilled judge head."""
    p = Path(path)
    if p.suffix != ".json" or not p.is_file():
        return False
    try:
        return bool(json.loads(p.read_text(encoding="utf-8")).get("kind") == HEAD_KIND)
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


class DistilledJudge:
    """A pairwise :class:`~pasture.judges.base.Judge` over a :class:`DistilledHead` (no model call).

    Deterministic (decoding ``temperature = 0`` in the fingerprint, so replicates are not independent) and
    free (price 0). The verdict's raw completion is the logit, enough to recompute the preference.
    """

    def __init__(self, head: DistilledHead, *, name: str | None = None) -> None:
        self.head = head
        self.name = name or f"distilled-{head.feature_set}-{head.teacher_name}"
        self._features = FeatureCache(head.feature_set)
        self._fingerprint = JudgeFingerprint(
            provider=DISTILLED_PROVIDER,
            model=f"bt-head:{head.feature_set}",
            weights_digest=head.weights_digest,
            template_digest=sha256_text(
                canonical_json(
                    {
                        "feature_set": head.feature_set,
                        "features_version": head.features_version,
                        "word_buckets": WORD_BUCKETS,
                    }
                )
            ),
            parser="bt_logistic",
            decoding={"temperature": 0},
            protocol=DISTILLED_PROTOCOL,
        )

    def __repr__(self) -> str:
        return f"DistilledJudge({self.name!r}, {self._fingerprint.digest[:12]})"

    @property
    def fingerprint(self) -> JudgeFingerprint:
        return self._fingerprint

    def preference(self, instruction: str, output_1: str, output_2: str) -> float:
        """Preference by slot (1 = reference wins .. 2 = model wins) for one pair."""
        diff = self._features(instruction, output_2) - self._features(instruction, output_1)
        return float(self.head.preferences(diff[None, :])[0])

    async def judge(self, request: JudgeRequest) -> Verdict:
        diff = self._features(request.instruction, request.output_2) - self._features(
            request.instruction, request.output_1
        )
        logit = float(self.head.logits(diff[None, :])[0])
        preference = 1.0 + 1.0 / (1.0 + math.exp(-logit))
        return Verdict(
            preference=preference,
            status="ok",
            raw_completion=json.dumps({"logit": logit}),
            cost_usd=0.0,
            latency_s=0.0,
        )

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
        return 0, 0

    def price_per_token(self) -> tuple[float, float] | None:
        return 0.0, 0.0


def load_distilled_judge(path: str | Path, *, name: str | None = None) -> DistilledJudge:
    """The judge saved at ``path`` by ``pasture distill-judge`` (a head JSON file)."""
    return DistilledJudge(DistilledHead.load(path), name=name)
