"""``make bench``: the operator's cost and speed, measured against baselines from the same run.

Every figure that depends on how fast this machine is comes with a ratio against a
baseline measured in the same run (a minimal submitter doing only the unavoidable
calls, a bare list of the same objects), so results from different machines can be
compared by their ratios. ``docs/performance.md`` explains each figure.
"""
