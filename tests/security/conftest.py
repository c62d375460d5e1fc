"""The serving fixtures (a real embedder, a published and fetched version) for the tampering cases."""

from tests.serving.conftest import embedder, index_a  # noqa: F401 (fixtures)
