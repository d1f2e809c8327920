"""``plan``: the peak memory of one training step per candidate crop, without a GPU, and the rates for the winner.

``budget`` has no torch; ``step``, ``tracker`` and ``planner`` import it.
"""

from atrous_advisor.plan.budget import ALLOCATOR_MARGIN, CONTEXT_RESERVE, parse_memory, usable_bytes

__all__ = ["ALLOCATOR_MARGIN", "CONTEXT_RESERVE", "parse_memory", "usable_bytes"]
