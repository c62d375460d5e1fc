"""Pipeline steps, one module each, each a CLI: ``python -m tasks.<step> --workspace URI ...``."""
