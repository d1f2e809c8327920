"""Torch side of the tool: datasets, head surgery, the fine-tuning loop behind ``validate``, ERF measurement.

Nothing here is imported by the analytic commands; importing this package needs the ``torch`` extra.
"""
