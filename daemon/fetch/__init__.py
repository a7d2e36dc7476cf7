"""Stage 1, fetch: bytes from the network (or from fixture files), within limits and politely.

``client`` holds the HTTP client (conditional GET, size and redirect limits, the address guard that refuses private
networks, per-host connection slots, content decoders, the fixture transport replay uses); ``urls`` checks the URLs
a user gives; ``corpus`` reads a fixture corpus for `wiredesk replay`.
"""
