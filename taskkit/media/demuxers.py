"""Which container formats untrusted bytes may be opened with: the one list, and how it is enforced.

libavformat picks a demuxer by sniffing a file's first bytes, and some demuxers are not parsers of
media but readers of *other* files: ``hls``, ``dash`` and ``concat`` open every entry they list
(``file:///…`` included), ``image2`` expands a name into a sequence of files. A file whose first
bytes are a playlist and whose body is a valid MPEG-TS is one thing to PyAV's libavformat and
another to the ffmpeg binary's (they are different versions with different sniffing rules), which is
how a crafted input once made ffmpeg copy a server-side file into a task's output.

So every open of untrusted media states what may happen, in three layers:

1. ``refused_reason`` reads the first bytes and refuses playlists and scripts outright, whatever a
   demuxer would make of the rest (a polyglot is refused even where it would also parse as media).
2. The in-process probe opens the file with ``format_whitelist`` = ``ALLOWED`` and
   ``protocol_whitelist`` = ``file`` (``pyav_options``), so no other demuxer or protocol can run.
3. Every ffmpeg run names the demuxer the probe chose (``-f``), with the same two whitelists
   (``ffmpeg_input_args``), so ffmpeg never re-detects.

Still images Pillow decodes in-process are held to ``PILLOW_FORMATS`` the same way.
"""

from __future__ import annotations

from typing import Final

from taskkit.errors import InputError

# libavformat demuxer name (as PyAV's ``container.format.name`` spells it) -> what a user knows it
# as. These are the demuxers a user's media needs; nothing else reads untrusted bytes.
ALLOWED: Final[dict[str, str]] = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/MOV",  # also AVIF and HEIF stills
    "matroska,webm": "Matroska/WebM",
    "mpegts": "MPEG-TS",
    "avi": "AVI",
    "flv": "FLV",
    "ogg": "Ogg",
    "wav": "WAV",
    "mp3": "MP3",
    "flac": "FLAC",
    "aac": "AAC (ADTS)",
    "png_pipe": "PNG",
    "jpeg_pipe": "JPEG",
    "webp_pipe": "WebP",
    "bmp_pipe": "BMP",
    "tiff_pipe": "TIFF",
    "gif": "GIF",
    "gif_pipe": "GIF",
}

FORMAT_WHITELIST: Final = ",".join(ALLOWED)

# Pillow format -> the demuxer ffmpeg is told to use for the same file. Pillow opens images with
# these plugins only (``Image.open(..., formats=PILLOW_FORMATS)``), never e.g. EPS via Ghostscript.
PILLOW_DEMUXERS: Final[dict[str, str]] = {
    "PNG": "png_pipe",
    "JPEG": "jpeg_pipe",
    "MPO": "jpeg_pipe",
    "WEBP": "webp_pipe",
    "GIF": "gif",
    "BMP": "bmp_pipe",
    "TIFF": "tiff_pipe",
    "AVIF": "mov,mp4,m4a,3gp,3g2,mj2",
}
# The plugins Pillow may try (MPO is what the JPEG plugin reports for multi-picture JPEGs).
PILLOW_FORMATS: Final = tuple(name for name in PILLOW_DEMUXERS if name != "MPO")
# Inputs are always a local file in the task's work dir; the fetcher alone talks to the network.
PROTOCOL_WHITELIST: Final = "file"

PLAYLIST_MESSAGE: Final = "the input is a playlist or script, not a media file"

# First-bytes signatures of formats that reference other files or run a script. Matched after an
# optional UTF-8 byte-order mark and leading whitespace, case-insensitively.
_REFUSED_PREFIXES: Final = (
    b"#extm3u",  # HLS playlist / M3U
    b"ffconcat",  # concat demuxer script
    b"<?xml",  # DASH MPD, SMIL, and other XML manifests
    b"<mpd",
    b"<smil",
    b"[playlist]",  # PLS
    b"#extinf",
)
_SNIFF_BYTES: Final = 4096


def refused_reason(head: bytes) -> str | None:
    """Why the file starting with ``head`` must not be opened as media, or None when it may be."""
    text = head[:_SNIFF_BYTES].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(_REFUSED_PREFIXES):
        return PLAYLIST_MESSAGE
    return None


def demuxer(format_name: str) -> str:
    """The ``-f`` value for a demuxer the probe chose; InputError for one that is not allowed.

    ``-f mov`` selects libavformat's ``mov,mp4,m4a,3gp,3g2,mj2`` demuxer: any one of a demuxer's
    names selects it, and the first is the one every ffmpeg version knows.
    """
    if format_name not in ALLOWED:
        raise InputError(f"unsupported container: {format_name}")
    return format_name.split(",", 1)[0]


def pyav_options() -> dict[str, str]:
    """``av.open`` options that confine libavformat to the allowed demuxers and local files."""
    return {"format_whitelist": FORMAT_WHITELIST, "protocol_whitelist": PROTOCOL_WHITELIST}


def ffmpeg_input_args(format_name: str) -> list[str]:
    """The options placed before an untrusted ``-i``: the chosen demuxer and both whitelists."""
    return [
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "-format_whitelist",
        FORMAT_WHITELIST,
        "-f",
        demuxer(format_name),
    ]
