"""The AI-Augmented Surveys predictor in small: respondent, time and question-meaning representations, trained.

Why: the paper (Kim and Lee, 2023) fine-tunes an LLM (Alpaca-7B) whose input joins a learned respondent
embedding ("individual beliefs"), a learned year embedding ("temporal context") and the question's text
("question meaning"), and reads P(yes) from its output. Its question representation comes from the LLM, which
is what lets it say anything about questions never asked. pasture's version keeps that structure but trains a
small model from scratch with torch on a CPU (differences listed in docs/trust.md):

* the question's meaning is a **hashed bag of its words and word pairs** (``n_buckets`` features, unit-norm),
  mapped linearly to a direction ``v_q`` and a lean ``b_q``, plus a free per-question direction and lean that
  are learned only for questions with training votes (zero for an unasked question: such a question is known
  only by its text, as in the paper);
* a respondent embedding ``u_r`` and a time embedding ``tau_t`` (zero for a respondent or time never seen);
* ``P(vote = 1) = sigmoid(c + b_q + (u_r + tau_t) . v_q)``: beliefs and time meet the question through one
  interaction;
* full-batch AdamW on the binary cross-entropy for a fixed number of epochs, all seeded by ``seed``.

It is not an LLM: it knows nothing about words before training, so "meaning" here is only what co-occurring
words carry within one survey.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from pasture.analysis.survey import SurveyModelSettings, check_votes
from pasture.errors import InputError

_TOKEN = re.compile(r"\w+", re.UNICODE)


def _bucket(token: str, n_buckets: int) -> int:
    """A stable bucket (BLAKE2b of the token, never Python's salted hash())."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "big") % n_buckets


def text_features(texts: list[str], n_buckets: int) -> np.ndarray:
    """Unit-norm hashed counts of each text's lowercased words and adjacent word pairs: (len(texts), n_buckets)."""
    out = np.zeros((len(texts), n_buckets), dtype=np.float32)
    for i, text in enumerate(texts):
        words = _TOKEN.findall(text.lower())
        for token in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
            out[i, _bucket(token, n_buckets)] += 1.0
        norm = np.linalg.norm(out[i])
        if norm > 0:
            out[i] /= norm
    return out


class _Net(nn.Module):
    def __init__(self, n_resp: int, n_q: int, n_t: int, n_buckets: int, dim: int) -> None:
        super().__init__()
        self.resp = nn.Embedding(n_resp + 1, dim)  # row 0: unseen -> stays zero (never gets a gradient)
        self.time = nn.Embedding(n_t + 1, dim)
        self.q_dir = nn.Embedding(n_q + 1, dim)
        self.q_lean = nn.Embedding(n_q + 1, 1)
        self.text = nn.Linear(n_buckets, dim + 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(1))
        for emb in (self.resp, self.time, self.q_dir):
            nn.init.normal_(emb.weight, std=0.1)
        nn.init.zeros_(self.q_lean.weight)
        nn.init.normal_(self.text.weight, std=0.1)
        with torch.no_grad():
            for emb in (self.resp, self.time, self.q_dir, self.q_lean):
                emb.weight[0].zero_()

    def forward(
        self,
        r: torch.Tensor,
        q: torch.Tensor,
        t: torch.Tensor,
        x: torch.Tensor,
        row: torch.Tensor,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for votes (r, q, t); ``x`` holds the text features of each distinct question once and
        ``row`` points each vote at its question's row of ``x``."""
        from_text = self.text(x)[row]
        own_dir, own_lean = self.q_dir(q), self.q_lean(q).squeeze(-1)
        if keep is not None:  # question dropout: these rows see their question through its text only
            own_dir, own_lean = own_dir * keep[:, None], own_lean * keep
        direction = from_text[:, :-1] + own_dir
        lean = from_text[:, -1] + own_lean
        return self.bias + lean + ((self.resp(r) + self.time(t)) * direction).sum(-1)


class SurveyModel:
    """The trained predictor (see the module docstring); ``fit`` then ``predict``."""

    name = "survey model"

    def __init__(self, settings: SurveyModelSettings | None = None) -> None:
        self.settings = settings or SurveyModelSettings()
        self.settings.validate()
        self._net: _Net | None = None
        self._ids: dict[str, dict[object, int]] = {}
        self._texts: dict[str, str] = {}

    def _index(self, rows: pd.DataFrame) -> tuple[torch.Tensor, ...]:
        """Respondent, question and time ids (0 = unseen), distinct questions' text features, row pointers."""

        def ids(column: str) -> torch.Tensor:
            table = self._ids[column]
            return torch.tensor([table.get(v, 0) for v in rows[column]], dtype=torch.long)

        questions = [str(q) for q in rows["question"]]
        missing = sorted({q for q in questions if q not in self._texts})
        if missing:
            raise InputError(f"survey model: no text for question {missing[0]!r}; give every question's text")
        unique = sorted(set(questions))
        feats = text_features([self._texts[q] for q in unique], self.settings.n_buckets)
        pos = {q: i for i, q in enumerate(unique)}
        row = torch.tensor([pos[q] for q in questions], dtype=torch.long)
        return ids("respondent"), ids("question"), ids("time"), torch.from_numpy(feats), row

    def fit(self, train: pd.DataFrame, texts: Mapping[str, str]) -> SurveyModel:
        """Train from scratch on ``train`` (votes) with the questions' ``texts``."""
        v = check_votes(train, where="training votes")
        if v.empty:
            raise InputError("survey model: no training votes")
        self._texts = {str(k): str(val) for k, val in texts.items()}
        self._ids = {
            col: {val: i + 1 for i, val in enumerate(sorted(v[col].unique()))}
            for col in ("respondent", "question", "time")
        }
        s = self.settings
        torch.manual_seed(s.seed)
        net = _Net(len(self._ids["respondent"]), len(self._ids["question"]), len(self._ids["time"]), s.n_buckets, s.dim)
        r, q, t, x, row = self._index(v)
        y = torch.tensor(v["vote"].to_numpy(), dtype=torch.float32)
        optimizer = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        net.train()
        gen = torch.Generator().manual_seed(s.seed)
        n_q = len(self._ids["question"]) + 1
        for _ in range(s.epochs):
            optimizer.zero_grad()
            keep = None
            if s.question_dropout > 0:
                keep = (torch.rand(n_q, generator=gen) >= s.question_dropout).float()[q]
            loss = loss_fn(net(r, q, t, x, row, keep), y)
            loss.backward()
            optimizer.step()
        net.eval()
        self._net = net
        return self

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """P(vote = 1) for each row (respondent, question, time); unseen ids use only what is known of them."""
        if self._net is None:
            raise InputError("survey model: call fit before predict")
        r, q, t, x, row = self._index(rows)
        with torch.no_grad():
            return torch.sigmoid(self._net(r, q, t, x, row)).numpy().astype(float)
