"""The ``experiment`` controller: Experiment resources become KFP experiments.

``reconciler`` (read it top-down), ``status`` (pure).
"""
