"""Reddit text is data, never instructions.

Everything that comes from the lake (comment text, titles, subreddit names, ids) passes through
:func:`clean` before it reaches a prompt:

1. Unicode NFKC (folds full-width look-alikes such as ``＜`` into ``<`` before escaping them);
2. control and invisible format characters removed (C0/C1 controls except newline and tab,
   zero-width and bidi overrides, BOM), runs of blank lines squeezed;
3. ``&``, ``<``, ``>`` and ``"`` escaped as HTML entities, so no evidence text can open or close an
   evidence tag (the prompt's only delimiters) or a chat-template tag such as ``<|im_start|>``;
4. special-token strings of the LLM's tokenizer that survive step 3 (e.g. ``[INST]``) defanged by
   escaping their first character, so the tokenizer never reads them as control tokens.

The prompt (zipp.personas.prompt) wraps cleaned text in ``<evidence>`` blocks and tells the model
to treat the block as evidence only.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

# Cc except \t \n; plus Cf characters that hide or reorder text.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
_BLANKS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t]{2,}")


def strip_controls(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    # any remaining Cc/Cf (new Unicode versions) except newline/tab
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs"))
    text = _SPACES.sub(" ", text)
    return _BLANKS.sub("\n\n", text).strip()


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def defang(text: str, special_tokens: Iterable[str]) -> str:
    """Escape the first character of any special-token string still present (``[INST]`` -> ``&#91;INST]``)."""
    for tok in sorted(set(special_tokens), key=len, reverse=True):
        if tok and len(tok) > 1 and tok in text:
            text = text.replace(tok, f"&#{ord(tok[0])};{tok[1:]}")
    return text


def clean(text: str | None, special_tokens: Iterable[str] = ()) -> str:
    """Untrusted text -> safe text for inside an evidence block."""
    if not text:
        return ""
    return defang(escape(strip_controls(text)), special_tokens)


def clean_inline(text: str | None, special_tokens: Iterable[str] = (), max_chars: int = 200) -> str:
    """For attribute values (subreddit names, ids): one line, bounded."""
    return clean(" ".join((text or "").split())[:max_chars], special_tokens)


_PARTIAL_ENTITY = re.compile(r"&#?\w{0,8}$")


def trim_partial_entity(text: str) -> str:
    """After a token-boundary cut: drop a half entity at the end (``...&am``)."""
    return _PARTIAL_ENTITY.sub("", text)
