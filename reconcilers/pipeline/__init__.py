"""The ``pipeline`` controller: Pipeline resources become versions of KFP pipelines.

``reconciler`` (read it top-down), ``source`` (the version and where its compiled spec comes from,
pure), ``spec`` (checking a compiled spec, pure), ``job`` (the compile Job and what it hands back,
pure), ``kfp`` (what it needs from KFP, and retention), ``status`` (pure).
"""
