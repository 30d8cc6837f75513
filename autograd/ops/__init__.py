"""The primitives, by family. Importing this package registers all of them."""
from . import elementwise, linalg, reduce, shape  # noqa: F401  (registration side effects)
