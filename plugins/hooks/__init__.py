"""Hooks: the only code in ``plugins/`` that talks to the outside world."""
