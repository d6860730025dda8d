"""`t2i data caption`: captions made from pictures' file names or folder names, written as the NAME.txt files a
training folder reads, for the pictures that have none (a folder of named pictures: icons, emoji, sprites, a
class-per-folder collection). A caption file that exists is never replaced."""

from __future__ import annotations

import errno
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from t2i_cli.errors import OutputError, counted
from t2i_cli.files import (
    IMAGE_SUFFIXES,
    STALE_AFTER,
    cut_record,
    head_of_long_name,
    not_utf8,
    recorded_by_018,
    recorded_name,
    remove_temporaries,
    signals_held,
    write_if_absent,
)
from t2i_cli.models.tokenizer import BLACK_FLAG, KEYCAP

SOURCES = ("name", "folder")  # what a caption is made from: the picture's file name, or its folder's name

# Words that say where a picture came from, not what it shows: a name of only these (and numbers) is a camera's or
# a tool's ("IMG_2041", "DSC00012", "Screenshot 2024-05-01 at 10.31.02", "untitled-3", "photo (2)"), no caption.
TOOL_WORDS = frozenset("""img image images dsc dscn dscf dcim pxl mvimg pano vid video screenshot screen scan
scanned photo photos pic pics picture pictures untitled unnamed copy file frame export exported edited final
sample at am pm wa hdr mp resized original artboard maxresdefault hqdefault mqdefault sddefault oip th""".split())
# (wa: WhatsApp's; hdr, mp: a phone's HDR, motion photo; artboard: Illustrator's and Sketch's "Artboard 1"; a YouTube
# thumbnail's "maxresdefault", "hqdefault (1)", and Bing's "OIP", "th (1)", as a browser saves them, were captions)
# ... and the same words in other languages than English, as their tools name pictures ("Foto 12", "Bild 1",
# "Imagen 3", "画像 1", "Unbenannt-1", "Sans titre 2" were captions where "Picture 12", "Untitled-1" were none)
TOOL_WORDS |= frozenset("""bild bilder foto fotos imagen immagine afbeelding obrázek zdjęcie фото изображение 画像 写真
图片 사진 unbenannt""".split())
# an "untitled" of several words (_UNTITLED: read as "untitled"), and Canva's "Untitled design (1)", Procreate's
# "Untitled_Artwork"
_UNTITLED = re.compile(r"(?<![^\W_])(?:sans titre|ohne titel|sin título|sem título|senza titolo|bez názvu|bez tytułu"
                       r"|без названия|无标题|未命名|名称未設定|제목 없음|untitled[\s_](?:design|artwork))(?![^\W_])",
                       re.IGNORECASE)  # (and Procreate's "Untitled_Artwork", "Untitled_Artwork 2": "untitled artwork")
# A messaging app's name in the names it gives pictures ("WhatsApp Image ... at ...", "FB_IMG_...", Messenger's
# "received_...", "Snapchat-..."): a tool word there, beside another tool word, a date or a long number; alone (an
# icon set's "whatsapp.png", "snapchat.png") it is what the picture shows, and its caption. So are a stock photo
# site's ("AdobeStock_123456789", "shutterstock_123456789", "iStock-123456789", "GettyImages-123456789",
# "pexels-photo-1234567" were captioned "adobe stock", "shutterstock", "i stock", ...; a brand icon set's
# "unsplash.svg" is "unsplash"), Lightroom's enhanced copy ("IMG_1234-Enhanced-NR"; not its "Edit": an icon theme's
# "edit-copy" is "edit copy") and GNOME's screenshot's "from" ("Screenshot from 2024-05-01 10-31-02" was "screenshot
# from").
APP_WORDS = frozenset("""whatsapp snapchat fb received shutterstock adobestock istock istockphoto gettyimages pexels
unsplash pixabay depositphotos dreamstime vecteezy freepik alamy enhanced nr from signal telegram wechat weixin wx
preview viber camscanner shot
微信图片 mmexport""".split())  # (WeChat's "mmexport1690000000000", "微信图片_20240501103102"; Adobe Stock's
# watermarked comp "AdobeStock_123456789_Preview" was "adobestock preview"; Viber's
# "viber_image_2024-05-01_10-31-02-123" was "viber image")
# (shot: macOS' "Screen Shot 2020-05-01 at 10.31.02" beside "screen" or a date; alone, a game's sprite "shot.gif",
# pygame's bullet, is what it shows: it was no caption, counted among the names without words)
# (signal: Signal Desktop's "signal-2024-05-01-103102" was "signal"; telegram: Telegram's
# "telegram-cloud-photo-size-2-5361234567890123456-y" was "telegram cloud photo size 2 y": _TELEGRAM, as is
# WeChat's camera's "wx_camera_1690000000000", "wx camera")
# A stock photo site's download named after its photographer: Pexels' "pexels-anna-shvets-4587991" (its user and the
# photo's number) and Unsplash's "markus-spiske-iar-afB0QQw-unsplash" (the user and the photo's id of 11 letters,
# digits, - or _, a capital or a digit glued to a small letter among them: "over-lake-2" of
# "sunset-over-lake-2-unsplash" is words and a counter, no id, and that name was no caption; or 11 letters and digits
# without a separator, a digit among them, "anna-12345678901-unsplash": was "anna unsplash"): the photographer's name
# was the caption ("pexels anna shvets", "markus spiske iar af b 0q qw unsplash"); no caption, as
# "pexels-photo-1234567" is none
_STOCK_AUTHOR = re.compile(r"\s*pexels-[^\W_](?:[\w-]*[^\W_])?-\d{5,}\s*"
                           r"|[^\W_][\w-]*-(?=[\w-]{0,10}[A-Z]|[\w-]{0,9}(?:[a-z]\d|\d[a-z])"
                           r"|(?=[A-Za-z0-9]{0,10}\d)[A-Za-z0-9]{11}-)[A-Za-z0-9_-]{11}-unsplash\s*")
# WhatsApp Desktop's save in any language, its "at" translated ("WhatsApp Bild 2024-05-01 um 10.31.02", "WhatsApp
# Image 2024-05-01 à 10.31.02", "WhatsApp Afbeelding ... om ...", with the _1a2b3c4d of a later version: were
# "whatsapp bild um", "whatsapp image à"; a later one's "Imagen de WhatsApp ... a las ...", "Image WhatsApp ... à
# ...": "imagen de whatsapp a las"), and Facebook Messenger's "Messenger_creation_<number or UUID>" ("messenger
# creation 1234 4c 5d 9e 8f"): no caption, as "WhatsApp Image 2024-05-01 at 10.31.02" is none
_MESSENGER = re.compile(r"\s*(?:whatsapp[\s_-]+[^\W\d_]+|[^\W\d_]+(?:[\s_-]+de)?[\s_-]+whatsapp)"
                        r"[\s_-]+\d{4}-\d{2}-\d{2}[\s_-]+(?:[^\W\d_]+[\s_-]+){0,2}\d{1,2}\.\d{2}\.\d{2}"
                        r"(?:\s*[ap]\.?\s?m\.?)?(?:_[0-9a-f]{8})?(?:\s*\(\d{1,4}\))?\s*"
                        r"|\s*messenger_creation_[0-9a-f-]{8,}\s*", re.IGNORECASE)
# A camera's name that kept a word: a drone's or action camera's ("DJI_0001", "GOPR0001", "DJI_20240501103102_0001_D":
# "dji", "gopr") and the Pixel's mode after its number ("PXL_20240501_103102345.PORTRAIT", ".NIGHT",
# ".RAW-01.COVER": "pxl portrait"), and macOS Photo Booth's "Photo on 5-1-24 at 10.31 AM #2" ("photo on 5 1 24 at 10 31
# am"), iOS Mail's "Image from iOS (3)" ("image from i os"), and a camera's picture edited in Lightroom or Photoshop,
# "IMG_1234-Edit", "DSC_1234-HDR-Edit", "IMG_1234-Enhanced-SR" ("img 1234 edit", "img 1234 enhanced sr": only
# "-Enhanced-NR" was none): no caption, as "DSC01234" and "PXL_20240501_103102345" are none
_CAMERA = re.compile(r"\s*(?:dji_\d{4,}(?:_\d{4})?(?:_[a-z])?|gopr\d{4}|image from ios(?:\s*\(\d{1,4}\))?"
                     r"|_?(?:img|dsc[fn]?)[_-]?e?\d{3,}(?:[\s_-]+(?:\d{1,3}|edit|enhanced|nr|sr|rd|hdr|pano|bearbeitet))+"
                     r"|photo on \d{1,2}-\d{1,2}-\d{2,4} at \d{1,2}\.\d{2}(?:\.\d{2})?(?:\s*[ap]m)?(?:\s*#\d{1,4})?"
                     r"|pxl_\d{8}_\d{6,9}(?:\.[a-z_]+(?:-\d{1,3})?)*)\s*", re.IGNORECASE)
# an image generator's name: ChatGPT's "ChatGPT Image Apr 1, 2025, 10_00_00 AM" ("chat gpt image apr 1 2025 am"),
# no caption; DALL·E's "DALL·E 2024-01-01 12.34.56 - a red bird on a branch", the prompt after its date ("dall·e a red
# bird on a branch"): the prompt alone
_CHATGPT = re.compile(r"\s*chatgpt image [a-z]{3,9} \d{1,2}, \d{4}, \d{1,2}_\d{2}_\d{2}(?: [ap]m)?"
                      r"(?:\s*\(\d{1,4}\))?\s*", re.IGNORECASE)
