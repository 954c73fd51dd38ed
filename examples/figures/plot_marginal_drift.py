"""
State-marginal drift and the 2εt bound
======================================

The figure ``marginal_drift`` of ``pgexact figures``, drawn from the closed forms; its caption, printed
below, names the source of every plotted formula.
"""

import matplotlib.pyplot as plt

from pgexact.figures import get

spec = get("marginal_drift")
print(spec.caption)
fig = plt.figure(figsize=spec.figsize)
spec.make(fig)
plt.show()
