"""Settings: one declaration per key gives the YAML key, the flag, the environment variable and the docs.

A program's configuration is a tree of frozen dataclasses whose fields are declared with
:func:`~controller.settings.schema.setting` (a leaf: key, parser, description, default) and
:func:`~controller.settings.schema.section` (a nested dataclass). Everything else is derived:

* ``schema``: the declarations and the key list (dotted key, ``--flag``, ``PREFIX_ENV_VAR``);
* ``values``: parsers that validate and convert raw values (Go durations, URLs, names, ...);
* ``loading``: reading the YAML file, the environment and flags (flag > env > file > default),
  and :class:`~controller.settings.loading.ConfigError`, which names the key;
* ``docs``: the Markdown reference and the commented example file;
* ``runtime``: the runtime's own settings (workers, namespaces, leader election, metrics,
  health, logs, the Kubernetes client), which a program's configuration extends.
"""