_DALL_E = re.compile(r"\s*dall[·.\s-]?e(?:\s*\d)?\s+\d{4}-\d{2}-\d{2}\s+\d{2}\.\d{2}\.\d{2}\s+-\s+", re.IGNORECASE)
_TELEGRAM = re.compile(r"telegram-cloud-(?:photo|document)-size-\d+-\d+-[a-z]|wx_camera(?=_\d)", re.IGNORECASE)
# A screenshot's name in a language other than English, before its date (macOS': "Bildschirmfoto 2024-05-01 um
# 10.31.02", "Capture d’écran 2024-05-01 à 10.31.02", "Captura de pantalla 2024-05-01 a las 10.31.02",
# "スクリーンショット 2024-05-01 10.31.02", "截屏2024-05-01 10.31.02"; GNOME's "Bildschirmfoto vom 2024-05-01
# 10-31-02"): no caption, as "Screenshot 2024-05-01 at 10.31.02" is none ("bildschirmfoto um", "capture d’écran à")
_SCREENSHOT = re.compile(r"\s*(?:bildschirmfoto|capture d['’]écran|captura de (?:pantalla|tela|ecrã)|schermafbeelding"
                         r"|skärmavbild|skærmbillede|skjermbilde|näyttökuva|zrzut ekranu|snímek obrazovky"
                         r"|istantanea(?: schermo)?|schermata|ekran resmi|снимок экрана|スクリーンショット"
                         r"|截屏|屏幕快照|屏幕截图|스크린샷"
                         # (Windows 11's Snipping Tool's, "Ekran görüntüsü 2024-05-01 103102", "Skärmbild ...": were
                         # "ekran görüntüsü", "skärmbild")
                         r"|ekran görüntüsü|skärmbild|képernyőkép|snímka obrazovky|captură de ecran|знімок екрана"
                         r"|στιγμιότυπο οθόνης|ảnh chụp màn hình|tangkapan layar)(?![^\W\d_])", re.IGNORECASE)
# ... or with Windows' counter alone, as its Print Screen names them in Pictures\Screenshots ("Capture d’écran (3)",
# "Captura de pantalla (12)": "capture d’écran", where "Screenshot (3)" was none)
_SCREENSHOT_COUNTER = re.compile(r"[\s_-]*(?:\(\d{1,4}\)|\d{1,4})?\s*")
# Android's screenshot, its date and time glued, and after them the app it shows (Samsung's and the Pixel's
# "Screenshot_20240501-103102_Instagram", MIUI's "Screenshot_2024-05-01-10-31-02-123_com.android.chrome": were
# "screenshot instagram", "screenshot com android chrome"): no caption, as "Screenshot_20240501-103102" is none
_ANDROID_SCREENSHOT = re.compile(r"\s*screenshot_(?:\d{8}[-_]\d{6}|\d{4}(?:-\d{2}){5}(?:-\d{1,3})?)(?:[_-].*)?",
                                 re.IGNORECASE)


def _case_split(piece: str) -> list[str]:
    """A name's piece split at camelCase and letter-digit boundaries ("RedBird2" -> Red Bird 2; "HTMLParser" -> HTML
    Parser; "MP3Player" -> MP 3 Player), in any script that has letter case ("CaféNoir", "КраснаяПтица": only
    ASCII capitals parted words, so they were one, "cafénoir"); not a number's unit ("3D", "4k", "16x16": "3 d"
    was no word); nor in or right after a percent escape left as typed ("caf%e9" was "caf%e 9")."""
    escaped = {m.start() + d for m in re.finditer("%[0-9A-Fa-f]{2}", piece) for d in (1, 2, 3)}
    cuts = [i for i in range(1, len(piece)) if i not in escaped and (
            (piece[i - 1].islower() and piece[i].isupper())
            or (piece[i - 1].isupper() and piece[i].isupper() and piece[i + 1:i + 2].islower())
            or (piece[i - 1].isalpha() and piece[i].isdecimal())
            or (piece[i - 1].isdecimal() and piece[i].isalpha() and piece[i + 1:i + 2].islower()))]
    return [piece[a:b] for a, b in zip([0, *cuts], [*cuts, len(piece)], strict=True)]


# what says which file, not what it shows: a version ("v2"), a size or scale ("16x16", "16×16", "@2x", "48px",
# "48dp")
_NOT_WORDS = re.compile(r"v\d+|\d+[x×]\d*|\d+(?:px|dp|dpi)|\d{3,4}p", re.IGNORECASE)  # (and "300dpi", "720p": were
# "300 dpi", "720p")
# an icon's size in pixels after a word that says it is an icon, at the name's end or not, of any number of pixels
# an icon is drawn at (16 to 1024: Apple's "apple-touch-icon-180", "apple-touch-icon-152-precomposed", Microsoft's
# "mstile-310", "favicon-194"; "180" was a word), not only the common ones after any word (_NAMED_NUMBER's)
_ICON_WORD_SIZE = re.compile(r"(?<![^\W_])(?:icon|favicon|appicon|logo|mstile)(?:[\s_-]+(?:small|large|app))?"
                             r"[\s_-]+(\d{2,4})(?![^\W_])", re.IGNORECASE)  # (and iOS' "Icon-Small-40")
# Google's Material Symbols as downloaded, the icon's name and then its size, colour and the font's axes
# ("home_24dp_5F6368_FILL0_wght400_GRAD0_opsz24", "..._GRADN25_opsz48", before 2024 "home_FILL0_wght400_GRAD0_opsz24":
# were "home 5f 6368 fill 0 wght 400 grad 0 opsz"): the name alone
_MATERIAL = re.compile(r"(?:[\s_-]\d{2}dp_[0-9A-Fa-f]{6})?[\s_-]FILL[01]_wght\d{3}_GRADN?\d{1,3}_opsz\d{2}"
                       r"(?=\s*(?:\(\d{1,4}\)\s*)?$)")  # (and a browser's copy of it, "... (1)")
# a counter of a whole, "bird (3 of 10)", "Page 3 of 10" (was "bird 3 of": its last number taken off)
_OF_COUNTER = re.compile(r"[\s_-]*\(?(?<![^\W_])\d{1,4}[\s_-]+of[\s_-]+\d{1,4}\)?\s*$", re.IGNORECASE)
# ... and a version of several numbers ("v1.2", "v2.0.1"), taken off whole before the name is parted at its dots
# ("v1.2 release" was "2 release")
_VERSION = re.compile(r"(?<![0-9A-Za-z])v\d+(?:\.\d+)+(?![0-9A-Za-z])", re.IGNORECASE)
# a date or a time written with separators ("2024-05-01", "10.31.02"): pieces of a file's history
_DATE_TIME = re.compile(r"(?<![\d.])(?:\d{4}[-_.]\d{1,2}[-_.]\d{1,2}|\d{1,2}[-_.]\d{1,2}[-_.]\d{4}|"
                        r"\d{1,2}[-_.:]\d{2}[-_.:]\d{2}(?:[-_.:]\d{1,3})?)(?![\d])")
# a Unicode code point as an emoji set names its pictures (Noto's emoji_u1f600, Twemoji's 1f468-200d-1f469,
# OpenMoji's 1F600): the character's name says what it shows ("grinning face"); only the ranges of symbols and
# emoji, so a word of hex letters and a digit ("bed1") stays a word
_CODE_POINT = re.compile(r"u?\+?([0-9a-f]{4,6})", re.IGNORECASE)
_SYMBOLS = ((0x00A9, 0x00AE), (0x2000, 0x33FF), (0xFE00, 0xFE0F), (0x1F000, 0x1FAFF), (0xE0020, 0xE007F))
_JOINERS = {0x200D, 0xFE0E, 0xFE0F, *range(0xE0020, 0xE0080)}  # a sequence's glue, no part of what it shows
# a flag is two regional indicator letters, a country's code ("1f1fa-1f1f8", 🇺🇸: "flag us"; each letter was read as
# its name, "regional indicator symbol letter u regional indicator symbol letter s"); a keycap emoji is "#", "*" or
# a digit and U+20E3 ("0023-fe0f-20e3", #️⃣: "keycap number sign"; the base, no symbol, was lost)
_REGIONAL = 0x1F1E6
_FLAG = re.compile("([\U0001F1E6-\U0001F1FF])[\\s_-]*([\U0001F1E6-\U0001F1FF])")  # (written U+1F1FA U+1F1F8 too:
# each read apart, "regional indicator symbol letter u regional indicator symbol letter s")
_KEYCAP = ord(KEYCAP)  # (the tokenizer's: one definition)
# a subdivision's flag is a black flag, tag letters of its code and a cancel tag ("1f3f4-e0067-e0062-e0065-e006e-e0067-
# e007f", 🏴 + "gbeng": England's; the tags, no words, were dropped: England, Scotland, Wales and the black flag were
# one caption, "waving black flag"): "flag england", or the code of another ("flag usca")
_BLACK_FLAG, _CANCEL_TAG = ord(BLACK_FLAG), 0xE007F
_SUBDIVISIONS = {"gbeng": "england", "gbsct": "scotland", "gbwls": "wales"}
_TAG_FLAG = re.compile(BLACK_FLAG + "([\U000E0020-\U000E007E]+)\U000E007F")


def _tags_after(points: list[int | None], i: int) -> list[int]:
    """The tag code points after points[i] up to a cancel tag (a subdivision flag's code), [] where they are none."""
    tags = []
    for cp in points[i + 1:]:
        if cp == _CANCEL_TAG:
            return tags
        if cp is None or not 0xE0020 <= cp < _CANCEL_TAG:
            return []
        tags.append(cp)
    return []


