"""Inpainters, the learned vocoders' nets and the reassigned phase corrector.

Importing this package registers every model in ``MODELS`` (through models.build).
"""
from models.build import build_model  # noqa: F401
from models.registry import MODELS  # noqa: F401
