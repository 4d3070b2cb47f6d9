"""The authorization policy lives in core/policy.py (the workers resolve grants from it too)."""

from core.policy import IMPLIED, Identity, Permission, Policy, PolicyError

__all__ = ["IMPLIED", "Identity", "Permission", "Policy", "PolicyError"]