def _subdivision(code: str) -> str:
    """A subdivision flag's words of its tag letters' code ("gbeng" -> "flag england")."""
    return f"flag {_SUBDIVISIONS.get(code, code)}"


# the words that mark a number as a name's ("Symphony No. 5", "Nr. 3", "№ 7"): a number after one is the name's ...
_NUMBER_MARKS = "no|nr|nº|№"
_NUMBER_MARKED = re.compile(rf"(?<![^\W_])({_NUMBER_MARKS})\.?\s*(?=[1-9])", re.IGNORECASE)
_NUMBER_MARK_END = re.compile(rf"(?<![^\W_])(?:{_NUMBER_MARKS})$")  # ... a series' caption ending in one: no counter
_KEYCAP_BASES = {0x23, 0x2A, *range(0x30, 0x3A)}
_KEYCAP_CHARS = re.compile("([#*0-9])\ufe0f?" + KEYCAP)


def _code_point(piece: str, digits_too: bool) -> int | None:
    """The code point a name's piece writes ("u1f600", "1F600", "fe0f"), where it is a symbol's or an emoji's;
    a piece of digits only ("2764") only where digits_too (another piece of the name is one)."""
    m = _CODE_POINT.fullmatch(piece)
    if m is None or not (digits_too or piece[0] in "uU" or not m.group(1).isdigit()):
        return None
    cp = int(m.group(1), 16)
    if not any(lo <= cp <= hi for lo, hi in _SYMBOLS):
        return None
    import unicodedata

    return cp if cp in _JOINERS or unicodedata.name(chr(cp), "") else None


# the dashes a name is written with besides "-": a non-breaking hyphen, the figure, en and em dashes, a horizontal bar,
# two- and three-em dashes, the small and fullwidth ones (a word processor's or a Mac's "Straße – Kopie", "red–bird":
# were "straße –", "red–bird", one word); not U+2010, which holds a character's name's hyphens here (_NAME_HYPHEN)
_DASHES = "\u2011\u2012\u2013\u2014\u2015\u2e3a\u2e3b\ufe58\ufe63\uff0d"
_SEPARATORS = re.compile(rf"[\s\x00-\x1f\x7f\-{_DASHES}_.,+=~#@&;:!?()\[\]{{}}<>\"|/\\]+")  # (control characters too)
_HEX_ID = re.compile(r"(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}")  # a hash or UUID piece: letters and digits
# a colour's code of 6 hex digits, a digit and a letter among them ("red_FF0000", "bg-1e90ff", "c0ffee": were "red ff",
# "bg 1e 90ff"); not a word and its number ("bead12", "abc123": the word, its number a counter) nor 6 letters ("facade")
_HEX_COLOUR = re.compile(r"(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])(?![a-f]{3,}\d+$|\d+[a-f]{3,}$)[0-9a-f]{6}", re.IGNORECASE)
# a quarter of a year, "Q1" .. "Q4" ("report_2024_Q1", "Q3_sales": were "report 2024 q", "q 3 sales"): one word, "q1"
_QUARTER = re.compile(r"q[1-4]", re.IGNORECASE)
# ... or a random id of letters of both cases and digits, no three letters of a case in a row (ShareX's
# "chrome_5gT8kLm2Qp", a YouTube id "dQw4w9WgXcQ", Unsplash's "Q1p7bh3SHj8": "chrome 5g t 8k lm 2 qp"; not a word in
# camel case, "iPhone15ProMax": _random_id)
_ID_CHARS = re.compile(r"(?=[0-9A-Za-z]*\d)(?![0-9A-Za-z]*(?:[a-z]{3}|[A-Z]{3}))[0-9A-Za-z]{8,}")


# what words in camel case seldom hold and an id often does: a digit run between letters ("Xy7Qw": 7), a small letter
# after a digit ("8kL": k)
_ID_BREAKS = re.compile(r"(?<=[A-Za-z])\d+(?=[A-Za-z])|(?<=\d)[a-z]")


def _random_id(piece: str) -> bool:
    """Whether a name's piece is such an id: 8 characters or more, a digit among them, no three letters of a case in
    a row, its letters in 5 runs of one case or more ("5gT8kLm2Qp": g T k L m Q p; not "3DsMax2024": D s M ax), and
    3 breaks of camel case at least (_ID_BREAKS: "5gT8kLm2Qp": g, 8, k, 2). Words of two or three letters in camel
    case have none or one ("TicTacToe2", "iPad2Air4", "NaNoWriMo2023", "HoHoHo2023" were no caption). ShareX's ids
    are 10 random letters and digits, most of them with three letters of a case in a row somewhere ("6nGisiWgNZ",
    "9n4dte2et6": were "6n gisi wg nz", "9n 4 dte 2 et"; the rule above caught a third of them): an ASCII piece of 8
    or more with a digit is one too where its parts in camel case (_case_split) are short, three of one or two
    letters at least and a part every 2.5 characters or fewer, and a break of camel case ("iPhone15ProMax",
    "3DsMax2024", "LaTeXDoc", "HoHoHo2023" stay words), or where digits stand in two places between its letters
    and no run of them is a word's ("9n4dte2et6"; not "F1Car2024", "Win10Pro", "R2D2Robot"), or, of both cases,
    where a small letter follows a digit and two of its parts hold a small letter and no vowel ("6nGisiWgNZ")."""
    if _ID_CHARS.fullmatch(piece) is not None and len(re.findall("[a-z]+|[A-Z]+", piece)) >= 5 \
            and len(_ID_BREAKS.findall(piece)) >= 3:
        return True
    if not re.fullmatch(r"(?=[0-9A-Za-z]*\d)(?=[0-9A-Za-z]*[A-Za-z])[0-9A-Za-z]{8,}", piece):
        return False
    parts = _case_split(piece)
    if sum(len(t) <= 2 and t.isalpha() for t in parts) >= 3 and len(parts) * 2.5 >= len(piece) \
            and re.search("[a-z]", piece) and re.search("[A-Z]", piece) and _ID_BREAKS.search(piece):
        return True
    letters = re.findall("[A-Za-z]+", piece)  # (a word among them, "R2D2Robot": a name, not an id)
    if len(re.findall("[0-9]+", piece.strip("0123456789"))) >= 2 and len(letters) >= 3 \
            and not any(re.fullmatch("[A-Z][a-z]{2,}|[a-z]{4,}", run) for run in letters):
        return True
    # ... or, of both cases, where a small letter follows a digit and two of its parts in camel case hold a small
    # letter and no vowel, no syllable of a word ("6nGisiWgNZ": n and Wg; not what begins it, a small letter,
    # "iPad", or an abbreviation, "btn3dHover", "bg2xDark", "js2tsConv", which were no caption; "3DsMax2024",
    # "MrBean2", "mp3Player" hold one such part, "TicTacToe2", "R2D2Robot" none; ShareX's "6nGisiWgNZ" was
    # "6n gisi wg nz")
    runs = re.findall("[A-Za-z]+|[0-9]+", " ".join(parts))
    vowelless = [t for k, t in enumerate(runs) if re.search("[a-z]", t) and not re.search("[aeiouyAEIOUY]", t)
                 and k > 0]
    both_cases = re.search("[a-z]", piece) is not None and re.search("[A-Z]", piece) is not None
    if len(vowelless) >= 2 and both_cases and re.search(r"\d[a-z]", piece) is not None:
        return True
    # ... or, of both cases and 12 characters at most (ShareX's ids are 10, YouTube's and Unsplash's 11; a longer name
    # in camel case holds more words, "libLLVMM68kCodeGen"), where what words seldom hold is found 3 times or more
    # (_id_marks): "Kpslm0lcNQ", "AegAXjU9", "fqEo0hsjxZgi" were "kpslm 0 lc nq", "aeg a xj u", "fq eo 0 hsjx zgi"
    # (35 in 100 random ids of 8 to 12 both cases and a digit were read as words, 29 are: bench/random_ids.py)
    return both_cases and len(piece) <= 12 and _id_marks(runs) >= 3


def _id_marks(runs: list[str]) -> int:
    """How often what words seldom hold is found in a piece's runs of letters and of digits, as parted in camel case
    (_random_id): a small letter right after a digit ("0lc": l), a part after the first of two letters or more, a small
    one among them, without a vowel ("Xj"; not "HDR", an abbreviation), four consonants in a row, a small one among
    them ("Kpslm"), a lone letter after the first part and not after digits ("AegAXjU9": A and U; not a numeronym's
    last letter, "i18n", "k8s")."""
    marks = 0
    for k, run in enumerate(runs):
        if run.isdecimal():
            continue
        after_digits = k > 0 and runs[k - 1].isdecimal()
        small = run != run.upper()
        marks += after_digits and run[0].islower()
        marks += k > 0 and small and len(run) >= 2 and re.search("[aeiouyAEIOUY]", run) is None
        marks += small and re.search("[^aeiouyAEIOUY]{4}", run) is not None
        marks += k > 0 and len(run) == 1 and not after_digits
    return marks


