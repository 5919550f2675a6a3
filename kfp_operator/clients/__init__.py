"""Clients of the systems the operator talks to besides Kubernetes: KFP, ML Metadata, event sinks.

Each implements the Protocols the reconcilers declare in ``reconcilers.clients``, and is the
only place where the network I/O to its system happens (counted and timed in metrics).
"""
