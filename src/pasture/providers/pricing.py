"""Prices of hosted models, in US dollars per million tokens: the one place pasture keeps them.

Data, not logic: providers look a model up here to fill ``Completion.cost_usd`` and judges to answer
``price_per_token`` for ``--dry-run`` estimates. Prices are list prices published by the vendors (checked
2025); a model absent from the table has an unknown price (None), never a guessed one. Local providers
(``llama_cpp``, ``transformers``) cost 0.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt (input) and completion (output) tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def per_token(self) -> tuple[float, float]:
        return self.input_per_mtok / 1e6, self.output_per_mtok / 1e6

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        if prompt_tokens is None or completion_tokens is None:
            return None
        p, c = self.per_token()
        return prompt_tokens * p + completion_tokens * c


PRICES: dict[tuple[str, str], Price] = {
    ("openai", "gpt-4-1106-preview"): Price(10.0, 30.0),
    ("openai", "gpt-4-turbo"): Price(10.0, 30.0),
    ("openai", "gpt-4o"): Price(2.5, 10.0),
    ("openai", "gpt-4o-2024-08-06"): Price(2.5, 10.0),
    ("openai", "gpt-4o-mini"): Price(0.15, 0.60),
    ("openai", "gpt-4o-mini-2024-07-18"): Price(0.15, 0.60),
    ("openai", "gpt-4.1"): Price(2.0, 8.0),
    ("openai", "gpt-4.1-mini"): Price(0.40, 1.60),
    ("openai", "gpt-4.1-nano"): Price(0.10, 0.40),
    ("anthropic", "claude-3-5-haiku-latest"): Price(0.80, 4.0),
    ("anthropic", "claude-3-5-sonnet-latest"): Price(3.0, 15.0),
    ("anthropic", "claude-3-7-sonnet-latest"): Price(3.0, 15.0),
    ("anthropic", "claude-sonnet-4-0"): Price(3.0, 15.0),
    ("anthropic", "claude-haiku-4-5"): Price(1.0, 5.0),
    ("anthropic", "claude-sonnet-4-5"): Price(3.0, 15.0),
    ("anthropic", "claude-opus-4-1"): Price(15.0, 75.0),
}
"""(provider, model id) -> list price. Models served from a user's own base_url are not priced."""

LOCAL_PROVIDERS = frozenset({"llama_cpp", "transformers", "python"})


def price_for(provider: str, model: str, *, hosted_by_vendor: bool = True) -> Price | None:
    """The price of a call, or None when unknown.

    ``hosted_by_vendor=False`` (an OpenAI-compatible server at a user's own URL: vLLM, llama.cpp, Ollama)
    means the vendor's list price does not apply and the price is unknown.
    """
    if provider in LOCAL_PROVIDERS:
        return Price(0.0, 0.0)
    if not hosted_by_vendor:
        return None
    return PRICES.get((provider, model))