# a file manager's copy: macOS' "bird copy", "bird copy 2"; Windows' "bird - Copy", "bird - Copy (2)" (not "edit-copy");
# GNOME Files' "bird (copy)", "bird (another copy)", "bird (3rd copy)"; Windows XP's and Google Drive's "Copy of bird",
# "Copy (2) of bird" (each was captioned with its "copy": "bird copy", "copy of bird"); and in other languages, as
# Windows and macOS name them ("bird - Kopie", "bird - Copie (2)", "bird copia 2"; Google Drive's "Kopie von bird",
# "Copie de bird": were "bird kopie", "kopie von bird"); after any dash ("bird – Kopie (2)": was "bird –")
_COPY_WORDS = "kopie|copie|copia|cópia|kopia|kopio|kópia|копия|コピー|副本|복사본"
# ... not a phrase of the language that begins as a copy's name does, its next word no name's but the phrase's:
# "copia de seguridad" (a backup: was "seguridad"), "copia de respaldo", "cópia de segurança", "copie de sauvegarde",
# "kopia zapasowa", "kopia bezpieczeństwa"; Google Drive's "Copia de foto", "Copie de bird" are still copies
_COPY_PHRASES = "seguridad|respaldo|segurança|seguranca|sauvegarde|zapasowa|bezpieczeństwa|bezpieczenstwa"
_COPY = re.compile(rf"(?:\s+[-{_DASHES}])?\s+(?:copy|{_COPY_WORDS})(?:\s*\(?\d+\)?)?\s*$"
                   r"|\s*\((?:copy|another copy|\d+(?:st|nd|rd|th) copy)\)\s*$"
                   r"|^\s*(?:copy(?:\s*\(\d+\))?\s+of|kopie von|copie de|copia de|cópia de|kopia)\s+"
                   rf"(?!(?:{_COPY_PHRASES})(?![^\W_]))", re.IGNORECASE)


def _uncopied(name: str) -> str:
    """A name without its file managers' copy marks, each of a copy of a copy too (Windows' "bird - Copy - Copy",
    "Copy of Copy of bird", a browser's download of a copy, "bird (copy) (1)": were "bird copy", "copy of bird")."""
    while True:
        counter = _DUPLICATE.search(name)
        base = name[:counter.start()] if counter and _COPY.search(name[:counter.start()]) else name
        if (uncopied := _COPY.sub("", base)) == name:
            return name
        name = uncopied


_NAME_HYPHEN = "\u2010"  # a character's name's hyphen while the name is split into words (then "-" again)
_WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more in a row (in any script; "rock'n'roll" too)


_U_PLUS = re.compile(r"(?<![0-9A-Za-z])[Uu]\+([0-9A-Fa-f]{4,6})(?![0-9A-Za-z])")  # U+00E9: a code point
# ... and as a font names a glyph (the Adobe Glyph List's "uni00E9", "uni2605": "uni 00e", "uni"), its hex digits in
# capitals, one of them a digit at least ("uniface", "uniFACE" stay words), and not a year, 1900..2039 (a university's
# "uni2018", "uni2022_graduation" were a quotation mark and a bullet, "uni1999" a letter of New Tai Lue; the Adobe
# Glyph List names the punctuation there by words, "quoteright", "bullet")
_UNI = re.compile(r"(?<![0-9A-Za-z])uni(?=[0-9A-F]*[0-9])(?!(?:19\d\d|20[0-3]\d)(?![0-9A-Za-z]))([0-9A-F]{4})"
                  r"(?![0-9A-Za-z])")


def _named(cp: int) -> bool:
    """Whether a code point is a character Unicode names (not a control, surrogate or unassigned one)."""
    import unicodedata

    return cp <= 0x10FFFF and unicodedata.name(chr(cp), "") != ""


# a keycap written U+0023 U+FE0F U+20E3 ("#" is named "number sign" by _glyph; the keycap is read whole: "keycap
# number sign", as "0023-fe0f-20e3" and "#️⃣" are)
_U_KEYCAP = re.compile(r"(?<![0-9A-Za-z])u\+(00(?:23|2a|3[0-9]))[\s_-]*(?:u\+fe0f[\s_-]*)?u\+20e3(?![0-9A-Za-z])",
                       re.IGNORECASE)


def _glyph(cp: int) -> str:
    """What a code point written U+XXXX or uniXXXX is in a name: a letter or digit is itself ("glyph_U+00E9" ->
    "glyph é"); a mark, punctuation, a space or a symbol of no picture is its name in words, which a caption can
    show (a font's "glyph_U+0301", "glyph_U+0023", "glyph_U+005F" were "glyph ́", a mark alone, "glyph" and "glyph":
    "#" and "_" read as separators); an emoji, a symbol, a sequence's glue or a format character is itself, read
    as such below; one Unicode names no character, nothing."""
    import unicodedata

    if not _named(cp):
        return ""
    ch = chr(cp)
    if unicodedata.category(ch)[0] in "MPZ" or unicodedata.category(ch) in ("Sm", "Sc", "Sk"):
        if cp not in _JOINERS and not 0x1F3FB <= cp <= 0x1F3FF:  # (a keycap's whole, _U_KEYCAP, is read before)
            return unicodedata.name(ch).lower().replace("-", _NAME_HYPHEN)
    return ch


# a picture's extension left in its name, before any copy's counter ("red bird.jpg.png", a download converted, and
# its copies "red bird.jpg (1).png", "red bird.jpg copy.png": "red bird jpg")
_NAMED_SUFFIXES = sorted({*IMAGE_SUFFIXES, ".heic", ".heif", ".jxl", ".svg", ".ico"}, key=lambda s: (-len(s), s))
# (the suffixes t2i reads, and those of pictures it names but cannot read)
_PICTURE_SUFFIX = re.compile(r"(?:\.(?:%s))+(?=\s*(?:\(\d{1,4}\))?\s*$)"
                             % "|".join(re.escape(s[1:]) for s in _NAMED_SUFFIXES), re.IGNORECASE)
# what a tool adds to the name of the picture it made: remove.bg's "bird-removebg-preview", Upscayl's
# "bird_upscayl_4x_realesrgan-x4plus", TinyPNG's and imagemin's "bird-min" (were "bird removebg preview", "bird upscayl
# realesrgan x 4 plus", "bird min"; not minutes, "workout-30-min"; after a number only where the name before it is a
# camera's, "IMG_1234-min", _tool_suffix_dropped)
_TOOL_SUFFIX = re.compile(r"(?:[\s_-]removebg(?:[\s_-]preview)?|[\s_-]upscayl[\s_-]\d+x[\s_-].*|(?<=[^\W_])-min)"
                          r"(?=\s*(?:\(\d{1,4}\))?\s*$)", re.IGNORECASE)
# ... but not a Korean given name's last syllable: a name of a surname and a given name of two syllables, each written
# apart as romanized ("park-ji-min", "Kim Ji-min", "lee_seung_min" were "park ji", "kim ji", "lee seung"), is a
# surname (_SURNAME) and a given name's first syllable before "-min" (_GIVEN: those Korean given names ending in 민
# begin with, as romanized, Revised Romanization and the common spellings: "ji", "seo", "seung", "hyun", ...); any
# romanized syllable's shape there took a place's, a dish's or English words for a name, "hong-kong-min",
# "kim-chi-min", "go-to-min" kept TinyPNG's "min" (and "map-pin-min", "top-hat-min": no surname first); a stem
# TinyPNG's "-min" follows is a word of its own ("hero-image-min", "logo-min", "red-bird-min")
_GIVEN = ("ji|jee|seo|suh|so|su|soo|ha|yu|yoo|do|ye|jun|joon|hyun|hyeon|seung|jae|tae|sung|seong|young|yeong|dong"
          "|chang|kyung|gyeong|jung|jeong|hye|hyo|sang|jong|yong|kyu|gyu|seok|suk|se|chan|bo|si|shi|a|ah|eun|hee|won|woo"
          "|u|yoon|yun|jin|kang|gang|han|in|il|ho|myung|myeong|na|da|ga|mi|min|sun|seon|yeon|geon|gun|kun|keon|ki|gi|ju"
          "|joo|yi|nam|hwa|hyung|hyeong|kwang|gwang|byung|byeong|chul|cheol|beom|bum|hoon|hun|hae|sol|ri|ra|bin")
_SURNAME = ("kim|gim|lee|yi|rhee|park|pak|bak|choi|choe|jung|jeong|chung|kang|gang|cho|jo|yoon|yun|jang|chang|lim|im"
            "|han|oh|seo|suh|shin|sin|kwon|gwon|hwang|ahn|an|song|yoo|yu|ryu|hong|jeon|jun|chun|go|ko|moon|mun|yang|son"
            "|sohn|bae|baek|paik|heo|hur|nam|sim|shim|noh|roh|ha|kwak|gwak|sung|seong|cha|joo|ju|woo|koo|gu|min|jin|ji"
            "|eom|um|chae|won|bang|gong|kong|hyun|hyeon|ham|byun|byeon|yeom|yeo|choo|chu|do|seok|seon|sul|seol|ma|gil"
            "|kil|yeon|wi|pyo|myung|myeong|ki|gi|ban|ra|na|wang|geum|ok|yuk|maeng|je|mo|tak|guk|eun|pyeon|yong|bong"
            "|ye|kyung|gyeong|tae|cheon|chon|ryoo|yeong|hyeong|hyung")
_KOREAN_NAME = re.compile(rf"\s*(?:{_SURNAME})[\s_-]+(?:{_GIVEN})", re.IGNORECASE)


