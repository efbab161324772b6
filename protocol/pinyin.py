"""WeChat's pinyin fields: Han characters become pinyin, Latin letters and digits stay, everything else is dropped.

淑萍 -> shuping / SP;  Nicole_nico'ni -> Nicoleniconi / NICOLENICONI.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

_DROPPED = re.compile(r"[^A-Za-z0-9]")


def _kept(text: str) -> str:
    return _DROPPED.sub("", text)


# Names repeat across accounts and syncs, and pypinyin's phrase matching is the costly part of building a record.
@lru_cache(maxsize=65536)
def quan_pin(text: str) -> str:
    """Full pinyin: 重庆银行 -> chongqingyinhang (phrases decide polyphonic characters)."""
    return _kept("".join(lazy_pinyin(unicodedata.normalize("NFKC", text))))


@lru_cache(maxsize=65536)
def initials(text: str) -> str:
    """Upper-case initials of Han characters, with Latin letters and digits kept whole: 张三abc -> ZSABC."""
    return _kept("".join(lazy_pinyin(unicodedata.normalize("NFKC", text), style=Style.FIRST_LETTER))).upper()
