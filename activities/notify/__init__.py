"""Notification channels (Spinnaker's echo): email over SMTP, Slack incoming webhooks, SMS through a
Twilio-compatible REST API and signed generic webhooks.

Channel credentials live in the worker's config (`notifications:` in gennaker.yaml, see
`NotificationSettings`); a `NotificationRequest` names only a channel type, an address and what
happened, so nothing secret enters workflow history. `notifications_for` is the pure part the
pipeline workflow calls to decide who hears about an event; `NotifyActivities.send_notification`
delivers one message. Delivery is at-least-once: a retry after a lost completion can repeat a message,
so every request carries a stable `notificationId` (email Message-ID, webhook delivery header).
"""

from activities.notify.channels import NotifyActivities, verify_signature
from activities.notify.model import (
    NotificationSettings,
    SlackSettings,
    SmsSettings,
    SmtpSettings,
    WebhookNotifySettings,
)
from workflows.notification_model import (
    EVENT_ALIASES,
    EVENTS,
    NOT_RETRYABLE,
    NOTIFY_ACTIVITY,
    NOTIFY_RETRY,
    NOTIFY_TIMEOUT,
    ChannelType,
    JudgmentInfo,
    NotificationRequest,
    NotificationResult,
    normalize_event,
    notifications_for,
)

__all__ = [
    "EVENTS",
    "EVENT_ALIASES",
    "NOTIFY_ACTIVITY",
    "NOTIFY_RETRY",
    "NOTIFY_TIMEOUT",
    "NOT_RETRYABLE",
    "ChannelType",
    "JudgmentInfo",
    "NotificationRequest",
    "NotificationResult",
    "NotificationSettings",
    "NotifyActivities",
    "SlackSettings",
    "SmsSettings",
    "SmtpSettings",
    "WebhookNotifySettings",
    "normalize_event",
    "notifications_for",
    "verify_signature",
]
