"""When a spoken turn is over: from what was said, not only from how long it has been quiet.

At a short pause the recognizer already has the words so far. When they read as a finished request ("What is the
capital of France?") a short silence ends the turn; when they stop on a word that needs more ("Set a timer for",
"the capital of") the assistant waits longer, so a person who pauses to think is not answered half-way; a question
heard to end on a verb its auxiliary left there ("does a spider have?") is finished. A recognizer that punctuates
(Whisper) also tells from the sound whether a sentence has ended: it closes one it hears end with a full stop or a
question mark, and leaves one that trails off open ("What is the capital of all"), so there an unpunctuated end is
an unfinished one; a word it only expected, placed after the voice ended ("Remind me to buy me."), is left out
before the question is asked (`stt/unsaid.py`). The recognizers ask `TurnEnd` at each moment of silence
(`stt.recognizer.TurnEnd`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..settings import TurnSettings

_CONTINUES = (
    # articles, prepositions and conjunctions: a phrase that stops on one of these is not finished
    "a an the of for to in on at by with from into onto about than as like and or but nor so because if",
    "between through across against toward towards during among via upon despite except including versus",
    "when while whether that which who whom whose where how what why",
    # possessives and determiners
    "my your his her its our their this these those some any every each no",
    # auxiliaries, and verbs that need an object or a complement
    "is are was were be been am do does did can could would should will shall may might must",
    "have has had please let set make tell give call remind turn put",
    # fillers: the speaker is still thinking
    "um uh er erm hmm ah well",
)
CONTINUES = frozenset(word for group in _CONTINUES for word in group.split())
"""Last words that leave a request unfinished."""
_DETERMINERS = "a an the my your our their his her this that some any another"
DETERMINERS = frozenset(_DETERMINERS.split())
_BEFORE_NOUN = "good great nice new best favourite favorite little big few couple short quick"
BEFORE_NOUN = frozenset(_BEFORE_NOUN.split())
"""Adjectives that, after an article or determiner, stand before the noun still to come ("recommend a good")."""
_STRANDED = "have has had do does did be is are was were am"
STRANDED = frozenset(_STRANDED.split())
"""Verbs a question may end on once its auxiliary has come before the subject ("How many legs does a spider
have?", "Do you know where it is?")."""
_AUXILIARIES = "do does did can could will would should shall may might must is are was were has have"
AUXILIARIES = frozenset(_AUXILIARIES.split())
OPEN_END = re.compile(r"(\.\.\.|…|,|;|:|-|–|—)\s*$")
CLOSED_END = re.compile(r"[.?!。？！][\"'”’)\]]*\s*$")
"""A sentence's closing punctuation (and any quote or bracket after it)."""
WORD = re.compile(r"[\w']+")


def looks_complete(text: str, punctuated: bool = False) -> bool:
    """Whether `text` reads as a whole request rather than one cut at a pause. `punctuated`: the recognizer
    punctuates what it hears, so text without a closing full stop or question mark trails off."""
    stripped = text.strip()
    if not stripped or OPEN_END.search(stripped):
        return False
    if punctuated and not CLOSED_END.search(stripped):
        return False
    words = WORD.findall(stripped.lower())
    if not words:
        return False
    if words[-1] in CONTINUES:
        return stranded(stripped, words)
    return not (len(words) > 1 and words[-2] in DETERMINERS and words[-1] in BEFORE_NOUN)


def stranded(text: str, words: list[str]) -> bool:
    """A question heard to end (a question mark) on a verb left at its end by the auxiliary before its subject
    ("How many legs does a spider have?"): finished, though the verb alone could lead on."""
    return (
        text.endswith("?")
        and len(words) >= 3
        and words[-1] in STRANDED
        and words[-2] not in CONTINUES
        and any(word in AUXILIARIES for word in words[:-2])
    )


class TurnEnd:
    """Ends a turn after `complete_silence` when its words look finished; other turns end when the
    endpointer's trailing silence says so.

    `on_likely_end` hears of words that read as a finished request though the recognizer left them open (no
    closing mark): the turn will end with them unless the voice comes back (`on_resumed`) before the trailing
    silence is over, so an answer can be prepared during that wait (`modes/draft.py`).
    """

    def __init__(
        self,
        settings: TurnSettings | None = None,
        on_likely_end: Callable[[str], None] | None = None,
        on_resumed: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings or TurnSettings()
        self.on_likely_end = on_likely_end
        self.on_resumed = on_resumed
        self._waiting_on: str | None = None
        self._meant: str | None = None
        """Words waited on that the language model read as a finished request (`meant`)."""

    @property
    def min_silence(self) -> float:
        """The least silence after which a turn may end: the recognizer needs the words by then."""
        return self.settings.complete_silence

    @property
    def pause(self) -> float:
        """Seconds of silence after which the words so far are wanted (the turn may be ending)."""
        return self.settings.pause

    def __call__(self, text: str, silence: float, punctuated: bool) -> bool:
        if silence < self.settings.complete_silence:
            return False
        if looks_complete(text, punctuated):
            return True
        return text == self._meant and silence >= self.settings.meant_silence

    def waiting(self, heard: str, said: str) -> None:
        """The turn did not end at a pause after these words (`heard`: the text the recognizer will give;
        `said`: without the words it wrote into the silence); it ends with them if the silence lasts."""
        self._waiting_on, self._meant = said, None
        if self.on_likely_end is not None and looks_complete(said):
            self.on_likely_end(heard)

    @property
    def waiting_on(self) -> str | None:
        """The words said (without those the recognizer wrote into the silence) that the turn waits on."""
        return self._waiting_on

    def meant(self) -> None:
        """The language model reads the words waited on as a finished request: a shorter silence ends the turn
        (`TurnSettings.meant_silence`). May be called from another thread."""
        self._meant = self._waiting_on

    def resumed(self) -> None:
        """The voice came back after words given to `waiting`."""
        self._waiting_on = self._meant = None
        if self.on_resumed is not None:
            self.on_resumed()
