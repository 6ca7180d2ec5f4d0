"""Prognos models: training, evaluation, the model registry and its artifacts."""

__all__: list[str] = []
