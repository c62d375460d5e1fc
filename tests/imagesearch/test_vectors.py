from __future__ import annotations

import numpy as np

from imagesearch.vectors import l2_normalize


def test_rows_become_unit_float32_and_a_zero_row_stays_finite() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0], [-1e-3, 0.0]], dtype=np.float64)
    unit = l2_normalize(vectors)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]], rtol=1e-6)
