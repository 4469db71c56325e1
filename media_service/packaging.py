"""From ffmpeg's MPD and segment files to the package's playlists (pure functions over text and sizes).

``read_mpd`` takes what ffmpeg wrote: each representation with its codec string, size and the exact
duration of every segment (the SegmentTimeline). The HLS playlists are written from that, following
RFC 8216 and Apple's authoring rules: version 7 with ``EXT-X-MAP`` (fMP4), ``VOD`` with
``EXT-X-ENDLIST``, ``EXT-X-INDEPENDENT-SEGMENTS``, and variants whose ``BANDWIDTH`` (the peak
segment bitrate) and ``AVERAGE-BANDWIDTH`` are measured on the segment files, audio included.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Final

from media_service.options import SubtitleSpec

_NS: Final = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
MASTER_NAME: Final = "master.m3u8"
AUDIO_GROUP: Final = "audio"
SUBTITLE_GROUP: Final = "subs"
HLS_VERSION: Final = 7


@dataclass(frozen=True)
class Representation:
    """One representation of ffmpeg's MPD, with what the playlists need."""

    id: str
    content: str  # "video" | "audio"
    codecs: str
    init: str
    segments: tuple[tuple[str, float], ...]  # (file name, seconds)
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    channels: int | None = None

    @property
    def duration(self) -> float:
        return sum(seconds for _, seconds in self.segments)


@dataclass(frozen=True)
class Measured:
    """A representation's bitrates as measured on its segment files (bits/s)."""

    peak: int
    average: int


@dataclass(frozen=True)
class SubtitleRendition:
    spec: SubtitleSpec
    vtt: str  # file name of the WebVTT file in the package
    playlist: str  # its HLS media playlist


@dataclass(frozen=True)
class Package:
    representations: tuple[Representation, ...]
    duration: float
    subtitles: tuple[SubtitleRendition, ...] = field(default=())

    @property
    def video(self) -> list[Representation]:
        return [r for r in self.representations if r.content == "video"]

    @property
    def audio(self) -> Representation | None:
        return next((r for r in self.representations if r.content == "audio"), None)


def _duration(value: str) -> float:
    """An ISO 8601 duration as ffmpeg writes it (``PT1H2M3.5S``) in seconds."""
    total, number = 0.0, ""
    for char in value.removeprefix("PT"):
        if char in "HMS":
            total += float(number) * {"H": 3600, "M": 60, "S": 1}[char]
            number = ""
        else:
            number += char
    return total


def _expand(template: str, rep_id: str, number: int | None = None) -> str:
    name = template.replace("$RepresentationID$", rep_id)
    if number is not None:
        head, _, rest = name.partition("$Number")
        fmt, _, tail = rest.partition("$")
        width = int(fmt.strip("%0d") or 0) if fmt else 0
        name = f"{head}{number:0{width}d}{tail}"
    return name


def read_mpd(text: str) -> Package:
    """The representations and segment durations of an MPD written by ffmpeg's DASH muxer."""
    root = ET.fromstring(text)
    reps: list[Representation] = []
    for aset in root.iterfind(".//mpd:AdaptationSet", _NS):
        content = aset.get("contentType", "")
        rate = aset.get("frameRate")
        for rep in aset.iterfind("mpd:Representation", _NS):
            template = rep.find("mpd:SegmentTemplate", _NS)
            assert template is not None, "ffmpeg writes a SegmentTemplate per representation"
            timescale = int(template.get("timescale", "1"))
            number = int(template.get("startNumber", "1"))
            segments: list[tuple[str, float]] = []
            for entry in template.iterfind("mpd:SegmentTimeline/mpd:S", _NS):
                for _ in range(int(entry.get("r", "0")) + 1):
                    name = _expand(template.get("media", ""), rep.get("id", ""), number)
                    segments.append((name, int(entry.get("d", "0")) / timescale))
                    number += 1
            channels = rep.find("mpd:AudioChannelConfiguration", _NS)
            reps.append(
                Representation(
                    id=rep.get("id", ""),
                    content=content,
                    codecs=rep.get("codecs", ""),
                    init=_expand(template.get("initialization", ""), rep.get("id", "")),
                    segments=tuple(segments),
                    width=int(rep.get("width", "0")) or None,
                    height=int(rep.get("height", "0")) or None,
                    frame_rate=float(Fraction(rate)) if rate else None,
                    channels=int(channels.get("value", "0")) if channels is not None else None,
                )
            )
    duration = _duration(root.get("mediaPresentationDuration", "PT0S"))
    return Package(representations=tuple(reps), duration=duration)


def with_codecs(package: Package, codecs: Mapping[str, str]) -> Package:
    """Replace codec strings (by representation id), e.g. ffmpeg 5.1's bare ``hvc1``."""
    reps = tuple(replace(r, codecs=codecs.get(r.id, r.codecs)) for r in package.representations)
    return replace(package, representations=reps)


