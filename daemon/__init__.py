"""wiredesk: a self-hosted news feed aggregator that recognises wire copies and same-event coverage."""

__version__ = "0.1.0"
