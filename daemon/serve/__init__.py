"""The running service's HTTP side: ``http`` serves the digest documents, /healthz and /metrics; ``metrics`` holds the
Prometheus counters and the stored counts read at scrape time."""
