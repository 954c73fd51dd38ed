"""
GAE bias and variance against λ
===============================

The figure ``gae_bias_variance`` of ``pgexact figures``, drawn from the closed forms; its caption, printed
below, names the source of every plotted formula.
"""

import matplotlib.pyplot as plt

from pgexact.figures import get

spec = get("gae_bias_variance")
print(spec.caption)
fig = plt.figure(figsize=spec.figsize)
spec.make(fig)
plt.show()
