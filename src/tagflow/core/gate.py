"""The promotion gate, for any metric: it knows which way is better.

A family names its gate metric and target; the direction comes from the metric's name (F1,
accuracy, correlation: higher is better; MSE, MAE, loss: lower is better), so a lower-is-better
metric can never be promoted by mistake. A version is promoted only if it meets the target and
is no worse than the current champion (ties promote: not a regression, and newer). Guard metrics
(`no_regression`) add conditions without targets: e.g. macro-F1 must not fall below the
champion's while the gate metric is micro-F1."""
from __future__ import annotations

import math
import re

from .errors import ConfigError

HIGHER, LOWER = "higher", "lower"
# First match wins; names are matched without their split prefix (`test/f1_doc` -> `f1_doc`).
_DIRECTIONS = [
    (r"(^|_)(mse|rmse|mae|loss|error|perplexity|out_of_thesaurus_rate|duplicate_rate)($|_)", LOWER),
    (r"(^|_)(f1|precision|recall|accuracy|acc|auc|spearman|pearson|r2|valid_json_rate|ndcg|map)($|_)",
     HIGHER),
]


def direction(metric: str) -> str:
    """`higher` or `lower` is better for `metric`; an unknown metric is a configuration error."""
    name = metric.rsplit("/", 1)[-1].lower()
    for pattern, way in _DIRECTIONS:
        if re.search(pattern, name):
            return way
    raise ConfigError(f"gate metric {metric!r}: unknown direction (add it to core.gate._DIRECTIONS)")


def better_or_equal(a: float, b: float, way: str) -> bool:
    return a >= b if way == HIGHER else a <= b


def _fmt_pair(a: float, b: float) -> tuple[str, str]:
    """Three decimals, unless that would print two different numbers identically."""
    sa, sb = f"{a:.3f}", f"{b:.3f}"
    if sa == sb and a != b:
        sa, sb = repr(float(a)), repr(float(b))
    return sa, sb


def decide(value: float, target: float, champion_value: float | None, *,
           metric: str = "metric", champion_version: str | None = None,
           way: str | None = None) -> tuple[bool, list[str]]:
    """(promote?, reasons): meets the target and is no worse than the champion (if any)."""
    way = way or direction(metric)
    good, bad = (">=", "<") if way == HIGHER else ("<=", ">")
    if math.isnan(value):
        return False, [f"{metric} is NaN: the evaluation produced no usable score"]
    v, t = _fmt_pair(value, target)
    meets_target = better_or_equal(value, target, way)
    reasons = [f"{metric} {v} {good if meets_target else bad} target {t}"
               + ("" if way == HIGHER else " (lower is better)")]
    who = f"champion v{champion_version}" if champion_version else "the champion"
    if champion_value is None:
        reasons.append("no current champion to compare with")
        beats_champion = True
    elif math.isnan(champion_value):
        reasons.append(f"{who}'s {metric} is NaN; compared with the target only")
        beats_champion = True
    else:
        v, c = _fmt_pair(value, champion_value)
        beats_champion = better_or_equal(value, champion_value, way)
        reasons.append(f"{metric} {v} {good} {who}'s {c}" if beats_champion
                       else f"{metric} {v} {bad} {who}'s {c} (regression)")
    return meets_target and beats_champion, reasons


def no_regression(metric: str, value: float, champion_value: float | None, *,
                  champion_version: str | None = None) -> tuple[bool, str]:
    """(ok?, reason) for a guard metric: no worse than the champion's (direction from its name).
    Without a champion, or a champion that never recorded the metric, there is nothing to regress
    from; a NaN value is never ok."""
    way = direction(metric)
    good, bad = (">=", "<") if way == HIGHER else ("<=", ">")
    who = f"champion v{champion_version}" if champion_version else "the champion"
    if math.isnan(value):
        return False, f"guard {metric} is NaN"
    if champion_value is None or math.isnan(champion_value):
        return True, f"guard {metric}: {who} has no usable value to compare with"
    v, c = _fmt_pair(value, champion_value)
    if better_or_equal(value, champion_value, way):
        return True, f"guard {metric} {v} {good} {who}'s {c}"
    return False, f"guard {metric} {v} {bad} {who}'s {c} (regression)"
