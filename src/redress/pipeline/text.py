"""Find personal details published in a caption (doxxing raises review priority).

Intimate images are often posted next to the victim's phone number, social
media accounts or national ID number. :func:`find_personal_details` finds:

- phone numbers: international (``+CC ...`` or ``00CC ...``, 8-15 digits as
  E.164 allows), Chinese mobiles (``1[3-9]x xxxx xxxx``, with or without
  ``+86``) and North American numbers (``(415) 555-0134``);
- social-media handles: ``@name`` and profile URLs of common networks
  (Instagram, X/Twitter, Facebook, TikTok, Telegram, Weibo, Douyin,
  Xiaohongshu, YouTube, Snapchat, LinkedIn, VK) and WeChat IDs written after
  ``微信``/``WeChat``;
- Chinese resident ID numbers (18 characters) whose birth date is a real date
  and whose ISO 7064 MOD 11-2 check character is right;
- US social security numbers in ``AAA-GG-SSSS`` form within the ranges the
  SSA issues (area not 000, 666 or 900-999; group not 00; serial not 0000).

The detectors prefer precision: a match only raises priority, but a caption
full of false alarms would teach reviewers to ignore the flag.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass


class DetailKind(enum.StrEnum):
    """The kinds of personal detail the detector reports."""

    PHONE = "phone"
    HANDLE = "handle"
    CN_RESIDENT_ID = "cn_resident_id"
    US_SSN = "us_ssn"


@dataclass(frozen=True, slots=True)
class PersonalDetail:
    """One personal detail found in a text: its kind, the matched text and where."""

    kind: DetailKind
    text: str
    start: int
    end: int


_CN_ID = re.compile(
    r"(?<![0-9A-Za-z])([1-8]\d{5})(\d{4})(\d{2})(\d{2})(\d{3})([0-9Xx])(?![0-9A-Za-z])"
)
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"

_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
# Numbers the SSA never issued but that circulate widely (advertising samples).
_SSN_SAMPLES = frozenset({"078051120", "219099999", "123456789"})

_CN_MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
_INTERNATIONAL = re.compile(r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[\s.-]?\(?\d{1,5}\)?){2,6}(?!\d)")
_NANP = re.compile(
    r"(?<![\d+])(?:\(\s*[2-9]\d{2}\s*\)\s*|[2-9]\d{2}[\s.-])[2-9]\d{2}[\s.-]\d{4}(?!\d)"
)

_AT_HANDLE = re.compile(r"(?<![\w@./])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{1,30}[A-Za-z0-9_]))(?![\w@])")
_NETWORKS = (
    r"instagram\.com",
    r"(?:twitter|x)\.com",
    r"(?:facebook|fb)\.com",
    r"tiktok\.com/@?",
    r"t\.me",
    r"telegram\.me",
    r"weibo\.(?:com|cn)(?:/u)?",
    r"douyin\.com/user",
    r"xiaohongshu\.com/user/profile",
    r"youtube\.com/(?:@|c/|channel/|user/)?",
    r"snapchat\.com/add",
    r"linkedin\.com/in",
    r"vk\.com",
)
_PROFILE_URL = re.compile(
    r"(?:https?://)?(?:www\.|m\.|mobile\.)?(?:"
    + "|".join(_NETWORKS)
    + r")/?[A-Za-z0-9_.\-@]{2,64}",
    re.IGNORECASE,
)
_WECHAT = re.compile(
    r"(?:微信号?|wechat|weixin|vx)\s*(?:id)?\s*[:：]?\s*([A-Za-z][-_A-Za-z0-9]{5,19})",
    re.IGNORECASE,
)


def cn_resident_id_valid(text: str) -> bool:
    """Whether ``text`` is an 18-character Chinese resident ID with a real birth date
    and a correct ISO 7064 MOD 11-2 check character."""
    value = text.strip().upper()
    if len(value) != 18 or not value[:17].isdigit() or value[0] not in "12345678":
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > dt.datetime.now(dt.UTC).date():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _CN_ID_WEIGHTS, strict=True))
    return _CN_ID_CHECK[total % 11] == value[17]


def us_ssn_valid(area: str, group: str, serial: str) -> bool:
    """Whether an SSN's three parts fall in the ranges the SSA issues."""
    if area in {"000", "666"} or area.startswith("9"):
        return False
    if group == "00" or serial == "0000":
        return False
    return area + group + serial not in _SSN_SAMPLES


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def find_personal_details(text: str) -> list[PersonalDetail]:
    """Every personal detail in ``text``, in order of position, without overlaps."""
    found: list[PersonalDetail] = []

    def free(start: int, end: int) -> bool:
        return all(end <= d.start or start >= d.end for d in found)

    def add(kind: DetailKind, match: re.Match[str], group: int = 0) -> None:
        start, end = match.span(group)
        if free(start, end):
            found.append(PersonalDetail(kind, match.group(group), start, end))

    for m in _CN_ID.finditer(text):
        if cn_resident_id_valid(m.group(0)):
            add(DetailKind.CN_RESIDENT_ID, m)
    for m in _SSN.finditer(text):
        if us_ssn_valid(m.group(1), m.group(3), m.group(4)):
            add(DetailKind.US_SSN, m)
    for m in _CN_MOBILE.finditer(text):
        add(DetailKind.PHONE, m)
    for m in _INTERNATIONAL.finditer(text):
        if 8 <= _digits(m.group(0)) - (1 if m.group(0).startswith("00") else 0) * 2 <= 15:
            add(DetailKind.PHONE, m)
    for m in _NANP.finditer(text):
        add(DetailKind.PHONE, m)
    for m in _PROFILE_URL.finditer(text):
        add(DetailKind.HANDLE, m)
    for m in _AT_HANDLE.finditer(text):
        add(DetailKind.HANDLE, m)
    for m in _WECHAT.finditer(text):
        add(DetailKind.HANDLE, m, 1)
    return sorted(found, key=lambda d: d.start)
