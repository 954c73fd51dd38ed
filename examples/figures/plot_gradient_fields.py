"""
Vanilla vs natural gradient fields
==================================

The figure ``gradient_fields`` of ``pgexact figures``, drawn from the closed forms; its caption, printed
below, names the source of every plotted formula.
"""

import matplotlib.pyplot as plt

from pgexact.figures import get

spec = get("gradient_fields")
print(spec.caption)
fig = plt.figure(figsize=spec.figsize)
spec.make(fig)
plt.show()
