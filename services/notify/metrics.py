"""notify's Prometheus metrics (process-wide: prometheus_client's default registry)."""

from prometheus_client import Counter, Gauge

SENT = Counter("notify_emails_sent_total", "Alert emails the SMTP server accepted")
FAILED = Counter("notify_emails_failed_total", "Alert emails rejected for good (recorded as failed)")
SUPPRESSED = Counter("notify_emails_suppressed_total", "Alert emails not sent on purpose (rate limit, paused lead)")
RETRIED = Counter("notify_send_retries_total", "Send attempts that failed for now and will be retried")
PENDING = Gauge("notify_deliveries_pending", "Deliveries planned and not sent yet")
WAITING = Gauge("notify_alerts_waiting", "Signals waiting for the directory to know their member, circles, leads")
DELIVERIES = Gauge("notify_deliveries", "Rows of the delivery log by status", ["status"])
