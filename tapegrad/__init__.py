"""tapegrad: a define-by-run autodiff framework on NumPy (`autograd`, `nn`, `optim`) and this
application on top of it: datasets, the reference models, the training loop and the `tapegrad` CLI.

Importing `tapegrad` is cheap: submodules (`tapegrad.models`, `tapegrad.train`, ...) load on use.
"""
__version__ = "0.1.0"
