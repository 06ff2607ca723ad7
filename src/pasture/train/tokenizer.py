"""A character-level tokenizer built offline, for tiny models trained from a config.

Why: tests and the synthetic task must never download a tokenizer from the hub, and one token per character
makes every sequence length, log-probability and length normalisation easy to reason about.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD = "<pad>"
EOS = "<eos>"
UNK = "<unk>"


def char_tokenizer(alphabet: Iterable[str]) -> PreTrainedTokenizerFast:
    """A ``transformers`` fast tokenizer with one token per character of ``alphabet``.

    Ids: 0 = ``<pad>``, 1 = ``<eos>``, 2 = ``<unk>``, then the alphabet in the order given (duplicates dropped).
    Any character outside the alphabet encodes as ``<unk>``; decoding concatenates characters with no spaces.
    """
    chars: list[str] = []
    for ch in alphabet:
        if len(ch) != 1:
            raise ValueError(f"alphabet entries must be single characters, got {ch!r}")
        if ch not in chars:
            chars.append(ch)
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for ch in chars:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    fast.padding_side = "right"
    return fast
