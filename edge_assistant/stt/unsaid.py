"""Words Whisper writes into the silence after the voice.

At a pause inside a sentence ("Remind me to buy ... milk") Whisper often completes what it heard with a word
that was never said ("Remind me to buy me.", "How do I make it?"), and closes the sentence, which then reads as
finished. Placed in time, such a word starts where there was no voice any more, or at its very last moment
with little confidence; a word that was said starts well before the voice ends. What the speaker said so far
is the text without those words, and it does not end a sentence.
"""

from __future__ import annotations

import re

from .types import Utterance, Word

LATE = 0.05
"""A word that starts more than this many seconds after the voice ended was not heard."""
LAST_MOMENT = 0.05
"""A word that starts within this many seconds before the end of the voice (too late to have been said whole)
was not heard either ..."""
UNSURE = 0.6
"""... unless Whisper is at least this sure of it (alignment is coarse: "What time is it?")."""
_PUNCTUATION = re.compile(r"^[^\w]+$")


def unsaid(word: Word, voice_end: float) -> bool:
    """Whether `word` lies in the silence after `voice_end` (seconds, on the word times' clock)."""
    if word.start > voice_end + LATE:
        return True
    return word.start > voice_end - LAST_MOMENT and word.confidence < UNSURE


def said_so_far(heard: Utterance, voice_end: float) -> str:
    """The text of `heard` without the words at its end that were not said (and the punctuation after them);
    the text unchanged when it has no word times or every word was heard."""
    words = list(heard.words)
    kept = len(words)
    while kept:
        last = max((i for i in range(kept) if not _PUNCTUATION.match(words[i].text)), default=-1)
        if last < 0 or not unsaid(words[last], voice_end):
            break
        kept = last
    if kept == len(words):
        return heard.text
    return _join(words[:kept])


def _join(words: list[Word]) -> str:
    text = ""
    for w in words:
        text += w.text if _PUNCTUATION.match(w.text) or not text else f" {w.text}"
    return text
