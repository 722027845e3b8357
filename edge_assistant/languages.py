"""Languages by ISO 639-1 code and English name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .errors import UsageError

NAMES = {
    "ar": "Arabic",
    "bg": "Bulgarian",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "ms": "Malay",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh": "Chinese",
}
ALIASES = {"jp": "ja", "cn": "zh", "kr": "ko", "mandarin": "zh", "farsi": "fa", "nb": "no", "iw": "he"}
# Native names are accepted too.
NATIVE = {
    "日本語": "ja",
    "中文": "zh",
    "한국어": "ko",
    "deutsch": "de",
    "français": "fr",
    "francais": "fr",
    "español": "es",
    "espanol": "es",
    "italiano": "it",
    "português": "pt",
    "русский": "ru",
}


@dataclass(frozen=True)
class Language:
    code: str
    name: str


def language(text: str) -> Language:
    """Parse an ISO code or a name ('ja', 'Japanese', '日本語'); unknown ones fail with close matches."""
    key = text.strip().lower().replace("_", "-").split("-")[0] if len(text.strip()) <= 6 else text.strip().lower()
    code = ALIASES.get(key) or NATIVE.get(key) or (key if key in NAMES else None)
    if code is None:
        by_name = {name.lower(): c for c, name in NAMES.items()}
        code = by_name.get(text.strip().lower())
    if code is None:
        close = difflib.get_close_matches(text.strip().title(), NAMES.values(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; use an ISO 639-1 code such as ja, fr, de"
        raise UsageError(f"unknown language '{text}'{hint}")
    return Language(code, NAMES[code])
