"""Public testing tools: gradient checks and Hypothesis strategies for users' own code."""
from . import strategies
from .gradcheck import GradientCheckError, check_grads
from .primitive_check import check_primitive, check_primitive_once
from .properties import check_grads_property

__all__ = ["check_grads", "check_grads_property", "check_primitive", "check_primitive_once", "GradientCheckError",
           "strategies"]
