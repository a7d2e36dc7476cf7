"""Detection engine: wire copies and same-event stories, decided incrementally, one article at a time.

Pure in-memory library (no database, no I/O). The daemon, ``wiredesk replay`` and ``wiredesk cluster``
all feed it articles in arrival order through :meth:`Engine.add`; the caller stores each
:class:`Assignment` (story, copy, score, evidence, fingerprint) and after a restart rebuilds the state
with :meth:`Engine.restore` from the stored fingerprints, without re-reading any text.

Algorithm
---------
1. **Fingerprint.** The text is normalised (Unicode NFKC, typographic quotes and dashes, case); a wire
   dateline in front ("SEOUL, April 14 (Yonhap) -- ") and trailing boilerplate paragraphs ("(END)",
   copyright lines) are removed. Tokenisation and hashing run over the text as a numpy byte array (one
   rolling-hash pass gives every token's hash). Word 3-shingles of the body (the headline is left out:
   copies get new ones) go into a 128-slot MinHash signature, computed for all shingles and slots at once.
   Separately the article's salient terms are weighted: content words, proper names (words the article
   capitalises inside sentences), multiword names and numbers (years weigh like a rare name), from title,
   lead and body; sublinear term frequency times an IDF taken from a general English word-frequency table
   (wordfreq), so the first articles are judged against ordinary English rather than against the few seen
   so far. The kept terms, their weights, the signature and the shingle count form the fingerprint.
2. **Copy tier.** LSH over the signature (64 bands of 2 slots) proposes earlier articles; a candidate is a
   copy source only if the estimated Jaccard AND the estimated containment of the smaller shingle set
   (from Jaccard and the two set sizes) pass, so truncated or lightly edited copies still count while
   shared phrases do not. A copy joins its source's story; ``copy_of`` names the earliest member of the
   copy group (by publication time when known, else by arrival).
3. **Story tier.** Candidate stories share some of the article's heaviest terms (an inverted index that
   remembers the most recent stories per term) or are nearest by the semantic vector (the all-MiniLM-L6-v2
   embedding of title and lead, :mod:`.embed`, stored in the fingerprint) among the recently founded ones;
   with dates, none quiet for over a month. Each candidate is described as a whole, never by one member (which
   would chain one event into the next): the cosine to its mean embedding, the cosine to the sum of its members'
   salient terms, and how long it had been quiet against its own pace (:mod:`.story_model`). The story model's
   weighted sum picks the candidate that passes its threshold most clearly, else the article founds a story.
4. **Settling.** :meth:`Engine.settle` revisits the young stories (:mod:`.settle`): two that are one event merge
   (the larger keeps its id; the other's becomes an alias), an article that joined narrowly moves when another
   story now fits it clearly better. The changes are returned as :class:`Merge` and :class:`Move` records for the
   caller to store; :meth:`Engine.apply` replays one decided by another engine. This is what makes the stories
   independent of the order the articles came in.

Every decision carries JSON evidence: every feature's value and its share of the score, the probability,
the shared salient terms with their contributions, or the estimated Jaccard and containment for a copy. The story model's weights and
thresholds live in :mod:`.story_model`, every other setting in :class:`EngineSettings`; its defaults are the
ones used everywhere.

Languages
---------
Story clustering supports **English** only. Each article gets a cheap language check (share of English
function words among its tokens); an article that fails it (German, Spanish, French, Korean, Chinese,
Japanese, ...) founds its own story and never joins another article's story except as a near-verbatim
copy. Copies are detected for any language: Chinese and Japanese text is shingled per character, other
scripts per word.
"""

from . import story_model
from .core import Engine
from .fingerprint import Fingerprint, FingerprintError
from .types import Assignment, Change, Document, EngineSettings, Merge, Move

__all__ = [
    "Assignment",
    "Change",
    "Document",
    "Engine",
    "EngineSettings",
    "Fingerprint",
    "FingerprintError",
    "Merge",
    "Move",
    "story_model",
]
