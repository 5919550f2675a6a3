"""Output artifacts of a run: the ``COMPONENT:OUTPUT:INDEX[FILTER]`` path, its filter language, and
their resolution against ML Metadata.

* ``path``: parsing an artifact path;
* ``filter``: the filter language (go-bexpr's), parsed and evaluated without ``eval``;
* ``mlmd_values``: ML Metadata property values as the plain values a filter sees;
* ``resolve``: reading a run's records from ML Metadata and picking the artifacts a path names.
"""