def measure(rep: Representation, sizes: Mapping[str, int]) -> Measured:
    """Peak and average bits/s of a representation's media segments (init segment excluded)."""
    peak = max((sizes[name] * 8 / seconds for name, seconds in rep.segments if seconds > 0), default=0.0)
    total = sum(sizes[name] for name, _ in rep.segments)
    average = total * 8 / rep.duration if rep.duration > 0 else 0.0
    return Measured(peak=math.ceil(peak), average=math.ceil(average))


def media_playlist(init: str, segments: tuple[tuple[str, float], ...]) -> str:
    """An fMP4 VOD media playlist; the target duration is the longest segment rounded to the nearest
    integer (RFC 8216 §4.3.3.1), so an AAC segment 5 ms over 2 s does not make the target 3."""
    target = max(1, math.floor(max((seconds for _, seconds in segments), default=1.0) + 0.5))
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init}"',
    ]
    for name, seconds in segments:
        lines += [f"#EXTINF:{seconds:.6f},", name]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def subtitle_playlist(vtt: str, duration: float) -> str:
    """A subtitles media playlist: the whole WebVTT file as one segment."""
    target = max(1, math.ceil(duration - 1e-6))
    return (
        f"#EXTM3U\n#EXT-X-VERSION:{HLS_VERSION}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{duration:.6f},\n{vtt}\n#EXT-X-ENDLIST\n"
    )


def playlist_name(rep: Representation) -> str:
    return f"video-{rep.height}p.m3u8" if rep.content == "video" else "audio.m3u8"


def _quoted(value: str) -> str:
    return value.replace('"', "'").replace("\n", " ")


def master_playlist(package: Package, measured: Mapping[str, Measured]) -> str:
    """The multivariant playlist: the audio and subtitle groups, then one variant per rung."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio = package.audio
    if audio is not None and package.video:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,'
            f'CHANNELS="{audio.channels or 2}",URI="{playlist_name(audio)}"'
        )
    for track in package.subtitles:
        language = f',LANGUAGE="{track.spec.language}"' if track.spec.language else ""
        default = "YES" if track.spec.default else "NO"
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}",NAME="{_quoted(track.spec.label)}"'
            f'{language},DEFAULT={default},AUTOSELECT={default},URI="{track.playlist}"'
        )
    extra = measured[audio.id] if audio is not None else Measured(0, 0)
    subtitles = f',SUBTITLES="{SUBTITLE_GROUP}"' if package.subtitles else ""
    for rep in package.video:
        own = measured[rep.id]
        codecs = rep.codecs + (f",{audio.codecs}" if audio is not None else "")
        attrs = [
            f"BANDWIDTH={own.peak + extra.peak}",
            f"AVERAGE-BANDWIDTH={own.average + extra.average}",
            f"RESOLUTION={rep.width}x{rep.height}",
            f"FRAME-RATE={rep.frame_rate or 30:.3f}",
            f'CODECS="{codecs}"',
        ]
        if audio is not None:
            attrs.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs) + subtitles, playlist_name(rep)]
    if not package.video and audio is not None:
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={extra.peak},AVERAGE-BANDWIDTH={extra.average},"
            f'CODECS="{audio.codecs}"{subtitles}',
            playlist_name(audio),
        ]
    return "\n".join(lines) + "\n"


def final_mpd(text: str, package: Package) -> str:
    """ffmpeg's MPD with the package's codec strings (full HEVC ones) and one text AdaptationSet
    (WebVTT, role subtitle) per subtitles track."""
    for prefix, uri in (("", _NS["mpd"]), ("xlink", "http://www.w3.org/1999/xlink"), ("xsi", _XSI)):
        ET.register_namespace(prefix, uri)
    root = ET.fromstring(text)
    codecs = {rep.id: rep.codecs for rep in package.representations}
    for rep in root.iterfind(".//mpd:Representation", _NS):
        if rep.get("id") in codecs:
            rep.set("codecs", codecs[rep.get("id", "")])
    period = root.find("mpd:Period", _NS)
    assert period is not None, "ffmpeg writes one Period"
    next_id = len(period.findall("mpd:AdaptationSet", _NS))
    for i, track in enumerate(package.subtitles):
        attrs = {"id": str(next_id + i), "contentType": "text", "mimeType": "text/vtt"}
        if track.spec.language:
            attrs["lang"] = track.spec.language
        aset = ET.SubElement(period, _tag("AdaptationSet"), attrs)
        ET.SubElement(aset, _tag("Role"), {"schemeIdUri": "urn:mpeg:dash:role:2011", "value": "subtitle"})
        ET.SubElement(aset, _tag("Label")).text = track.spec.label
        rep = ET.SubElement(aset, _tag("Representation"), {"id": f"text{i}", "bandwidth": "256"})
        ET.SubElement(rep, _tag("BaseURL")).text = track.vtt
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _tag(name: str) -> str:
    return f"{{{_NS['mpd']}}}{name}"
