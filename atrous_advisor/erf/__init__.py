"""``erf``: the effective receptive field, measured, and the ASPP star it should show.

- :mod:`~atrous_advisor.erf.accumulate`: the map, by autograd over images (torch).
- :mod:`~atrous_advisor.erf.star`: the predicted star and what the map shows (numpy/scipy, no torch).
- :mod:`~atrous_advisor.erf.render`: the heatmaps (matplotlib).
- :mod:`~atrous_advisor.erf.run`: request in, files written, :class:`ErfReport` out (what the CLI calls).

Importing this package imports no torch.
"""
