"""Stage 2, parse: feed bytes to entries, in worker processes when there are cores to spare.

``feed`` parses RSS and Atom with feedparser (after ``charset`` refuses encodings that would hide entities), ``identity``
says what makes two sightings of an item the same entry (its GUID, its canonical link, or a hash of its content).
Pure functions of their input: no database, no network.
"""
