"""Detection engine: wire copies and same-event stories, decided incrementally, one article at a time.

Pure in-memory library (no database, no I/O). The daemon, ``wiredesk replay`` and ``wiredesk cluster``
all feed it articles in arrival order through :meth:`Engine.add`; the caller stores each
:class:`Assignment` (story, copy, score, evidence, fingerprint) and after a restart rebuilds the state
with :meth:`Engine.restore` from the stored fingerprints, without re-reading any text.

Algorithm
---------
1. **Fingerprint.** The body is normalised (Unicode NFKC, case, whitespace); a wire dateline in front
   ("SEOUL, April 14 (Yonhap) -- ") and trailing boilerplate paragraphs ("(END)", copyright lines) are
   removed. Word 3-shingles of the body (the headline is left out: copies get new ones) are hashed into a
   128-slot MinHash signature, computed with numpy for all shingles at once. Separately, the article's
   salient terms are weighted: content words and multiword capitalised names from title, lead and body,
   sublinear term frequency times an IDF taken from a general English word-frequency table (wordfreq), so
   the first articles are judged against ordinary English rather than against the few seen so far.
2. **Copy tier.** LSH over the signature (64 bands of 2 slots) proposes earlier articles; a candidate is a
   copy source only if the estimated Jaccard AND the estimated containment of the smaller shingle set
   (from Jaccard and the two set sizes) pass, so truncated or lightly edited copies still count while
   shared phrases do not. A copy joins its source's story; ``copy_of`` names the earliest member of the
   copy group.
3. **Story tier.** Candidate stories share some of the article's heaviest terms (inverted index); each
   candidate is verified by cosine similarity to the story centroid (the sum of its members' term
   vectors) — never to a single member, which would chain different events together — and must lie
   within a time window of the story's publication span when both dates are known. The best candidate
   above the threshold takes the article; otherwise it founds a new story. Decisions are never revised,
   so a story id, once returned, is final.

Every decision carries JSON evidence: similarity to the centroid and the shared salient terms with their
contributions, or the estimated Jaccard and containment for a copy.

Languages
---------
Story clustering supports **English** only. Each article gets a cheap language check (share of English
function words); an article that fails it (German, Spanish, Korean, Chinese, ...) never joins another
article's story except as a near-verbatim copy, which is detected for any language (ideographic scripts
are shingled per character, other scripts per word).
"""

from .core import Engine
from .fingerprint import Fingerprint, FingerprintError
from .model import Assignment, Document, EngineSettings

__all__ = ["Assignment", "Document", "Engine", "EngineSettings", "Fingerprint", "FingerprintError"]
