"""Readers and writers: AlpacaEval files, JSON/JSONL/CSV/Parquet (optionally gzipped), and the hub."""

from pasture.io.alpacaeval import (
    DRAW_PREFERENCE,
    annotators_in,
    coerce_preference,
    read_annotations,
    read_eval_set,
    read_model_outputs,
    split_by_annotator,
    write_annotations,
    write_model_outputs,
)
from pasture.io.files import read_rows, write_rows
from pasture.io.hub import HUB_FILES, fetch_alpaca_eval_file

__all__ = [
    "DRAW_PREFERENCE",
    "HUB_FILES",
    "annotators_in",
    "coerce_preference",
    "fetch_alpaca_eval_file",
    "read_annotations",
    "read_eval_set",
    "read_model_outputs",
    "read_rows",
    "split_by_annotator",
    "write_annotations",
    "write_model_outputs",
    "write_rows",
]