def _tool_suffix_dropped(name: str) -> str:
    """A name without what tools add to it (_TOOL_SUFFIX; each, where a picture went through them in turn or one
    twice: "IMG_1234-min-min" was "img 1234 min", "bird-removebg-preview-min" "bird removebg preview"), a Korean
    given name's "-min" kept (_KOREAN_NAME), and minutes after a number ("workout-30-min", "30-min"): "-min" after a
    number is TinyPNG's where the name before it makes no caption, a camera's or a date ("IMG_1234-min",
    "DSC_0042-min": were "img 1234 min", "dsc min"), but minutes after a number alone of 1 to 4 digits ("30-min" is
    "30 min", as in 0.18.0: it was no caption)."""
    def dropped(m: re.Match) -> str:
        if m.group(0).lower() != "-min":
            return ""
        before = m.string[:m.start()]
        if before[-1].isdecimal():
            minutes = caption_of(before) is not None or re.fullmatch(rf"\s*{_NAME_NUMBER}", before)
            return m.group(0) if minutes else ""
        return m.group(0) if _KOREAN_NAME.fullmatch(before) else ""

    while (shorter := _TOOL_SUFFIX.sub(dropped, name)) != name:  # (each pass drops the last: shorter each time)
        name = shorter
    return name


_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")  # a run of URL escapes: one character's bytes, or several's
# A number that ends a name after a word and a space, _ or -, of 1 to 4 digits without a leading zero ("route 66",
# "route_66", "apollo-11", "windows 7", "formula 1", "paris 2019"), is taken for part of its name; a file
# manager's or a camera's counter is in parentheses ("bird (12)"), glued ("bird12"), with a leading zero
# ("IMG_0001") or of 5 digits or more; and a folder's series of one name, "beach 10".."beach 12", "cat_1".."cat_3",
# or a name of one digit beside its name without it or with another one digit, macOS' copy "bird 2" beside "bird",
# is a counter all the same (series_captions); one alone, "cat_12" or "formula 1", keeps its number. After _ or -,
# an icon's size in pixels ("icon-192", "logo_512") is no part of its name either.
_NAME_NUMBER = r"[1-9]\d{0,3}"  # (1 to 4 digits, no leading zero)
_NAMED_NUMBER = re.compile(rf"[^\W\d_](?:\s+|\s*[_-][\s_-]*(?!(?:16|32|48|64|96|128|192|256|512|1024)\s*$))"
                           rf"({_NAME_NUMBER})\s*$")
# a browser's or file manager's copy of a name, "route 66 (1)" (Chrome, Firefox, Windows): its counter in
# parentheses after a named number is dropped first, so that the copy is captioned as its original is
_DUPLICATE = re.compile(r"\s*\(\d{1,4}\)\s*$")
_COPY_DIGIT = re.compile(r"(?<=\d)\s+\d\s*$")  # macOS' copy counter of one digit after a number ("route 66 2")


def _unfinished(raw: bytes) -> int:
    """How many bytes at the end of raw begin a UTF-8 sequence left unfinished (a lead byte, and any of its
    continuation bytes that follow it): 0 where it ends whole, or in a lone byte that Latin-1 reads as a lowercase
    letter (E0..F4, "à".."ô": "caf%C3%A9%E9" is "caféé", a run of UTF-8 and Latin-1); a lone C2..DF is a capital
    ("Ã") after UTF-8 text, which a name cut short leaves, and a lead byte with continuation bytes no Latin-1 word."""
    for n in range(1, min(3, len(raw)) + 1):
        byte = raw[-n]
        if 0xC2 <= byte <= 0xF4:
            return n if n < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4) and (n > 1 or byte < 0xE0) else 0
        if not 0x80 <= byte < 0xC0:
            return 0
    return 0


def _cut_short(run: re.Match, raw: bytes, cut: int) -> bool:
    """Whether the last cut bytes of a run of escapes after ASCII text (raw[:-cut]) are a UTF-8 character's first
    bytes left where the name was cut short (_unescape): at the name's end or before a separator, a lead byte with
    its continuation bytes, or a lone lead byte that Latin-1 reads as a capital right after a lowercase letter."""
    if run.string[run.end():run.end() + 1].isalnum():
        return False
    if cut > 1:
        return True
    before = (raw[:-cut].decode("ascii") or run.string[:run.start()])[-1:]
    return before.islower() and raw[-1:].decode("cp1252", "replace").isupper()


def _zero_width_space(name: str, i: int) -> str:
    """What the zero-width space name[i] is in a caption: nothing between two letters (or a letter and its mark) of
    a script written with spaces, where it marks no word's end but a place a long word may wrap, as pasted with a
    web page's title ("re" ZWSP "d" shows "red"; it was "re d"); elsewhere a space (Thai and the other scripts
    written without spaces mark their words' ends with it)."""
    import unicodedata

    from t2i_cli.models.tokenizer import _unspaced

    around = name[i - 1:i] + name[i + 1:i + 2] if i > 0 else ""
    return "" if len(around) == 2 and all(unicodedata.category(ch)[0] in "LM" for ch in around) \
        and not _unspaced(around) else " "


_BOMS = ((0xFF, 0xFE), (0xFE, 0xFF))  # UTF-16's byte-order marks, which Latin-1 reads "ÿþ": no text


def _unescape(run: re.Match) -> str:
    """A run of %XX escapes as text: UTF-8's bytes where they are UTF-8 ("caf%C3%A9" -> café), and each run of the
    bytes left over, where written in one case (capitals, as URL encoders write them, or lowercase), one character a
    byte, as Windows' code page 1252 reads them ("caf%E9", "caf%e9" -> café, where "caf%e9" was "caf%e 9"; a run of
    both, "na%C3%AFve%E9", is read each part as it is, not all as Latin-1's "naÃ¯veé"). Leftovers that are not
    such text are left as they are: "50%Bear" holds a percent sign, not the byte BE; and so do those holding a byte
    that code page leaves unused (81, 8D, 8F, 90, 9D: Latin-1's C1 control characters, which no name means), those
    read as other than letters, punctuation and spaces, after a digit ("10%FAT": a percentage) or followed by a hex
    digit of their case ("100%BEEF", "30%deal": a percent sign in a word). UTF-16's byte-order mark (FF FE, FE FF)
    is no text: dropped (UTF-8's, U+FEFF, is dropped with the name's other format characters: caption_of). A run of
    UTF-8 text that ends in a character's first bytes only (a name cut short, "caf%C3%A9%C3") drops them: they were
    read as Latin-1's ("café ã"), and so does one after ASCII text at the name's end (or a separator) where it is
    a lead byte with continuation bytes ("smile%F0%9F%98", "caf%E2%82": "cafâ‚") or a lone lead byte that Latin-1
    reads as a capital right after a lowercase letter ("caf%C3": "caf ã"; not "IRM%C3", "irmã", nor "Fu%DF",
    "fuß": Latin-1's ß is lowercase)."""
    import unicodedata

    text = run.group(0)
    raw = bytes.fromhex(text.replace("%", ""))
    if (cut := _unfinished(raw)) and (not raw[:-cut].isascii() or _cut_short(run, raw, cut)):
        try:
            raw[:-cut].decode("utf-8")
            text = text[:-3 * cut]
        except UnicodeDecodeError:
            pass
    escapes = [text[i:i + 3] for i in range(0, len(text), 3)]
    read = bytes.fromhex(text.replace("%", "")).decode("utf-8", "surrogateescape")  # (not UTF-8: lone surrogates)
    out, k = [], 0  # (k: the escape of the byte read next)
    for part in re.findall("[\udc80-\udcff]+|[^\udc80-\udcff]+", read):
        if not "\udc80" <= part[0] <= "\udcff":  # UTF-8's text
            out.append(part)
            k += len(part.encode("utf-8"))
            continue
        first, k = k, k + len(part)
        left = [(ord(ch) - 0xDC00, escape) for ch, escape in zip(part, escapes[first:k], strict=True)]
        i = 0
        while i < len(left) - 1:  # a byte-order mark's two bytes
            if (left[i][0], left[i + 1][0]) in _BOMS:
                del left[i:i + 2]
            else:
                i += 1
        if not left:
            continue
        typed = "".join(escape for _, escape in left)
        upper, lower = typed == typed.upper(), typed == typed.lower()  # (both: digits only)
        try:
            latin = bytes(b for b, _ in left).decode("cp1252")  # ("song%81" was "song\x81", a C1 control character)
        except UnicodeDecodeError:
            latin = None
        after = run.string[run.end():run.end() + 1] if k == len(escapes) else ""
        hex_after = after != "" and after in "0123456789" + "ABCDEF" * upper + "abcdef" * lower  # (of their case)
        if latin is None or not (upper or lower) \
                or (first == 0 and run.start() > 0 and run.string[run.start() - 1].isdecimal()) \
                or not all(unicodedata.category(ch)[0] in "LPZ" for ch in latin) \
                or hex_after:
            out.append(typed)
        else:
            out.append(latin)
    return "".join(out)


