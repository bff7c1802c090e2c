"""Shared mechanics every model family uses: config loading, errors, atomic I/O, logging and
progress, model resolution and device/dtype/4-bit choice, batched generation, MLflow runs and
lineage, the gate (metric direction), the registry, and the Great Expectations runner."""
