"""Pure evaluation: the streaming metric window engine and Mongo-style filter matching."""

from .engine import Firing, MetricEvaluator, MetricSpec, metric_value
from .mongo import FilterSyntaxError, matches

__all__ = ["FilterSyntaxError", "Firing", "MetricEvaluator", "MetricSpec", "matches", "metric_value"]
