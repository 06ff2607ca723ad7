"""AlpacaFarm-style simulated feedback: a pool of noisy judges that labels pairs as people would.

* :mod:`pasture.simulate.noise` - label-flip noise derived deterministically from clean labels and a seed.
* :mod:`pasture.simulate.pool` - the annotator pool: members, weighted assignment, output order, flips.
* :mod:`pasture.simulate.labels` - sampling pairs of outputs and labeling them with a pool (cached).
* :mod:`pasture.simulate.datasets` - TRL / HF / AlpacaFarm preference datasets from labels.
* :mod:`pasture.simulate.measure` - agreement with gold, inter-annotator agreement, variance, noise sweeps.
* :mod:`pasture.simulate.personas` - persona prompts; :mod:`pasture.simulate.pool_files` - pools from TOML.
* :mod:`pasture.simulate.simulation` - outputs (or a policy) -> pairs -> labels -> dataset files.
* :mod:`pasture.simulate.synthetic` - a task with an exact oracle, for checking a pool against the truth.

See docs/simulate.md.
"""

from pasture.simulate.datasets import FORMATS, DatasetSummary, preference_rows, write_labels, write_preference_dataset
from pasture.simulate.labels import (
    LabelRun,
    OutputPair,
    PairSample,
    SimulatedLabel,
    cross_annotate,
    label_pairs,
    sample_pairs,
)
from pasture.simulate.measure import (
    GoldLabel,
    compare_pools,
    expected_agreement,
    expected_inter_annotator_agreement,
    flip_p_for_agreement,
    gold_agreement,
    gold_for_pairs,
    labels_frame,
    noise_sweep,
    one_vs_rest_variance,
    pairwise_agreement,
    pool_report,
    read_gold,
    renoise,
)
from pasture.simulate.noise import example_key, flip_label, flip_labels, flip_mask, uniform_draw
from pasture.simulate.personas import PERSONAS, persona_judge
from pasture.simulate.pool import DEFAULT_FLIP_P, AnnotatorPool, PoolMember, make_pool
from pasture.simulate.pool_files import load_pool, persona_pool
from pasture.simulate.simulation import Simulation, sample_policy_outputs, simulate_preferences, write_simulation
from pasture.simulate.synthetic import arithmetic_oracle, arithmetic_outputs

__all__ = [
    "DEFAULT_FLIP_P",
    "FORMATS",
    "PERSONAS",
    "AnnotatorPool",
    "DatasetSummary",
    "GoldLabel",
    "LabelRun",
    "OutputPair",
    "PairSample",
    "PoolMember",
    "SimulatedLabel",
    "Simulation",
    "arithmetic_oracle",
    "arithmetic_outputs",
    "compare_pools",
    "cross_annotate",
    "example_key",
    "expected_agreement",
    "expected_inter_annotator_agreement",
    "flip_label",
    "flip_labels",
    "flip_mask",
    "flip_p_for_agreement",
    "gold_agreement",
    "gold_for_pairs",
    "label_pairs",
    "labels_frame",
    "load_pool",
    "make_pool",
    "noise_sweep",
    "one_vs_rest_variance",
    "pairwise_agreement",
    "persona_judge",
    "persona_pool",
    "pool_report",
    "preference_rows",
    "read_gold",
    "renoise",
    "sample_pairs",
    "sample_policy_outputs",
    "simulate_preferences",
    "uniform_draw",
    "write_labels",
    "write_preference_dataset",
    "write_simulation",
]