def caption_of(name: str) -> str | None:
    """A caption made of a file or folder name ("red-bird_02" -> "red bird", "BlueFish" -> "blue fish"): its
    words lowercased, without a number at its end (a counter: "bird (2)", "bird12", not "route 66", "route_66",
    "windows 7": _NAMED_NUMBER; a folder's series of them is a counter all the same: series_captions) or
    a file manager's "copy" ("bird copy 2", "bird - Copy"),
    numbers of 5 digits or more or with a leading zero (dates, counters), dates and times with separators, a
    version or size ("v2", "16x16", "@2x"), hash-like pieces or an ImageNet-style id (n01440764); an emoji's
    code point read as its name ("emoji_u1f600" -> "emoji grinning face"); None
    where no word is left that says more than where the picture came from (TOOL_WORDS: a camera's or a
    screenshot tool's name)."""
    import unicodedata

    if not_utf8(name):  # bytes of another encoding (a Latin-1 zip's "caf\xe9"): no caption can hold them
        return None
    if _CHATGPT.fullmatch(name):
        return None
    name = _DALL_E.sub("", name)
    name = _PERCENT.sub(_unescape, name)  # a download's URL-encoded name ("red%20bird", "caf%C3%A9", "caf%E9")
    # a character written as Unicode writes it, U+XXXX (a font's "glyph_U+00E9", "u+1F600"), is that character, read
    # below as any other in the name ("glyph é", "grinning face": its "U" was a word, and "00E9" "00e 9", a counter);
    # one Unicode names no character (unassigned, private use, a control: "glyph_U+E000", "U+10FFFF") says which
    # glyph, not what it shows: no word (it was left as typed, "u 10ffff")
    name = _U_KEYCAP.sub(lambda m: chr(int(m.group(1), 16)) + chr(_KEYCAP), name)  # (read below as one)
    name = _U_PLUS.sub(lambda m: f" {_glyph(int(m.group(1), 16))} ", name)
    name = _UNI.sub(lambda m: f" {_glyph(int(m.group(1), 16))} ", name)
    name = unicodedata.normalize("NFC", name)  # a Mac's names are decomposed: a caption is written composed
    # no text: the format characters that draw nothing and mean nothing where they stand, as the tokenizer drops them
    # from a prompt or a caption (models.tokenizer.without_format: a byte-order mark, U+FEFF, "%EF%BB%BF" read, was
    # a caption's first character; a soft hyphen, a direction mark; a joiner beside ASCII, "re" ZWJ "d", was "re d";
    # not the zero-width non-joiner of a Persian or Indic word's spelling, nor the joiners of an emoji sequence, read
    # below), and, beyond it, where a file name is not a prompt: a failed decoding's U+FFFD (its name was a caption's
    # words, "replacement character") and the non-characters U+FFFE, U+FFFF, which a prompt's writer typed but a
    # name holds by mistake; and a zero-width space between two letters of a script written with spaces joins them
    # (_zero_width_space: "re" ZWSP "d" was "re d"), where the tokenizer reads a prompt's as a space
    from t2i_cli.models.tokenizer import without_format

    name = without_format("".join(_zero_width_space(name, i) if ch == "\u200b" else "" if ch in "\ufffd\ufffe\uffff"
                                  else ch for i, ch in enumerate(name)))
    # a hyphen written as U+2010 (a typesetter's, "red‐bird", "bird ‐ Copy") is "-": the words below hold a symbol's
    # name's hyphens as U+2010 (_NAME_HYPHEN), and the name's own were kept as one ("red-bird") or left alone ("bird -")
    name = name.replace(_NAME_HYPHEN, "-")
    words = []
    # an emoji or symbol in the name is its name in words ("🐱" -> cat face), as an emoji set's code point
    # (its name's hyphens held as U+2010, no separator, as a code point's name is read: "fitzpatrick type-4", a skin
    # tone, lost its number at a name's end, five tones one caption; "speak-no-evil monkey" was "speak no evil")
    name = _FLAG.sub(lambda m: f" flag {''.join(chr(ord(ch) - _REGIONAL + 97) for ch in m.groups())} ", name)
    name = _TAG_FLAG.sub(lambda m: f" {_subdivision(''.join(chr(ord(ch) - 0xE0000) for ch in m.group(1)).lower())} ",
                         name)
    name = _KEYCAP_CHARS.sub(lambda m: f" keycap {unicodedata.name(m.group(1)).lower()} ", name)
    name = "".join(f" {unicodedata.name(ch, '').replace('-', _NAME_HYPHEN)} " if unicodedata.category(ch) == "So"
                   or 0x1F3FB <= ord(ch) <= 0x1F3FF else " " if ord(ch) in _JOINERS else ch for ch in name)
    name = _UNTITLED.sub(" untitled ", _PICTURE_SUFFIX.sub("", _tool_suffix_dropped(_uncopied(name))))
    # a number after "No." is the name's ("Symphony No. 5" was "symphony no", its number taken for a counter)
    name = _NUMBER_MARKED.sub(r"\1 ", name)
    name = _ICON_WORD_SIZE.sub(lambda m: m.group(0)[:m.start(1) - m.start(0)] if 16 <= int(m.group(1)) <= 1024
                               else m.group(0), name)
    name = _OF_COUNTER.sub("", _VERSION.sub(" ", _MATERIAL.sub("", name)))
    dated = _DATE_TIME.search(name) is not None
    if (shot := _SCREENSHOT.match(name)) and (dated or _SCREENSHOT_COUNTER.fullmatch(name, shot.end())):
        return None  # (a screenshot's name in another language)
    # (a download's copy of one too, "DJI_0001 (1)", "pexels-anna-shvets-4587991 (1)", "IMG_1234-Edit (1)": its
    # counter kept the name from matching, "dji", "pexels anna shvets", "img 1234 edit", where "DSC_0001 (1)" is none)
    if any(rule.fullmatch(uncounted) for rule in (_ANDROID_SCREENSHOT, _STOCK_AUTHOR, _MESSENGER, _CAMERA)
           for uncounted in {name, _DUPLICATE.sub("", name)}):
        return None
    name = _TELEGRAM.sub(" photo ", name)
    name = _DATE_TIME.sub(" ", name)
    # (a download's copy of macOS' copy, "apollo 11 2 (1)", is "apollo 11" as "apollo 11 2" is: it was "apollo")
    if (copy := _DUPLICATE.search(name)) and _NAMED_NUMBER.search(_COPY_DIGIT.sub("", name[:copy.start()])):
        name = name[:copy.start()]  # "route 66 (1)": a download's second copy of "route 66"
    named_number = _NAMED_NUMBER.search(name)  # "route 66", "apollo 11": the number is the name's
    # ... before a copy's counter of one digit, macOS' "route 66 2" (both numbers were taken off: "route")
    if named_number is None and (uncounted := _COPY_DIGIT.sub("", name)) != name:
        if (named_number := _NAMED_NUMBER.search(uncounted)) is not None:
            name = uncounted
    pieces = [p for p in _SEPARATORS.split(name) if p]
    emoji = any(_code_point(p, False) is not None for p in pieces)
    points = [_code_point(p, True) if emoji else None for p in pieces]
    for i, piece in enumerate(pieces):  # a keycap's base, "#", "*" or a digit, is ASCII: no symbol's code point
        if emoji and points[i] is None and (m := _CODE_POINT.fullmatch(piece)) \
                and int(m.group(1), 16) in _KEYCAP_BASES \
                and next((cp for cp in points[i + 1:] if cp not in _JOINERS), None) == _KEYCAP:
            points[i] = int(m.group(1), 16)
    for i, (piece, cp) in enumerate(zip(pieces, points, strict=True)):
        if cp is not None:
            if cp in _KEYCAP_BASES:  # ("0023-fe0f-20e3" was "combining enclosing keycap", its "#" lost)
                words += ["keycap", *unicodedata.name(chr(cp)).lower().split()]
            elif _REGIONAL <= cp < _REGIONAL + 26 and i + 1 < len(points) and points[i + 1] is not None \
                    and _REGIONAL <= points[i + 1] < _REGIONAL + 26:  # a flag's two letters, read together
                words += ["flag", chr(cp - _REGIONAL + 97) + chr(points[i + 1] - _REGIONAL + 97)]
                points[i + 1] = _KEYCAP  # (read)
            elif cp == _BLACK_FLAG and (tags := _tags_after(points, i)):
                words += _subdivision("".join(chr(t - 0xE0000) for t in tags).lower()).split()
                for k in range(i + 1, i + len(tags) + 2):
                    points[k] = _KEYCAP  # (read)
            elif cp not in _JOINERS and cp != _KEYCAP:
                words += unicodedata.name(chr(cp)).lower().split()
            continue
        if _HEX_ID.fullmatch(piece.lower()) or re.fullmatch(r"n\d{8}", piece) or _NOT_WORDS.fullmatch(piece) \
                or _random_id(piece) or _HEX_COLOUR.fullmatch(piece):
            continue
        if _QUARTER.fullmatch(piece):
            words.append(piece.lower())
            continue
        if piece.lower() in TOOL_WORDS | APP_WORDS:  # as a whole ("WhatsApp", not "whats app")
            words.append(piece.lower())
            continue
        words += [w.lower().replace(_NAME_HYPHEN, "-") for w in _case_split(piece)
                  if w and not _NOT_WORDS.fullmatch(w)]
    # an app's name is a tool word beside a date, a long number or another tool word (APP_WORDS)
    tools = TOOL_WORDS | APP_WORDS if dated or any(w in TOOL_WORDS or (w.isdigit() and len(w) >= 5) for w in words) \
        else TOOL_WORDS
    # (a number written with a leading zero, "001_cat", "01 - sunset", is a counter wherever it is, not a count)
    words = [w for w in words if not (w.isdigit() and (len(w) >= 5 or (len(w) > 1 and w[0] == "0")))]
    named = words.pop() if named_number and words and words[-1] == named_number.group(1) else None
    while words and words[-1].isdigit():
        words.pop()
    words += [named] if named and words else []
    if not any((_WORD.search(w) or (len(w) == 1 and w.isalpha() and not w.isascii())) and w not in tools
               for w in words):  # (one letter of a script without spaces is a word: 猫)
        return None
    return " ".join(words)


# A dataset split's folder name, as Hugging Face's imagefolder reads its splits ("ds/train/cat/x.png",
# "ds/test/x.png"): where the pictures go, not what they show; `--from folder` captioned 6,000 pictures "train"
SPLIT_NAMES = frozenset("train training test testing validation valid val dev eval evaluation".split())


