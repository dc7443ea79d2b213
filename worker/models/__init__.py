"""All ORM models; importing this package registers every table on Base.metadata."""

from worker.models.audit import AuditAction, AuditLog, User, UserRole
from worker.models.base import Base
from worker.models.consent import ConsentEvent, ConsentState, ReviewItem
from worker.models.core import Booking, Chef, Customer, Message, MessageThread
from worker.models.identity import ApiToken, ApiTokenStation, DashboardSession, Station, StationSender, StationUser
from worker.models.inbox import DeliveryEvent, WebhookInbox
from worker.models.marketing import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignStep,
    CouponPool,
    CustomerReview,
    DiscountCoupon,
    ReviewRating,
    ReviewStatus,
)
from worker.models.outbox import OutboundMessage, SendAttempt, UndeliverableNumber

__all__ = [
    "ApiToken",
    "ApiTokenStation",
    "AuditAction",
    "AuditLog",
    "Base",
    "Booking",
    "Campaign",
    "CampaignRecipient",
    "CampaignRun",
    "CampaignStep",
    "Chef",
    "ConsentEvent",
    "ConsentState",
    "CouponPool",
    "Customer",
    "CustomerReview",
    "DashboardSession",
    "DeliveryEvent",
    "DiscountCoupon",
    "Message",
    "MessageThread",
    "OutboundMessage",
    "ReviewItem",
    "ReviewRating",
    "ReviewStatus",
    "SendAttempt",
    "Station",
    "StationSender",
    "StationUser",
    "UndeliverableNumber",
    "User",
    "UserRole",
    "WebhookInbox",
]
