"""Every write of the webhooks app: endpoints (endpoints.py), recording deliveries from
the move log (scan.py), and sending them (delivery.py)."""

from webhooks.services.delivery import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    DeliverResult,
    webhook_endpoint_deliver,
)
from webhooks.services.endpoints import (
    ENDPOINTS_PER_STREAM_MAX,
    DeliveryNotRetryable,
    EndpointWithSecret,
    WebhookLimitReached,
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_set_active,
)
from webhooks.services.retention import webhook_deliveries_prune
from webhooks.services.scan import stream_webhooks_record, webhook_deliveries_record

__all__ = [
    "ENDPOINTS_PER_STREAM_MAX",
    "MAX_ATTEMPTS",
    "RETRY_DELAYS",
    "DeliverResult",
    "DeliveryNotRetryable",
    "EndpointWithSecret",
    "WebhookLimitReached",
    "stream_webhooks_record",
    "webhook_deliveries_prune",
    "webhook_deliveries_record",
    "webhook_delivery_retry",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_deliver",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_set_active",
]
