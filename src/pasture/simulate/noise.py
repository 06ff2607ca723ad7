"""Label-flip noise that is the same in every process: SHA-256 draws keyed by (seed, stream, example key).

Why not ``random`` or ``hash()``: AlpacaFarm seeded its annotator choices with Python's ``hash()``, which is
salted per process (PYTHONHASHSEED), so its "simulated" labels changed from run to run. Here every random
decision about one example is a pure function of a user seed, a named stream (so the flip draw and the
annotator draw for one example are independent) and the example's stable key (e.g. a judgment key, or
``example_key(instruction, output_a, output_b)``). Adding, removing or reordering other examples never
changes an example's draw.

Conventions: labels are preferences by slot as everywhere in pasture (1 = the first/reference output wins,
2 = the second/model output wins, 1.5 = tie, soft values in between). Flipping maps ``x`` to ``3 - x``:
a hard label swaps winner and loser, a tie stays a tie, a soft label ``1 + q`` becomes ``2 - q``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from pasture.errors import InputError
from pasture.records import canonical_json, sha256_text

FLIP_STREAM = "flip"
"""Stream name of the label-flip draw (see :func:`uniform_draw`)."""

_TWO_64 = float(1 << 64)


def uniform_draw(key: str, seed: int, stream: str) -> float:
    """A uniform number in [0, 1) determined by ``(seed, stream, key)`` and nothing else.

    Definition: the first 8 bytes (big-endian) of ``SHA-256("pasture-simulate|<stream>|<seed>|<key>")``
    divided by 2**64. Same inputs, same number, in every process, platform and Python version.
    """
    if "|" in stream:
        raise InputError(f"stream name must not contain '|': {stream!r}")
    digest = hashlib.sha256(f"pasture-simulate|{stream}|{int(seed)}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _TWO_64


def example_key(instruction: str, output_1: str, output_2: str) -> str:
    """A stable per-example key from its content: SHA-256 of the canonical JSON of the three texts.

    Use it when examples have no key of their own (a judgment key already is one). Order matters: the pair
    (a, b) and (b, a) are different examples.
    """
    return sha256_text(canonical_json({"instruction": instruction, "output_1": output_1, "output_2": output_2}))


def _check_p(p: float) -> float:
    if not isinstance(p, int | float) or math.isnan(p) or not 0.0 <= p <= 1.0:
        raise InputError(f"flip probability p must be in [0, 1], got {p!r}")
    return float(p)


def flip_mask(keys: Sequence[str], *, p: float, seed: int) -> list[bool]:
    """Which examples get their label flipped: ``uniform_draw(key, seed, "flip") < p`` per key.

    Each example flips independently with probability ``p``; the expected flip rate over n examples is p
    with standard deviation sqrt(p(1-p)/n).
    """
    p = _check_p(p)
    return [uniform_draw(k, seed, FLIP_STREAM) < p for k in keys]


def flip_label(label: float) -> float:
    """The flipped preference: ``3 - label`` (1 <-> 2, a tie stays 1.5, soft 1 + q -> 2 - q)."""
    if label is None or math.isnan(label) or not 1.0 <= label <= 2.0:
        raise InputError(f"a label must be a preference in [1, 2], got {label!r}")
    return 3.0 - float(label)


def flip_labels(labels: Sequence[float], keys: Sequence[str], *, p: float, seed: int) -> list[float]:
    """Noisy labels derived deterministically from clean ``labels``: each flips with probability ``p``.

    Parameters
    ----------
    labels:
        Clean preferences by slot (1 = first output wins, 2 = second wins, 1.5 tie, soft values allowed).
    keys:
        One stable key per example (same length as ``labels``), e.g. :func:`example_key` or a judgment key.
        The draw for an example depends only on its key, ``seed`` and the stream, never on its position.
    p:
        Flip probability in [0, 1]; AlpacaFarm used 0.25 for training labels (never for evaluation).
    seed:
        Integer seed; a different seed gives an independent set of flips.

    Returns the noisy labels, in the order given. Duplicated keys flip together (they are the same example).
    """
    if len(labels) != len(keys):
        raise InputError(f"labels and keys differ in length ({len(labels)} != {len(keys)})")
    mask = flip_mask(keys, p=p, seed=seed)
    out: list[float] = []
    for label, flip in zip(labels, mask, strict=True):
        value = flip_label(label)  # validates the label even when not flipped
        out.append(value if flip else float(label))
    return out
