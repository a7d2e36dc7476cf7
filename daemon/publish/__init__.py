"""Stage 6, publish: stored stories to digest documents.

``select`` picks the stories of a digest query (time window, outlets, folders, feeds) and their primary source,
``render`` writes Atom, RSS 2.0, JSON Feed and HTML, ``tables`` draws stories and feeds on a terminal.
"""
