"""Inpainters. Importing this package registers every model in ``MODELS``."""
from models.registry import MODELS, build_model, register  # noqa: F401
from models import unet, fc, mae, pix2pix  # noqa: F401  (registration side effect)
