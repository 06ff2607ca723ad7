"""Speculative decoding: a cheap draft model proposes tokens, the target model checks them in one pass.

Modules: :mod:`~pasture.speculative.core` (the accept/reject maths as small tensor functions),
:mod:`~pasture.speculative.decode` (the decoding loop with KV caches, candidate-length policies and the stats
record), :mod:`~pasture.speculative.head` (SpecDec++'s acceptance head) and
:mod:`~pasture.speculative.provider` (the provider ``pasture generate --draft-model`` uses). Exactness: the
output follows the target's distribution (after temperature and top-p) whatever the draft; see docs/generate.md.
"""
