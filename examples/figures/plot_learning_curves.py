"""
Exact learning curves of PG, NPG, TRPO and PPO
==============================================

The figure ``learning_curves`` of ``pgexact figures``, drawn from the closed forms; its caption, printed
below, names the source of every plotted formula.
"""

import matplotlib.pyplot as plt

from pgexact.figures import get

spec = get("learning_curves")
print(spec.caption)
fig = plt.figure(figsize=spec.figsize)
spec.make(fig)
plt.show()
