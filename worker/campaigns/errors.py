"""The campaigns' user error: one class, its kind (not found, conflict, invalid input) per raise."""

from __future__ import annotations

from worker.errors import UserError

__all__ = ["CampaignError"]


class CampaignError(UserError):
    """Raised when a campaign, coupon, booking or review change cannot be made as asked (message says why)."""
