"""Speech media made at test time with espeak-ng, with the words and topic changes known.

espeak-ng's voice is robotic but intelligible to Whisper; every clip is a few seconds of 16 kHz
audio (small, fast to transcribe on 2 cores). The three-topic monologue is rendered one topic at a
time, so the true topic boundaries are the cumulative durations, and its video changes scene at
each boundary (testsrc2 → smptebars → rgbtestsrc) for the scene-cut snapping.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

ENGLISH = (
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore every summer morning."
)
GERMAN = "Guten Morgen. Heute ist das Wetter in Berlin sonnig und warm, und wir gehen in den Park."

# (name, words any of which names the topic in a tag, text)
TOPICS = (
    (
        "coffee",
        {"coffee", "espresso", "beans", "brewing", "grinder"},
        "Coffee brewing starts with fresh beans. A good coffee grinder gives an even grind. "
        "For espresso the coffee must be ground fine, for a French press coarse. "
        "Water for brewing coffee should be just below boiling. "
        "Coffee beans lose their aroma quickly once they are ground.",
    ),
    (
        "volcano",
        {"volcano", "volcanoes", "lava", "magma", "eruption", "crater", "volcanic"},
        "Volcanoes form where magma rises through the crust of the earth. "
        "When a volcano erupts, lava and ash pour out of the crater. "
        "The lava from a volcano can flow for many kilometres. "
        "Volcanic ash clouds can stop aircraft for days. "
        "Scientists watch volcanoes with seismometers to predict an eruption.",
    ),
    (
        "battery",
        {"electric", "car", "cars", "battery", "batteries", "charger", "chargers"},
        "Electric cars run on large lithium batteries. "
        "A battery in an electric car can be charged at home overnight. "
        "Fast chargers fill an electric car battery in about half an hour. "
        "The range of electric cars grows every year as batteries improve. "
        "Electric motors are quiet and need little maintenance.",
    ),
)


@dataclass(frozen=True)
class SpeechCorpus:
    english: Path  # m4a, the ENGLISH text
    german: Path  # m4a, the GERMAN text
    silence: Path  # m4a, 6 s of digital silence
    pink_noise: Path  # m4a, 6 s of pink noise
    monologue: Path  # mp4: TOPICS spoken in order over three scenes
    boundaries: tuple[float, ...]  # seconds where the monologue's topic (and scene) changes
    long_speech: Path  # m4a, ~2 min of speech, for cancel
    no_audio: Path  # mp4 with video only
    photo: Path  # a benign JPEG
    silent_scenes: Path  # mp4 without audio: three 12 s scenes
    silent_cuts: tuple[float, ...]  # where its scenes change


def _run(*argv: str | Path) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


def _ffmpeg(*args: str | Path) -> None:
    _run("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args)


def speak(text: str, dest: Path, *, voice: str = "en") -> Path:
    """``text`` spoken by espeak-ng, as AAC in m4a."""
    wav = dest.with_suffix(".wav")
    _run("espeak-ng", "-v", voice, "-s", "150", "-w", wav, text)
    _ffmpeg("-i", wav, "-ac", "1", "-ar", "16000", "-c:a", "aac", "-b:a", "48k", dest)
    wav.unlink()
    return dest


def unseen_copy(path: Path, dest: Path) -> Path:
    """``path`` with a fresh metadata tag and the same audio: new bytes, so a new SHA-256 that no
    transcript cache holds (a test that needs a child still working cannot take a cached one)."""
    _ffmpeg("-i", path, "-c", "copy", "-metadata", f"comment={uuid.uuid4().hex}", dest)
    return dest


def duration(path: Path) -> float:
    out = _run("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path)
    return float(out.strip())


def words(text: str) -> list[str]:
    return re.findall(r"[a-zäöüß']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(len(ref), 1)


def _monologue(root: Path) -> tuple[Path, tuple[float, ...]]:
    parts = [speak(text, root / f"topic_{name}.m4a") for name, _, text in TOPICS]
    lengths = [duration(part) for part in parts]
    sources = ("testsrc2", "smptebars", "rgbtestsrc")
    args: list[str | Path] = []
    for part in parts:
        args += ["-i", part]
    for source, length in zip(sources, lengths, strict=True):
        args += ["-f", "lavfi", "-i", f"{source}=size=320x180:rate=15:duration={length:.3f}"]
    n = len(parts)
    graph = (
        "".join(f"[{i}:a]" for i in range(n))
        + f"concat=n={n}:v=0:a=1[a];"
        + "".join(f"[{n + i}:v]" for i in range(n))
        + f"concat=n={n}:v=1:a=0[v]"
    )
    out = root / "monologue.mp4"
    _ffmpeg(*args, "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", out)  # fmt: skip
    boundaries = (lengths[0], lengths[0] + lengths[1])
    return out, tuple(round(b, 3) for b in boundaries)


def build_speech_corpus(root: Path) -> SpeechCorpus:
    root.mkdir(parents=True, exist_ok=True)
    english = speak(ENGLISH, root / "english.m4a")
    german = speak(GERMAN, root / "german.m4a", voice="de")
    silence, noise = root / "silence.m4a", root / "pink_noise.m4a"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "6", "-c:a", "aac", silence)
    _ffmpeg("-f", "lavfi", "-i", "anoisesrc=color=pink:r=16000:amplitude=0.3:d=6", "-c:a", "aac", noise)
    monologue, boundaries = _monologue(root)
    long_speech = speak(" ".join(text for _, _, text in TOPICS * 4), root / "long_speech.m4a")
    no_audio = root / "no_audio.mp4"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x90:rate=10:duration=2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        no_audio,
    )
    photo = root / "photo.jpg"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1", photo)
    silent_scenes = root / "silent_scenes.mp4"
    sources = [f"{name}=size=160x90:rate=10:duration=12" for name in ("testsrc2", "smptebars", "rgbtestsrc")]
    _ffmpeg(*[arg for source in sources for arg in ("-f", "lavfi", "-i", source)],
            "-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0[v]", "-map", "[v]",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", silent_scenes)  # fmt: skip
    return SpeechCorpus(
        english,
        german,
        silence,
        noise,
        monologue,
        boundaries,
        long_speech,
        no_audio,
        photo,
        silent_scenes,
        (12.0, 24.0),
    )
