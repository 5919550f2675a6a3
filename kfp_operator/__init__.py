"""kfp-operator: the composition root.

``kfp_operator.__main__`` is the ``kfp-operator`` entry point; ``settings`` declares the
operator's own configuration on top of the controller runtime's; ``clients`` talk to KFP,
ML Metadata and the event sinks; ``wiring`` builds them and hands them to the reconcilers of
``reconcilers``, which run on the generic runtime of ``controller``. See docs/architecture.md.
"""
