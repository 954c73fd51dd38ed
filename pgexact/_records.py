"""Result records (frozen dataclasses) hold read-only views of their arrays."""

from __future__ import annotations

import numpy as np

__all__ = ["freeze_arrays"]


def freeze_arrays(record: object, names: tuple[str, ...]) -> None:
    """Replace each ndarray field of ``record`` by a read-only view of it.

    The caller's array itself stays writeable; a field of any other type is stored as given
    (a record does not validate: it holds what the function that built it computed).
    """
    for name in names:
        arr = getattr(record, name)
        if isinstance(arr, np.ndarray):
            view = arr.view()
            view.flags.writeable = False
            object.__setattr__(record, name, view)
