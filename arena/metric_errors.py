"""The one error every metric raises for inputs it cannot score, below both the metrics and the
scoring models that load their encoders (so neither imports the other for it).

Run as: python -m pytest tests/test_metrics.py -q
"""

from __future__ import annotations


class MetricInputError(ValueError):
    """A metric was called with inputs it cannot score (mismatched lengths, empty references...)."""
