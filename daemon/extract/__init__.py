"""Stage 3, extract: an article page to its body text (trafilatura), or the feed's own content when the page gives
none. Pure functions of the bytes; see ``article``."""
