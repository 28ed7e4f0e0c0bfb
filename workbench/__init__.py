"""iwb — the integration workbench.

Nothing is imported eagerly here, so `iwb --help` stays fast. The public authoring helpers
live in `workbench.config` (configurables, connections) and `workbench.plugin` (the artifact
and trigger contract); the envelope in `workbench.events`.
"""

__version__ = "0.1.0"
