"""The operators' CLIs: rollback and pins, promotion between environments, the whole pipeline on one machine."""
