"""Length-controlled win rate (LC), the quantity of AlpacaEval's ``length_controlled_v1`` GLM.

Why: LLM judges prefer longer outputs, so a raw win rate rewards verbosity. LC asks "how often would the
model win if its outputs were as long as the reference's?" by fitting, per model, a logistic model of the
judge's preference and reading it out at zero length difference. Definitions are in docs/metrics.md.

The fit is the official one, feature for feature (so that identical inputs give identical numbers):

- label ``p = preference - 1`` (soft, in [0, 1]); features ``tanh((len_1 - len_2) / sd)`` with ``sd`` the
  standard deviation (ddof=1) of ``len_1 - len_2`` over all the model's rows, the instruction difficulty
  ``d_i``, and a model indicator (1 on the model's rows); no intercept;
- rows of the gamed baselines (the reference prompted to be verbose / concise) are appended with the model
  indicator at 0 and total weight 0.2 split equally between the baselines: they regularise the length slope;
- L1-penalised logistic regression (liblinear), soft labels through duplicated rows weighted ``p`` and
  ``1 - p``, ``C`` chosen by 5-fold grouped cross-validation (a row and its duplicate share a fold) on the
  weighted log loss, then refit on all rows;
- ``LC = 100 * mean_i sigmoid(c + b * d_i)`` over the model's rows (failed ones too), ``c`` and ``b`` the
  model-indicator and difficulty coefficients.

Difficulty lookup (:class:`LCInputs` ``difficulty_lookup``):

- ``"text"`` (default, correct): each row gets the difficulty of ITS instruction, matched by text, and rows are
  put in a canonical order (the difficulty vector's, i.e. the eval set's) before the fit, so shuffling a file
  never changes the result;
- ``"position"`` (AlpacaEval's board, on request only): row k of the model's rows, in the order they are given
  (a file's order: :func:`pasture.scoring.score_files` keeps it), gets the difficulty of eval-set instruction
  k, and the fit runs in that order. Upstream does this (``reset_index`` then ``instruction_difficulty[k]``), so
  the rows after a missing one, and reordered rows, get another instruction's difficulty. On a complete
  file in eval-set order both lookups give identical numbers; on the 6 AlpacaEval 2 board files with missing
  rows they differ by up to 3.3 LC points, and only ``"position"`` reproduces the board (docs/metrics.md:
  scored alone, max |LC - board| 2.98 by text, 0.51 by position). Every result counts the
  rows whose position is not their instruction's (``n_off_position``) and its note says when the board's
  lookup differs, so a misaligned number never passes unmarked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, TypedDict

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.special import expit
from sklearn import __version__ as _sklearn_version
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

try:  # scikit-learn's private liblinear binding: the very call LogisticRegression.fit makes, minus its checks
    from sklearn.svm import _liblinear
    from sklearn.svm._base import _get_liblinear_solver_type

    _L1_LOGISTIC_SOLVER: int | None = int(_get_liblinear_solver_type("ovr", "l1", "logistic_regression", False))
except (ImportError, ValueError):  # pragma: no cover - a future scikit-learn without it uses the public estimator
    _L1_LOGISTIC_SOLVER = None

from pasture.errors import InputError
from pasture.records import _Record

GLM_NAME = "length_controlled_v1"
"""The official GLM whose numbers :func:`length_controlled_winrate` reproduces."""

DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 4, 10))
"""Grid of inverse L1 strengths searched by cross-validation (scikit-learn's default 10-point grid)."""

GAMED_TOTAL_WEIGHT = 0.2
"""Total sample weight of the gamed baselines' rows, split equally between the baselines (upstream: 0.2 / 2)."""

_L1_PENALTY: dict[str, object] = (
    {"l1_ratio": 1.0} if tuple(int(x) for x in _sklearn_version.split(".")[:2]) >= (1, 8) else {"penalty": "l1"}
)
"""How to ask scikit-learn for a pure L1 penalty (``penalty`` is deprecated from 1.8 on)."""

LIBLINEAR_SEED = 123
"""random_state of every liblinear fit, as upstream (liblinear permutes coordinates with it)."""

Method = Literal["length_controlled_v1", "length_only", "reference", "not_fit", "not_identified"]
DifficultySource = Literal["official", "shipped", "estimated", "user", "none"]
DifficultyLookup = Literal["text", "position"]
DIFFICULTY_LOOKUPS: tuple[DifficultyLookup, ...] = ("text", "position")
"""How a row finds its difficulty: by its instruction's text (correct) or by its row position (AlpacaEval's board)."""
GamedSource = Literal["official", "judged", "shipped", "rebuilt", "user", "none"]


class _CommonFields(TypedDict):
    """The :class:`LCResult` fields every outcome of :func:`length_controlled_winrate` shares."""

    generator: str
    difficulty_source: DifficultySource
    gamed_source: GamedSource
    n_rows: int
    difficulty_lookup: DifficultyLookup
    n_off_position: int | None


FEATURES_FULL = ("length", "difficulty", "model")
FEATURES_LENGTH_ONLY = ("length", "model")


class LCResult(_Record):
    """The length-controlled win rate of one model against the reference, with what produced it."""

    generator: str = Field(description="The evaluated model (slot 2).")
    length_controlled_winrate: float = Field(
        description="100 x mean over the model's rows of sigmoid(coef_model + coef_difficulty x d_i): the "
        "predicted win rate at zero length difference."
    )
    lc_standard_error: float = Field(
        description="100 x standard error (ddof=1) of those per-row predictions, as upstream defines it; it "
        "ignores the uncertainty of the fit (see the bootstrap interval for that)."
    )
    coef_length: float = Field(description="Coefficient of tanh((len_1 - len_2) / sd); negative = judge likes length.")
    coef_difficulty: float = Field(description="Coefficient of the instruction difficulty (0 in the length-only GLM).")
    coef_model: float = Field(description="Coefficient of the model indicator: the model's log-odds at equal length.")
    length_sd: float = Field(description="sd (ddof=1) of len_1 - len_2 over the model's rows, in characters.")
    C: float = Field(description="Inverse L1 strength chosen by grouped cross-validation (NaN when no fit ran).")
    method: Method = Field(
        description="'length_controlled_v1' (full GLM), 'length_only' (no difficulty term: the fallback when no "
        "difficulty is available), 'reference' (the model is the reference: LC = 50 by construction), 'not_fit' "
        "(no parsed preference, no length variation or too few instructions: LC is NaN and the notes say why) or "
        "'not_identified' (the cross-validated L1 penalty set the model coefficient to exactly 0, so the "
        "'LC' would be the penalty's choice, not a measurement: LC is NaN, the coefficients are kept)."
    )
    difficulty_source: DifficultySource = Field(
        description="Where d_i came from: 'official' file, 'shipped' (pasture's fixed AlpacaEval 2 vector), "
        "'estimated' by a joint fit over the models scored together, 'user' vector, or 'none'."
    )
    gamed_source: GamedSource = Field(
        description="Where the gamed-baseline rows came from: 'official' file, 'shipped' (rebuilt from pasture's "
        "shipped lengths and the published coefficients), 'rebuilt' from published coefficients and outputs, "
        "'user' rows, or 'none' (no length regulariser)."
    )
    n_rows: int = Field(description="The model's rows (pairs), failed ones included: the rows LC averages over.")
    difficulty_lookup: DifficultyLookup = Field(
        default="text",
        description="How each row found its difficulty: 'text' (its instruction's; the default) or 'position' "
        "(row k gets eval-set instruction k's, as AlpacaEval's board does; see the module docstring).",
    )
    n_off_position: int | None = Field(
        default=None,
        description="The model's rows, in the order given, whose position k is not eval-set instruction k "
        "(missing or reordered rows): where AlpacaEval's positional lookup gives a row another instruction's "
        "difficulty. 0 for a complete file in eval-set order; None when the eval set's order is not known.",
    )
    n_fit: int = Field(description="The model's rows with a parsed preference: the rows the GLM is fit on.")
    n_gamed: int = Field(description="Gamed-baseline rows appended to the fit.")
    notes: tuple[str, ...] = Field(default=(), description="Fallbacks and caveats the user must see.")

    @property
    def note(self) -> str:
        """The short caveat a table row shows (``lc_note``): empty when LC is the official GLM on sound inputs."""
        return lc_note(
            self.method, self.difficulty_source, self.gamed_source, self.difficulty_lookup, self.n_off_position
        )


def lc_note(
    method: str,
    difficulty_source: str,
    gamed_source: str,
    difficulty_lookup: str = "text",
    n_off_position: int | None = None,
) -> str:
    """What a reader of one LC cell must know, in a few words ('' for the full GLM with fixed inputs).

    Said whenever LC was computed without the gamed-baseline rows, without a difficulty term, with a
    difficulty estimated from the models scored together (so it moves with them), or not at all; and when
    rows sit off their eval-set position (``n_off_position`` > 0), so the two difficulty lookups differ: by
    text, that AlpacaEval's board would give another number and how to get it; by position, that this is
    that board-compatible, misaligned number. A complete file in eval-set order gets neither.
    """
    if method == "reference":
        return "reference: 50 by construction"
    if method == "not_fit":
        return "not fit (see notes)"
    if method == "not_identified":
        return "not identified: L1 penalty zeroed the model term"
    parts = []
    if method == "length_only":
        parts.append("length-only GLM (no difficulty)")
    elif difficulty_source == "estimated":
        parts.append("difficulty estimated from the models scored together")
    if gamed_source == "none":
        parts.append("without gamed-baseline rows")
    if method == "length_controlled_v1" and n_off_position:
        if difficulty_lookup == "position":
            parts.append(f"difficulty by row position as AlpacaEval's board: {n_off_position} rows misaligned")
        else:
            parts.append(
                f"AlpacaEval's board differs ({n_off_position} rows off position; "
                "pasture score FILE --difficulty-lookup position reproduces it)"
            )
    return "; ".join(parts)


@dataclass(frozen=True)
class LCInputs:
    """What the LC fit needs beyond the model's own rows, and where it came from.

    ``difficulty`` maps instruction text to difficulty (``None``: length-only GLM). ``gamed`` holds the gamed
    baselines' rows with columns ``model``, ``instruction``, ``preference`` (soft, in [1, 2] like every
    pasture preference), ``std_delta_len`` (already standardised per baseline) and ``difficulty``; ``None``
    means no regulariser. ``notes`` travel into every :class:`LCResult`.

    ``eval_set_difficulty`` is the whole eval set's difficulty in eval-set order (index: the instruction's
    text, or its SHA-256 digest where the text is not known; NaN where an instruction has none), or ``None``
    when the eval set's order is not known. ``difficulty_lookup="position"`` (AlpacaEval's board) gives row k
    of a model's rows ``eval_set_difficulty.iloc[k]`` and needs it; ``"text"`` (the default) uses it only to
    count the rows that sit off their eval-set position (:attr:`LCResult.n_off_position`).
    """

    difficulty: pd.Series | None = None
    gamed: pd.DataFrame | None = None
    difficulty_source: DifficultySource = "none"
    gamed_source: GamedSource = "none"
    notes: tuple[str, ...] = field(default=())
    difficulty_lookup: DifficultyLookup = "text"
    eval_set_difficulty: pd.Series | None = None

    def __post_init__(self) -> None:
        if self.difficulty_lookup not in DIFFICULTY_LOOKUPS:
            raise InputError(
                f"unknown difficulty lookup {self.difficulty_lookup!r}; choose one of {', '.join(DIFFICULTY_LOOKUPS)}"
            )
        if self.difficulty_lookup == "position" and self.eval_set_difficulty is None:
            raise InputError(
                "difficulty lookup 'position' needs eval_set_difficulty, the whole eval set's difficulty in "
                "eval-set order (prepare_lc_inputs builds it on AlpacaEval 2's eval set, or when given eval_set)"
            )

    @property
    def method(self) -> Method:
        vector = self.eval_set_difficulty if self.difficulty_lookup == "position" else self.difficulty
        return "length_controlled_v1" if vector is not None else "length_only"

    def describe(self) -> str:
        """One line for terminals and manifests: which inputs the LC numbers used (and the lookup, when not by text)."""
        lookup = (
            ", difficulty lookup=position (AlpacaEval's board: row k gets eval-set instruction k's difficulty)"
            if self.difficulty_lookup == "position"
            else ""
        )
        return f"LC {self.method}: difficulty={self.difficulty_source}, gamed baselines={self.gamed_source}{lookup}" + (
            f" ({'; '.join(self.notes)})" if self.notes else ""
        )

    def positional_difficulty(self, n_rows: int, generator: str = "") -> np.ndarray:
        """The difficulties of rows 0..n_rows-1 by position: eval-set instruction k's for row k.

        An InputError when there are more rows than eval-set instructions or one of the first ``n_rows``
        eval-set instructions has no difficulty: a position with nothing at it is never a silent zero.
        """
        if self.eval_set_difficulty is None:
            raise InputError("difficulty lookup 'position' needs eval_set_difficulty")
        who = repr(generator) if generator else "the model"
        m = len(self.eval_set_difficulty)
        if n_rows > m:
            raise InputError(
                f"difficulty lookup 'position': {who} has {n_rows} rows but the eval set {m} instructions; row k "
                f"takes eval-set instruction k's difficulty, so at most {m} rows fit (look up by text instead)"
            )
        d = self.eval_set_difficulty.to_numpy(float)[:n_rows]
        if np.isnan(d).any():
            k = int(np.flatnonzero(np.isnan(d))[0])
            raise InputError(
                f"difficulty lookup 'position': eval-set instruction {k} (row {k} of {who}) has no difficulty; "
                "the difficulty vector must cover the whole eval set"
            )
        return d


def count_off_position(instructions: Sequence[str] | np.ndarray, eval_order: pd.Index | Sequence[str]) -> int:
    """How many of ``instructions`` (a model's rows in their order) are not eval-set instruction k at row k.

    Rows past the end of the eval set count as off position. 0 means a positional lookup and a lookup by
    text give every row the same difficulty.
    """
    rows = np.asarray(list(instructions), dtype=object)
    order = np.asarray(list(eval_order), dtype=object)
    k = min(len(rows), len(order))
    return int((rows[:k] != order[:k]).sum()) + max(0, len(rows) - len(order))


@dataclass(frozen=True)
class LCDesign:
    """The arrays of one model's LC fit, in fit order (gamed rows first, then the model's rows).

    ``X``/``p``/``w`` are the training features, soft labels in [0, 1] and weights; ``X_test`` the model's
    rows at zero length difference (one per pair, failed ones included); ``test_instructions`` their texts;
    ``fit_instructions`` the texts of the model's fitted rows (the rows after the gamed ones);
    ``features`` the column names.
    """

    X: np.ndarray
    p: np.ndarray
    w: np.ndarray
    X_test: np.ndarray
    test_instructions: np.ndarray
    fit_instructions: np.ndarray
    features: tuple[str, ...]
    length_sd: float
    n_gamed: int
    n_fit: int


REQUIRED_COLUMNS = ("instruction", "len_1", "len_2", "preference")


def canonical_rows(rows: pd.DataFrame, difficulty: pd.Series | None) -> pd.DataFrame:
    """The model's rows in a canonical order: the difficulty vector's order, else by instruction text.

    Every instruction must have a difficulty when a vector is given: a missing one is an error, never a
    silent zero or a positional guess.
    """
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing_cols:
        raise InputError(f"LC rows lack column(s) {', '.join(missing_cols)}")
    frame = rows.reset_index(drop=True)
    tiebreak = frame["output_2"] if "output_2" in frame.columns else pd.Series(np.arange(len(frame)), dtype=float)
    if difficulty is not None:
        position = pd.Series(np.arange(len(difficulty)), index=difficulty.index)
        pos = frame["instruction"].map(position)
        if pos.isna().any():
            bad = str(frame.loc[pos.isna(), "instruction"].iloc[0])
            raise InputError(
                f"{int(pos.isna().sum())} instruction(s) have no difficulty, e.g. {bad[:60]!r}; "
                "pass a difficulty vector that covers the eval set, or estimate one"
            )
        key = pd.DataFrame({"a": pos.to_numpy(), "b": tiebreak.to_numpy()})
    else:
        key = pd.DataFrame({"a": frame["instruction"].to_numpy(), "b": tiebreak.to_numpy()})
    order = key.sort_values(["a", "b"], kind="mergesort").index.to_numpy()
    return frame.iloc[order].reset_index(drop=True)


def build_design(rows: pd.DataFrame, inputs: LCInputs, *, gamed_weight: float = GAMED_TOTAL_WEIGHT) -> LCDesign:
    """Features, soft labels and weights of one model's fit (see the module docstring).

    By text, rows are put in :func:`canonical_rows` order and each gets its instruction's difficulty; by
    position, rows keep the order given and row k gets eval-set instruction k's
    (:meth:`LCInputs.positional_difficulty`).
    """
    positional = inputs.difficulty_lookup == "position"
    difficulty = inputs.difficulty
    if positional:
        missing_cols = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
        if missing_cols:
            raise InputError(f"LC rows lack column(s) {', '.join(missing_cols)}")
        frame = rows.reset_index(drop=True)
    else:
        frame = canonical_rows(rows, difficulty)
    delta = frame["len_1"].to_numpy(float) - frame["len_2"].to_numpy(float)
    sd = float(np.std(delta, ddof=1)) if len(delta) > 1 else float("nan")
    if not np.isfinite(sd) or sd == 0:
        raise InputError("LC needs at least two rows whose length differences vary")
    length_feat = np.tanh(delta / sd)
    pref = frame["preference"].to_numpy(float)
    scored = ~np.isnan(pref)
    full = inputs.method == "length_controlled_v1"
    if positional:
        d = inputs.positional_difficulty(len(frame))
    else:
        d = frame["instruction"].map(difficulty).to_numpy(float) if full else np.zeros(len(frame))
    ones = np.ones(len(frame))
    cols = [length_feat, d, ones] if full else [length_feat, ones]
    X_model = np.column_stack(cols)
    X_test = np.column_stack([np.zeros(len(frame)), d, ones] if full else [np.zeros(len(frame)), ones])
    parts_X, parts_p, parts_w = [], [], []
    n_gamed = 0
    gamed = inputs.gamed
    if gamed is not None and len(gamed):
        gp = gamed["preference"].to_numpy(float)
        keep = ~np.isnan(gp)
        n_baselines = gamed["model"].nunique()
        g_len = np.tanh(gamed["std_delta_len"].to_numpy(float))
        g_cols = [g_len, gamed["difficulty"].to_numpy(float)] if full else [g_len]
        Xg = np.column_stack([*g_cols, np.zeros(len(gamed))])[keep]
        parts_X.append(Xg)
        parts_p.append(gp[keep] - 1.0)
        parts_w.append(np.full(int(keep.sum()), gamed_weight / n_baselines))
        n_gamed = int(keep.sum())
    parts_X.append(X_model[scored])
    parts_p.append(pref[scored] - 1.0)
    parts_w.append(np.ones(int(scored.sum())))
    return LCDesign(
        X=np.vstack(parts_X),
        p=np.concatenate(parts_p),
        w=np.concatenate(parts_w),
        X_test=X_test,
        test_instructions=frame["instruction"].to_numpy(),
        fit_instructions=frame["instruction"].to_numpy()[scored],
        features=FEATURES_FULL if full else FEATURES_LENGTH_ONLY,
        length_sd=sd,
        n_gamed=n_gamed,
        n_fit=int(scored.sum()),
    )


@lru_cache(maxsize=1)
def _liblinear_seeds(n: int = 64) -> tuple[int, ...]:
    """The seeds scikit-learn hands liblinear along a path of C values: successive draws of
    ``RandomState(LIBLINEAR_SEED).randint(iinfo('i').max)``."""
    state = np.random.RandomState(LIBLINEAR_SEED)
    return tuple(int(state.randint(np.iinfo("i").max)) for _ in range(n))


def fit_l1_logistic(X: np.ndarray, p: np.ndarray, w: np.ndarray, C: float, *, draw: int = 0) -> np.ndarray:
    """Coefficients minimising ``||beta||_1 + C * sum_j w_j * logloss(p_j, sigmoid(x_j beta))`` (liblinear).

    Soft labels enter as two copies of every row, labelled 1 with weight ``w p`` and 0 with weight
    ``w (1 - p)``, which is the same objective. liblinear permutes coordinates with a seed: the ``draw``-th
    number of a ``RandomState(LIBLINEAR_SEED)``, as scikit-learn draws one per C along a regularisation path
    (the final refit uses the first draw), so results are reproducible and equal to the official fit's.
    """
    X2, y2, w2 = _duplicate(X, p, w)
    if _L1_LOGISTIC_SOLVER is not None:
        # liblinear itself, called as scikit-learn's _fit_liblinear calls it (no intercept: bias -1; classes
        # 0/1 with unit class weights; epsilon 0.1 unused by logistic loss); skipping its input validation
        # halves the time of the 51 fits per model and changes no number (tests/metrics/test_lc.py pins them)
        _liblinear.set_verbosity_wrap(0)
        coef, _ = _liblinear.train_wrap(
            np.ascontiguousarray(X2, dtype=np.float64),
            y2.astype(np.float64),
            False,
            _L1_LOGISTIC_SOLVER,
            1e-4,
            -1.0,
            C,
            np.ones(2),
            100,
            _liblinear_seeds()[draw],
            0.1,
            np.ascontiguousarray(w2, dtype=np.float64),
        )
        return np.asarray(coef[0], dtype=float)
    state = np.random.RandomState(LIBLINEAR_SEED)
    for _ in range(draw):
        state.randint(np.iinfo("i").max)
    model = LogisticRegression(C=C, solver="liblinear", fit_intercept=False, random_state=state, **_L1_PENALTY)
    model.fit(X2, y2, sample_weight=w2)
    return np.asarray(model.coef_[0], dtype=float)


def _duplicate(X: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(p)
    return (
        np.vstack([X, X]),
        np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)]),
        np.concatenate([p * w, (1.0 - p) * w]),
    )


