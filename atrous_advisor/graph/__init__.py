"""The model-facing side: load a model, capture its graph, propagate fields, find heads, count cost.

Importing this package does not import torch; its submodules ``capture``, ``loading``, ``cost`` and
``fieldmap`` do.
"""

from atrous_advisor.graph.handlers import OP_HANDLERS, NodeField, OpCall, TensorArg, neutral, register_op_handler

__all__ = ["OP_HANDLERS", "NodeField", "OpCall", "TensorArg", "neutral", "register_op_handler"]
