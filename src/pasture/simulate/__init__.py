"""AlpacaFarm-style simulated feedback: a pool of noisy judges that labels pairs as people would.

* :mod:`pasture.simulate.noise` - label-flip noise derived deterministically from clean labels and a seed.
"""

from pasture.simulate.noise import example_key, flip_label, flip_labels, flip_mask, uniform_draw

__all__ = ["example_key", "flip_label", "flip_labels", "flip_mask", "uniform_draw"]