@lru_cache(maxsize=8)
def _group_folds(n: int, n_splits: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(train, test) row indices of the grouped folds over n duplicated rows, a row and its copy in one group.

    They depend on n only, so they are computed once per size (GroupKFold's greedy assignment is a Python
    loop over the groups, a fifth of a model's fit time when repeated)."""
    groups = np.concatenate([np.arange(n), np.arange(n)])
    dummy = np.zeros(2 * n)
    return tuple(
        (train[train < n], test[test < n]) for train, test in GroupKFold(n_splits=n_splits).split(dummy, dummy, groups)
    )


def weighted_log_loss(p: np.ndarray, q: np.ndarray, w: np.ndarray) -> float:
    """``-mean_j w_j (p_j log q_j + (1 - p_j) log(1 - q_j))`` with q clipped to [1e-15, 1 - 1e-15]: the CV score."""
    q = np.clip(q, 1e-15, 1 - 1e-15)
    return float(-np.mean(w * (p * np.log(q) + (1 - p) * np.log(1 - q))))


def select_C(
    X: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    *,
    Cs: Sequence[float] = DEFAULT_CS,
    n_splits: int = 5,
) -> float:
    """The C of ``Cs`` with the lowest mean held-out weighted log loss over grouped folds (first on ties).

    The folds are scikit-learn's ``GroupKFold`` over the duplicated rows with a row and its copy in one
    group, which is how the official fit forms them; the held-out loss uses the soft label.
    """
    losses = np.zeros(len(Cs))
    for tr, te in _group_folds(len(p), n_splits):
        for k, C in enumerate(Cs):
            beta = fit_l1_logistic(X[tr], p[tr], w[tr], C, draw=k)
            losses[k] += weighted_log_loss(p[te], expit(X[te] @ beta), w[te])
    return float(Cs[int(np.argmin(losses))])


def length_controlled_winrate(
    rows: pd.DataFrame,
    inputs: LCInputs | None = None,
    *,
    generator: str = "",
    is_reference: bool = False,
    Cs: Sequence[float] = DEFAULT_CS,
    n_splits: int = 5,
    gamed_weight: float = GAMED_TOTAL_WEIGHT,
    C: float | None = None,
) -> LCResult:
    """LC of one model from its pair rows (columns instruction, len_1, len_2, preference in [1, 2] or NaN).

    The rows' order matters only with ``inputs.difficulty_lookup == "position"`` (row k gets eval-set
    instruction k's difficulty): pass them in the order of the model's file.

    ``inputs`` supplies the difficulty vector and gamed-baseline rows (see :class:`LCInputs`); without a
    difficulty vector the fit is the length-only GLM, and the result says so in ``method`` and ``notes``.
    ``is_reference`` marks the reference scored against itself (LC = 50 by construction, as upstream).
    ``C`` skips the cross-validation and fits with that value (used by the bootstrap).
    """
    inputs = inputs or LCInputs(notes=("no instruction difficulty given: length-only GLM",))
    notes = list(inputs.notes)
    if inputs.method == "length_only" and not any("length-only" in n for n in notes):
        notes.append("no instruction difficulty available: length-only GLM (no difficulty term)")
    n_rows = len(rows)
    off = (
        count_off_position(rows["instruction"].to_numpy(), inputs.eval_set_difficulty.index)
        if inputs.eval_set_difficulty is not None and "instruction" in rows.columns
        else None
    )
    common = _CommonFields(
        generator=generator,
        difficulty_source=inputs.difficulty_source,
        gamed_source=inputs.gamed_source,
        n_rows=n_rows,
        difficulty_lookup=inputs.difficulty_lookup,
        n_off_position=off,
    )
    if is_reference:
        return LCResult(
            **common,
            length_controlled_winrate=50.0,
            lc_standard_error=0.0,
            coef_length=0.0,
            coef_difficulty=0.0,
            coef_model=0.0,
            length_sd=float("nan"),
            C=float("nan"),
            method="reference",
            n_fit=int(rows["preference"].notna().sum()),
            n_gamed=0,
            notes=(*notes, "the reference against itself: LC is 50 by construction"),
        )
    if inputs.difficulty_lookup == "position":  # checked before any fit: too many rows is the caller's error
        inputs.positional_difficulty(n_rows, generator)
    reason = _unfit_reason(rows, n_splits if C is None else 0)
    if reason is not None:
        nan = float("nan")
        return LCResult(
            **common,
            length_controlled_winrate=nan,
            lc_standard_error=nan,
            coef_length=nan,
            coef_difficulty=nan,
            coef_model=nan,
            length_sd=nan,
            C=nan,
            method="not_fit",
            n_fit=int(rows["preference"].notna().sum()) if "preference" in rows.columns else 0,
            n_gamed=0,
            notes=(*notes, f"LC not computed for {generator or 'this model'}: {reason}"),
        )
    design = build_design(rows, inputs, gamed_weight=gamed_weight)
    chosen = select_C(design.X, design.p, design.w, Cs=Cs, n_splits=n_splits) if C is None else float(C)
    beta = fit_l1_logistic(design.X, design.p, design.w, chosen)
    coefs = dict(zip(design.features, beta, strict=True))
    pred = expit(design.X_test @ beta)
    lc = float(pred.mean() * 100)
    sem = float(pred.std(ddof=1) / np.sqrt(len(pred)) * 100) if len(pred) > 1 else float("nan")
    method: Method = inputs.method
    if coefs["model"] == 0.0:
        method, lc, sem = "not_identified", float("nan"), float("nan")
        notes.append(
            f"LC not identified for {generator or 'this model'}: the cross-validated L1 penalty (C = {chosen:.3g}) "
            "set the model coefficient to exactly 0, so the fit says nothing about the model beyond the prior; "
            "more instructions or a fixed difficulty vector are needed"
        )
    return LCResult(
        **common,
        length_controlled_winrate=lc,
        lc_standard_error=sem,
        coef_length=float(coefs["length"]),
        coef_difficulty=float(coefs.get("difficulty", 0.0)),
        coef_model=float(coefs["model"]),
        length_sd=design.length_sd,
        C=chosen,
        method=method,
        n_fit=design.n_fit,
        n_gamed=design.n_gamed,
        notes=tuple(notes),
    )


def _unfit_reason(rows: pd.DataFrame, n_splits: int = 0) -> str | None:
    """Why a model's rows cannot carry a GLM fit (None when they can).

    ``n_splits`` > 0: the cross-validation over C needs at least that many instructions with a verdict.
    """
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing_cols:
        raise InputError(f"LC rows lack column(s) {', '.join(missing_cols)}")
    if rows["preference"].notna().sum() == 0:
        return "no parsed preference"
    delta = rows["len_1"].to_numpy(float) - rows["len_2"].to_numpy(float)
    if len(delta) < 2 or not np.std(delta, ddof=1) > 0:
        return "the length difference does not vary over its pairs"
    n_instructions = rows.loc[rows["preference"].notna(), "instruction"].nunique()
    if n_splits and n_instructions < n_splits:
        return f"only {n_instructions} instructions with a parsed verdict; choosing C by {n_splits}-fold CV needs {n_splits}"
    return None


def length_controlled_winrates(
    pairs: pd.DataFrame,
    inputs: LCInputs | None = None,
    **kwargs: object,
) -> list[LCResult]:
    """:func:`length_controlled_winrate` for every ``generator_2`` of a pair table (sorted by name)."""
    out = []
    for gen, group in pairs.groupby("generator_2", sort=True):
        is_ref = "generator_1" in group.columns and bool((group["generator_1"] == gen).all())
        out.append(length_controlled_winrate(group, inputs, generator=str(gen), is_reference=is_ref, **kwargs))  # type: ignore[arg-type]
    return out