def is_split(caption: str | None) -> bool:
    """Whether a folder's caption is a split's name (SPLIT_NAMES), or one with "images" after it, as Kaggle's
    datasets name them ("train_images", "test_images": each was a class, "train images"), or "trainval" (Pascal
    VOC's), "heldout" or "holdout" (`t2i data world --split heldout`'s). ("train set" is a toy's: a class.)"""
    words = (caption or "").split()
    return caption in ("trainval", "heldout", "holdout") or bool(words) and words[0] in SPLIT_NAMES and (
        len(words) == 1 or len(words) == 2 and words[1] in ("images", "imgs"))


def folder_caption(picture: Path, folder: Path) -> str | None:
    """`--from folder`'s caption of a picture under folder: its folder's name made words (caption_of) as reached (a
    link named for its class, to a folder named otherwise, is named by the link); folder given as . or .. resolved
    (`cd cats; t2i data caption . --from folder`). A split's folder (is_split: "train", "Test", "validation",
    "train_images") holds no words: a class folder under it names its pictures, and those right in it have none,
    unless it is a class among others (_among_classes: ds/dev/ beside ds/arduino/, pictures of a dev board)."""
    caption = caption_of(folder.resolve().name if picture.parent == folder and folder.name in ("", "..")
                         else picture.parent.name)
    if is_split(caption) and (picture.parent == folder or not _among_classes(picture.parent)):
        return None
    return caption


def _among_classes(split: Path) -> bool:
    """Whether a folder named as a split (is_split), below the one given, is a class all the same: a folder per
    class of which one is named "test" or "dev" (pictures of a dev board beside ds/arduino/): it holds no folder,
    and sits beside other folders, none of them named as a split (ds/train beside ds/test, or holding ds/train/cat,
    is a split). Read by what the folders hold now (the folders' modification times key a cache: a folder of 6,000
    pictures is listed once, not once a picture)."""
    try:
        return _among_classes_at(str(split), os.stat(split).st_mtime_ns, os.stat(split.parent).st_mtime_ns)
    except OSError:
        return False


@functools.lru_cache(maxsize=256)
def _among_classes_at(split: str, mtime_ns: int, parent_mtime_ns: int) -> bool:
    here = Path(split)
    try:
        with os.scandir(here.parent) as entries:
            beside = [e.name for e in entries if e.name != here.name and not e.name.startswith(".")
                      and e.is_dir()]
        if not beside or any(is_split(caption_of(name)) for name in beside):
            return False
        with os.scandir(here) as entries:
            return not any(e.is_dir() and not e.name.startswith(".") for e in entries)
    except OSError:
        return False


@dataclass
class CaptionPlan:
    """What `t2i data caption` writes: caption file -> (caption, the pictures it captions), and what it leaves."""

    folder: Path
    source: str
    writes: dict[Path, tuple[str, list[Path]]] = field(default_factory=dict)
    nameless: list[Path] = field(default_factory=list)  # pictures whose name (or folder's) holds no words
    other_words: bool = False  # whether the other source (folder, or name) would caption one of those at least
    captioned: int = 0  # pictures that have a caption already (left as they are)
    manifest: Path | None = None  # a manifest (metadata.csv, a .jsonl) beside pictures without a caption: theirs
    unreadable: list[Path] = field(default_factory=list)  # folders that could not be listed: their pictures unseen
    taken: list[Path] = field(default_factory=list)  # caption names taken by what is no caption file (a folder, a
    # link to a missing file): never written, and not "made meanwhile by something else"
    manifest_lines: str = ""  # the folder's manifests' lines left out, counted by reason ('' none): they may name
    # pictures this would caption by their names
    above: str = ""  # what a manifest above the folder (metadata.*, captions.jsonl) naming its uncaptioned pictures
    # says ('' none; data._manifest_above): their captions are there, and those pictures are left as they are
    above_source: Path | None = None  # ... and the folder that reads it and the others' captions (ds), if any
    above_lines: str = ""  # a manifest above the folder whose lines left out (or which cannot be read) may caption
    # pictures of it, said ('' none; data._manifest_above)
    columns_source: Path | None = None  # the folder above whose metadata.* unnamed_pictures or mispaired names (ds)
    parquet: Path | None = None  # a metadata.parquet in (or above) the folder, which t2i cannot read (data.PARQUET)
    parquet_said: str = ""  # ... what is said of it: a way to convert it
    unnamed_pictures: str = ""  # a metadata.jsonl or .csv beside them of captions whose picture column t2i does not
    # read ("filename,text"), with its columns ('' none): their captions may be there
    mispaired: str = ""  # ... or whose picture and caption columns do not pair ("image,text"; data.MISPAIRED)
    sheets: list[Path] = field(default_factory=list)  # t2i's contact sheets of another name than training knows
    # (`data preview --out sheet.png` inside the folder), known by their PNG text: never captioned
    unread_formats: list[tuple[str, int, str]] = field(default_factory=list)  # pictures of a format t2i cannot read
    # (HEIC, SVG: images.UNREAD_FORMATS): (why, how many, the first), never captioned, said beside what is written
    undecodable: list[tuple[Path, str]] = field(default_factory=list)  # pictures t2i cannot open (a truncated file,
    # a page Pillow cannot decode), with why (data._readable_digest): training leaves them out, so never captioned
    apart: list[tuple[Path, Path]] = field(default_factory=list)  # (picture, its NAME.txt in another folder:
    # images/x.png beside captions/x.txt; data.CAPTION_APART), never captioned by name, said to move the caption
    folders: set[Path] = field(default_factory=set)  # the folders of the pictures found (a caption may be written
    # beside any): where a killed run's temporaries are looked for (remove_killed_temporaries)


COLOURS = frozenset("""red orange yellow green blue purple violet pink white black grey gray brown cyan magenta gold
silver""".split())  # a colour's name alone: with a number, a card's or a piece's in a set of colours (series_captions)
SERIES = 3  # names in one folder that make a series: one caption with and without numbers at its end
SERIES_OF_DIGITS = 2  # ... where its numbers are one digit each ("bird" and macOS' copy "bird 2"; "cat_1", "cat_2"),
# not "route 1" beside "route 66"
COUNTER_SHARE = 5  # a series is a counter's where it holds its start (1, or the name without a number) and one
# picture in COUNTER_SHARE at least of the numbers up to its largest (series_captions)
COUNTER_RUN = 10  # ... or, without its start, where it is this many names or more, two numbers in a row among them
CARD_VALUES = 13  # the largest value of a colour's cards (a suit's 13 ranks, Rummikub's 1..13; Hanabi's 1..5): a
# colour's numbers past it beside another colour's same ones are a counter of pictures of each colour (series_captions)


def series_captions(plan: CaptionPlan, captioned: Iterable[Path] = ()) -> None:
    """Take the number off captions that end in one (caption_of keeps "route 66") where a folder holds a series
    of SERIES or more names that are one caption with or without a number at its end ("beach 1" .. "beach 3", or
    "beach" beside "beach 2" and "beach 3": the counter of one name, captioned "beach"), or SERIES_OF_DIGITS where
    its numbers are one digit each ("bird" beside macOS' copy "bird 2", "cat_1" beside "cat_2"). A counter counts
    from its start: the series holds it (the name without a number, or 1) and one number in COUNTER_SHARE at least
    up to its largest, gaps and all ("bird 1", "bird 4", "bird 12", "bird 19"), where a product's versions start
    later ("iphone 12" .. "iphone 14", "windows 7", "windows 8", "windows 10", "windows 95", "windows 98", "windows
    2000" keep theirs) and names' numbers are sparse ("route 1", "route 66", "route 101"; "level 1", "level 10" ..
    "level 30"); a series without its start is a counter's only where it is long, COUNTER_RUN names or more with
    two numbers in a row among them, and one in COUNTER_SHARE of the numbers from its smallest ("walk 100" ..
    "walk 121": a count split between folders). A
    name alone keeps its number ("cat_12": no series shows it counting). Each name
    without a number is one step of the series, each different number one: copies of one named number ("route 66",
    "route 66 copy", "route 66 (1)", all captioned "route 66") are one name, not a series of it. The names of the
    pictures captioned already (captioned) count too: "beach 4" added to a folder whose "beach 1" .. "beach 3"
    were captioned by an earlier run is "beach", as they are."""
    def split(caption: str) -> tuple[str, str | None]:  # ("beach", "10") of "beach 10"; ("beach", None) of "beach"
        m = re.fullmatch(rf"(.+) ({_NAME_NUMBER})", caption)
        return (m.group(1), m.group(2)) if m else (caption, None)

    groups: dict[tuple[Path, str], list[Path]] = {}
    steps: dict[tuple[Path, str], tuple[list[Path], set[str]]] = {}  # (names without a number, numbers)

    def count(key: tuple[Path, str], number: str | None, name: Path) -> None:
        unnumbered, numbers = steps.setdefault(key, ([], set()))
        if number is None:
            unnumbered.append(name)
        else:
            numbers.add(number)

    numbered: set[Path] = set()  # the folders where a caption to write ends in a number
    for txt, (caption, _) in plan.writes.items():
        base, number = split(caption)
        groups.setdefault((txt.parent, base), []).append(txt)
        count((txt.parent, base), number, txt)
        if number is not None:
            numbered.add(txt.parent)
    for picture in captioned:  # (only in such a folder: a name read each)
        if picture.parent in numbered and (caption := caption_of(picture.stem)) is not None:
            base, number = split(caption)
            if (picture.parent, base) in steps:
                count((picture.parent, base), number, picture)
    colour_sets: dict[tuple[Path, frozenset[str]], int] = {}  # (folder, numbers) -> colours of the folder with them
    # (each name a number: a colour beside its copies, "red" and macOS' "red 2", is a counter's series of it)
    for (folder, base), (unnumbered, numbers) in steps.items():
        if base in COLOURS and numbers and not unnumbered:
            colour_sets[folder, frozenset(numbers)] = colour_sets.get((folder, frozenset(numbers)), 0) + 1
    for key, txts in groups.items():
        unnumbered, numbers = steps[key]
        digits = numbers and all(len(n) == 1 for n in numbers)  # ("bird" and "bird 2"; not "route 1", "route 66")
        # a counter counts from its start, the name without a number or 1 ("bird", "bird 2"; "beach 1" .. "beach 3"),
        # and numbers one picture in COUNTER_SHARE at least up to its largest, gaps and all ("bird 1", "bird 4",
        # "bird 12", "bird 19" kept theirs); a product's versions start later ("iphone 12" .. "iphone 14", "windows 7",
        # "windows 8", "windows 10" were all "iphone", "windows"), and names' numbers are sparse ("route 1",
        # "route 66", "route 101"; "level 1", "level 10" .. "level 30"). Only a long series, COUNTER_RUN names or
        # more with two numbers in a row, is a counter without its start (a count split between folders, "shot 10"
        # .. "shot 608")
        values = {int(n) for n in numbers}  # (once: a set made for each number took seconds for a folder of
        # thousands of numbers none of them in a row, "shot 10", "shot 12", ...)
        names = len(unnumbered) + len(numbers)
        start = bool(unnumbered) or 1 in values
        # (one in COUNTER_SHARE of the numbers from where it starts: a long series without its start, "walk 100" ..
        # "walk 121", was measured from 1 and kept its numbers)
        # (but years, "calendar 2010" .. "calendar 2021", name each picture: they were all "calendar")
        years = all(len(n) == 4 and 1900 <= int(n) <= 2099 for n in numbers)
        counts = bool(numbers) and names * COUNTER_SHARE >= max(values) - (
            0 if start or years else min(values) - 1) and (
            start or names >= COUNTER_RUN and any(v + 1 in values for v in values))
        # ... and a number marked as one, "Symphony No. 5" .. "Symphony No. 7", is each one's name (not "symphony no")
        counts = counts and _NUMBER_MARK_END.search(key[1]) is None
        # ... and a colour's numbers, where another colour of the folder has the same ones, are its cards' values
        # (Hanabi's "blue_1" .. "blue_5" beside "red_1" .. "red_5": each colour's five cards were all "blue", "red")
        # (not where a name of the colour has no number: "red", "red 2" beside "blue", "blue 2" are copies, as before;
        # and up to CARD_VALUES: "red_1" .. "red_40" beside "blue_1" .. "blue_40" are a counter of each's photos)
        counts = counts and not (key[1] in COLOURS and not unnumbered and max(values) <= CARD_VALUES
                                 and colour_sets.get((key[0], frozenset(numbers)), 0) >= 2)
        if counts and names >= (SERIES_OF_DIGITS if digits else SERIES):
            for txt in txts:
                plan.writes[txt] = (key[1], plan.writes[txt][1])


