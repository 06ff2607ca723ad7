"""Reference methods that learn from pairwise feedback (pasture[train]): SFT, reward models, best-of-n, expert
iteration, DPO and variants, SimPO, PPO and RLOO over shared plumbing, the synthetic keyword-inclusion task with
an exact oracle, the farm loop, and the methods comparison table. See docs/train.md.

Import the submodules directly (``pasture.train.dpo``, ``pasture.train.ppo``, ...); this package imports
nothing heavy by itself so that ``import pasture`` never needs torch.
"""
