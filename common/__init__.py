"""Small pieces every service shares: settings, HTTP serving, health, metrics, logging."""