def _caption_name(folder: Path, name: str) -> bool:
    """Whether name is a caption file's name (NAME.txt) of a picture in folder, or the record a temporary of one
    keeps (recorded_name's cut of a long one, or t2i 0.18.0's: recorded_by_018): a temporary made for it is
    write_captions'."""
    stem, dot, suffix = name.rpartition(".")
    txt = bool(dot and stem and suffix == "txt")
    if txt and any((folder / f"{stem}{e}").is_file() for ext in IMAGE_SUFFIXES for e in (ext, ext.upper())):
        return True
    cut = txt and cut_record(name)
    if not (cut or head_of_long_name(name)):
        return False
    try:  # the record of a long NAME.txt is cut (files.recorded_name): a picture there whose caption's record it is
        # (or t2i 0.18.0's record of it, its first 64 bytes alone: files.recorded_by_018); a picture's file looked
        # at only where its caption's record is name (it was looked at first: a stat of each picture there for each
        # temporary of a 61-64 byte record, whatever its name)
        return any(p.suffix.lower() in IMAGE_SUFFIXES and (
            (cut and recorded_name(f"{p.stem}.txt") == name) or recorded_by_018(name, [f"{p.stem}.txt"]))
                   and p.is_file() for p in folder.iterdir())
    except OSError:
        return False


def remove_killed_temporaries(plan: CaptionPlan) -> list[Path]:
    """Remove the temporaries of caption files a killed run left beside the plan's pictures, once a minute old
    (another run may be writing one now), in every folder of them, not only those with a caption left to write: a
    kill between write_if_absent's link and its unlink left one beside a caption written, which stayed for good
    where that folder's captions were all written. Only a temporary of mkstemp's shape is one (exact: a user's
    .bird.txt.mine.tmp there, a picture's folder, is the user's own, and was removed). Returns them."""
    return [tmp for folder in sorted(plan.folders | {txt.parent for txt in plan.writes})
            for tmp in remove_temporaries(folder, functools.partial(_caption_name, folder), STALE_AFTER)]


def write_captions(plan: CaptionPlan, done: Callable[[int, int], None] = lambda k, n: None,
                   kept: Callable[[int, bool], None] = lambda n, more: None) -> tuple[list[Path], int]:
    """Write each planned caption file whole (files.write_if_absent: a caption file made meanwhile is kept, not
    replaced). (the files written, the number found made meanwhile). kept: told (the files written so far, whether
    more are planned) as one step with each write (a stop waits for both: what a stop says of them)."""
    written, existing = [], 0
    remove_killed_temporaries(plan)
    for k, (txt, (caption, _)) in enumerate(sorted(plan.writes.items())):
        done(k, len(plan.writes))
        try:
            with signals_held():  # (a stop as the file was linked into place left it uncounted)
                made = write_if_absent(txt, (caption + "\n").encode("utf-8"))
                if made:
                    written.append(txt)
                    kept(len(written), k + 1 < len(plan.writes))
        except OutputError as e:  # a full disk, a read-only sub-folder: what was written stays, and is said
            line = str(e)
            if isinstance(e.__cause__, OSError) and e.__cause__.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                # ("choose a writable folder" was said, which no option of data caption can do: the captions go
                # beside their pictures)
                line = (f"cannot write {txt}: {e.__cause__.strerror}; data caption writes each caption beside its "
                        f"picture: make {txt.parent} writable, or copy the pictures into a writable folder and "
                        f"caption that")
            if written:
                raise OutputError(f"{line} ({counted(len(written), 'caption file')} of {len(plan.writes):,} written "
                                  f"before it, each whole; run the command again to write the rest)") from e
            raise OutputError(line) from e
        if not made:
            existing += 1
    done(len(plan.writes), len(plan.writes))
    return written, existing


def summary(plan: CaptionPlan, nameless_hint: str = "") -> str:
    """What the plan leaves out, in one line (None said as ''): pictures with a caption, names without words (and
    nameless_hint, what to do for those, right after them: at the line's end it followed a taken caption name's
    "rename it, then run this again", and read as said of that)."""
    parts = []
    if plan.captioned:
        parts.append(f"{counted(plan.captioned, 'picture')} already captioned (left untouched)")
    if plan.nameless:
        what = "folder's name" if plan.source == "folder" else "name"
        parts.append(f"{counted(len(plan.nameless), 'picture')} whose {what} holds no words to caption it by, e.g. "
                     f"{plan.nameless[0]}")
        if plan.source == "folder" and (split := next((p for p in plan.nameless if p.parent.name
                                                        and is_split(caption_of(p.parent.name))), None)):
            parts[-1] += f" (a split's folder, {split.parent.name}/, names no class)"
        if undecoded := [p for p in plan.nameless if not_utf8(str(p))]:
            parts[-1] += (f" ({len(undecoded)} of them named in another encoding than UTF-8, a Windows zip's?: "
                          f"rename them)")
        parts[-1] += nameless_hint
    if plan.sheets:
        its, it = ("its", "it") if len(plan.sheets) == 1 else ("their", "them")
        parts.append(f"{counted(len(plan.sheets), 'contact sheet')} t2i wrote left without a caption (marked in {its} "
                     f"PNG text), e.g. {plan.sheets[0]}: move {it} out of the folder, where training counts {it} "
                     f"as without a caption")
    for why, n, first in plan.unread_formats:
        parts.append(f"{counted(n, why)} not captioned, e.g. {first}")
    if plan.apart:
        n, (first, txt) = len(plan.apart), plan.apart[0]
        parts.append(f"{counted(n, 'picture')} whose NAME.txt sits in another folder left without a caption, e.g. "
                     f"{first} ({txt}): training reads a picture's caption beside it, so move each caption next to "
                     f"its picture")
    if plan.undecodable:
        n, (first, why) = len(plan.undecodable), plan.undecodable[0]
        its, it = ("its", "it") if n == 1 else ("their", "them")
        parts.append(f"{counted(n, 'picture')} that t2i cannot open left without a caption (training leaves {it} out), "
                     f"e.g. {first} ({why}): replace {it} with a copy t2i can open (PNG or JPEG), or remove {it}")
    if plan.unreadable:
        parts.append(f"{counted(len(plan.unreadable), 'folder')} that cannot be read (permission?) left out, e.g. "
                     f"{plan.unreadable[0]}")
    if plan.taken:
        n = len(plan.taken)
        parts.append(f"{n} caption file name{'' if n == 1 else 's'} taken by what is not a caption file (a folder, "
                     f"a link to a missing file), e.g. {plan.taken[0]}: rename it, then run this again")
    return "; ".join(parts)
