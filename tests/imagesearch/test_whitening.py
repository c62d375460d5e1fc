import numpy as np

from imagesearch.vectors import l2_normalize
from imagesearch.whitening import Whitening


def test_whitening_decorrelates_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(64, 64)) * np.linspace(3, 0.1, 64)
    vectors = l2_normalize(rng.normal(size=(2000, 64)) @ mixing)
    whitening = Whitening.fit(vectors, 16, shrinkage=0.0)
    projected = (vectors - whitening.mean) @ whitening.projection
    covariance = np.cov(projected, rowvar=False)
    assert np.allclose(covariance, np.eye(16), atol=0.05)
    assert whitening.out_dim == 16
    applied = whitening.apply(vectors)
    assert np.allclose(np.linalg.norm(applied, axis=1), 1, atol=1e-5)
    again = Whitening.from_bytes(whitening.to_bytes())
    assert np.array_equal(again.apply(vectors), applied)


def test_output_dims_never_exceed_the_sample() -> None:
    vectors = l2_normalize(np.random.default_rng(1).normal(size=(10, 32)))
    assert Whitening.fit(vectors, 512).out_dim == 9
