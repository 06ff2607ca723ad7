"""Providers by name: ``get_provider("openai", model=..., base_url=...)``.

Each module of this package defines its provider class(es) with ``@register_provider("name")``; the
registry imports the package's modules on first lookup, so adding a provider touches one new file.
Modules import their heavy dependencies (SDKs, llama.cpp, torch) inside methods, so listing providers
loads nothing big.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, TypeVar

from pasture.errors import JudgeError
from pasture.providers.base import Provider

_REGISTRY: dict[str, type] = {}
_T = TypeVar("_T", bound=type)


def register_provider(name: str) -> Callable[[_T], _T]:
    """Class decorator: make a provider constructible by ``name``."""

    def decorate(cls: _T) -> _T:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
            raise JudgeError(f"provider name {name!r} registered twice ({existing.__qualname__}, {cls.__qualname__})")
        _REGISTRY[name] = cls
        return cls

    return decorate


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def provider_names() -> list[str]:
    """Registered provider names, sorted."""
    _discover()
    return sorted(_REGISTRY)


def provider_class(name: str) -> type:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise JudgeError(f"unknown provider {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def get_provider(name: str, **kwargs: Any) -> Provider:
    """Construct the provider registered as ``name`` with its keyword arguments (see each class)."""
    cls = provider_class(name)
    try:
        provider = cls(**kwargs)
    except TypeError as exc:
        raise JudgeError(f"bad arguments for provider {name!r}: {exc}") from None
    assert isinstance(provider, Provider)
    return provider
