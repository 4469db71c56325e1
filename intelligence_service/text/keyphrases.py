"""Keyphrases by a small TextRank of our own, plus the word handling the other text modules share.

Why no library: YAKE, the usual maintained choice, is published under copyleft terms that also
contradict each other (yake 0.7.3 on PyPI: metadata "LGPLv3", classifier GPLv3, LICENSE file
AGPL-3.0), which does not fit this Apache-2.0 project, and it pulls in numpy, networkx, jellyfish,
segtok, tabulate and click for what is a few dozen lines. TextRank (Mihalcea & Tarau, 2004) needs
no model and no corpus. Candidates are RAKE-style: runs of content words between stopwords and
punctuation, cut into 1-3 word n-grams. Words are ranked by PageRank over their co-occurrence
graph, and a phrase scores the sum of its words' ranks times log(1 + how often it occurs).
Multi-word phrases must occur at least twice, so the sum lets a repeated "electric car" beat "car"
but never rewards a one-off string of strong words. Without a part-of-speech tagger, "noun-ish"
means: no stopwords (each list also holds filler and common verbs), no digits, at least three
letters (or a two-letter acronym).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

TITLE_LIMIT = 70

# Small by design: function words, fillers and the verbs a speaker uses about anything. A word
# missing here at worst shows up as a weak candidate; it never breaks anything.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        """a about above after again against all almost also although always am an and any are
        around as at away back be because been before being below between both but by can
        could did do does doing done down during each either else enough even ever every few
        for from further get gets getting give given go goes going gone good got great had has
        have having he her here hers him his how however i if in into is it its itself just
        keep kind know last less let like little lot lots made make makes making many may me
        might more most much must my need needs never new next no nor not now of off often oh
        ok okay on once one only or other others our ours out over own part people perhaps
        pretty put quite rather really right said same say says see seem seems she should
        show since so some something sort still such sure take takes than thank thanks that
        the their theirs them then there these they thing things think this those though
        through thus to today together too took toward two under until up upon us use used
        uses using very via want wants was way ways we well went were what when where whether
        which while who whom whose why will with within without would yeah yes yet you your
        yours um uh actually basically first second third finally let's""".split()
    ),
    "de": frozenset(
        """aber alle allem allen aller alles als also am an ander andere anderen auch auf aus bei
        beim bin bis bist bitte da dabei dadurch damit dann darauf darum das dass daß dein deine
        dem den denn der des dessen deshalb die dies diese diesem diesen dieser dieses doch dort
        du durch eben ein eine einem einen einer eines einfach einige er es etwa etwas euch euer
        für gab gegen geht gibt gut habe haben hat hatte hatten heute hier ich ihm ihn ihnen ihr
        ihre ihrem ihren im immer in ins ist ja jede jedem jeden jeder jedes jetzt kann kein
        keine können könnte lassen man mehr mein meine mich mir mit muss müssen nach nicht nichts
        noch nun nur ob oder ohne schon sehr sein seine seinem seinen sich sie sind so sollte
        sondern sowie über um und uns unser unsere unter viel viele vom von vor wann war waren
        was weil weiter welche wenn wer werden wie wieder will wir wird wirklich wo wurde wurden
        zu zum zur zwischen""".split()
    ),
    "fr": frozenset(
        """a ai alors au aussi autre aux avec avoir bien bon ce cela celle ces cet cette chaque
        comme comment dans de des deux donc du elle elles en encore est et être été fait faire
        il ils je la le les leur leurs lui mais me même mes moi mon ne nos notre nous on ont ou
        où par pas peu peut plus pour pourquoi quand que quel quelle qui sa sans se ses si son
        sont sous sur ta te tes toi ton tous tout toute toutes très tu un une vos votre vous
        voilà ça""".split()
    ),
    "es": frozenset(
        """a al algo algunos ante antes así aunque bien cada como con cual cuando de del desde
        donde dos el ella ellas ellos en entre era es esa ese eso esta está están este esto estos
        fue ha hace hacer hasta hay la las le les lo los más me mi muy mucho nada ni no nos
        nosotros o otra otro para pero poco por porque puede que qué se sea según ser si sí sin
        sobre son su sus también tan tanto te tiene todo todos tu un una uno unos usted y ya yo
        él""".split()
    ),
    "it": frozenset(
        """a ad al alla alle anche ancora avere c che chi ci come con cosa così da dal dalla dei
        del della delle di dove due e è ed era essere fa fare gli ha hanno i il in io la le lei
        lo loro lui ma mi molto ne nei nel nella noi non o per però perché più poi può quale
        quando quanto quello questa questo qui se sei si sia siamo sono su sua sue sul sulla suo
        tra tu tutti tutto un una uno voi""".split()
    ),
    "pt": frozenset(
        """a à ao aos as às até com como da das de dela dele do dos e é ela ele eles em entre era
        essa esse esta está estão este eu foi há isso isto já la lhe mais mas me mesmo meu
        minha muito na nas não nem no nos nós o os ou para pela pelo por porque quando que
        quem se sem ser seu sua são também tem ter todo todos tu um uma uns você""".split()
    ),
}
_ALL_STOPWORDS = frozenset().union(*STOPWORDS.values())
_CONJUNCTIONS = {"en": "and", "de": "und", "fr": "et", "es": "y", "it": "e", "pt": "e"}

_SENTENCE_END = re.compile("(?<=[.!?\u2026])\\s+|(?<=[\u3002\uff01\uff1f])")  # also CJK full stops
_TOKEN = re.compile("[^\\W_]+(?:['\u2019-][^\\W_]+)*|[^\\w\\s]")
_LETTERS = re.compile(r"[^\W\d_]+")
_WINDOW = 3
_MAX_PHRASE_WORDS = 3

_K = TypeVar("_K", bound=Hashable)


@dataclass(frozen=True)
class _Word:
    """A content word: `key` is what counts as the same word, `surface` how it was written."""

    key: str
    surface: str
    starts_sentence: bool


def language_code(text: str, language: str | None) -> str:
    """The stopword list to use: the caller's ("de", "de-AT"), else guessed from `text` by counting
    stopword hits, because Whisper's language is sometimes missing. "" means none of ours fits.
    Then the union of all lists applies."""
    if language:
        code = language.lower().replace("_", "-").split("-")[0]
        return code if code in STOPWORDS else ""
    words = _LETTERS.findall(text.lower())
    hits = {code: sum(word in stop for word in words) for code, stop in STOPWORDS.items()}
    best = max(hits, key=hits.__getitem__)
    return best if hits[best] else ""


def split_sentences(text: str) -> list[str]:
    """Sentences by terminal punctuation; good enough for speech, which has few abbreviations."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def _stem(word: str) -> str:
    """Lower-case and strip a plural ending, so "Volcanoes" and "volcano" count as one word."""
    word = word.lower()
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("oes"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(sentence: str, code: str) -> list[_Word | None]:
    """The sentence's tokens, content words as `_Word`, anything that ends a phrase as None."""
    stopwords = STOPWORDS.get(code, _ALL_STOPWORDS)
    return [
        _content_word(match.group(), stopwords, index == 0)
        for index, match in enumerate(_TOKEN.finditer(sentence))
    ]


def content_keys(text: str, code: str) -> list[str]:
    """The keys of the content words in `text`, for bag-of-words vectors."""
    return [word.key for sentence in split_sentences(text) for word in _words(sentence, code) if word]


def keyphrases(text: str, *, language: str | None, top: int) -> list[str]:
    """The `top` keyphrases of `text`, best first, as written in the text."""
    return rank_phrases(text, code=language_code(text, language), top=top)


def rank_phrases(text: str, *, code: str, top: int) -> list[str]:
    """`keyphrases` with the language already resolved, for callers that rank many parts of one
    transcript and want one stopword list for all of them."""
    sentences = [_words(sentence, code) for sentence in split_sentences(text)]
    rank = pagerank(_cooccurrence(sentences))
    counts: Counter[tuple[str, ...]] = Counter()
    spellings: Counter[tuple[tuple[str, ...], bool, str]] = Counter()
    for phrase in _candidates(sentences):
        key = tuple(word.key for word in phrase)
        counts[key] += 1
        spellings[key, not phrase[0].starts_sentence, " ".join(word.surface for word in phrase)] += 1
    scores = {
        key: sum(rank[word] for word in key) * math.log1p(count)
        for key, count in counts.items()
        if len(key) == 1 or count > 1
    }
    chosen: list[tuple[str, ...]] = []
    for key in sorted(scores, key=lambda key: -scores[key]):
        if len(chosen) >= top:
            break
        if not any(overlaps(key, other) for other in chosen):
            chosen.append(key)
    return [_spelling(key, spellings) for key in chosen]


def overlaps(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether one phrase's words contain the other's ("cars" within "electric cars"): then both
    name the same topic and listing both wastes a slot."""
    first, second = set(a), set(b)
    return first <= second or second <= first


def phrase_title(phrases: Sequence[str], *, code: str, limit: int = TITLE_LIMIT) -> str:
    """As many leading phrases as fit in `limit`, e.g. "Coffee brewing, volcanoes and electric cars"."""
    for count in range(len(phrases), 0, -1):
        title = _enumerate(phrases[:count], code)
        if len(title) <= limit:
            return _capitalise(title)
    return _capitalise(truncate(phrases[0], limit)) if phrases else ""


def truncate(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return head.rstrip(" ,;:-") + "…"


def cosine(a: Counter[str], b: Counter[str]) -> float:
    """The cosine of two bags of words; 0 when either is empty."""
    dot = sum(count * b[word] for word, count in a.items())
    norm = math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def pagerank(graph: Mapping[_K, Mapping[_K, float]], *, damping: float = 0.85) -> dict[_K, float]:
    """Weighted PageRank over an undirected graph given as symmetric adjacency maps. Every node
    must be a key, isolated ones too."""
    score = dict.fromkeys(graph, 1.0)
    strength = {node: sum(edges.values()) for node, edges in graph.items()}
    for _ in range(100):
        new = {
            node: (1 - damping)
            + damping * sum(weight / strength[other] * score[other] for other, weight in edges.items())
            for node, edges in graph.items()
        }
        settled = all(abs(new[node] - score[node]) < 1e-6 for node in graph)
        score = new
        if settled:
            break
    return score


def _spelling(key: tuple[str, ...], spellings: Counter[tuple[tuple[str, ...], bool, str]]) -> str:
    """How the phrase is most often written mid-sentence: a capital forced by the sentence start
    says nothing about its spelling, while German nouns and names keep theirs everywhere."""
    forms = [(mid, count, form) for (other, mid, form), count in spellings.items() if other == key]
    return max(forms, key=lambda form: form[:2])[2]


def _content_word(token: str, stopwords: frozenset[str], first: bool) -> _Word | None:
    """A token as a content word, or None when it is punctuation, a number or a stopword.
    Apostrophes: "coffee's" is coffee, "l'eau"/"dell'acqua" are eau/acqua (elision), and the
    rest ("don't", "we're") are contractions of stopwords."""
    surface = token.replace("\u2019", "'")
    if "'" in surface:
        head, _, tail = surface.rpartition("'")
        if tail.lower() == "s":
            surface = head
        elif len(tail) >= 3 and len(head) <= 4:
            surface = tail
        else:
            return None
    lower = surface.lower()
    if not _LETTERS.fullmatch(lower.replace("-", "")) or lower in stopwords:
        return None
    if len(lower) < 3 and not (surface.isupper() and len(surface) == 2):
        return None
    return _Word(key=_stem(lower), surface=surface, starts_sentence=first)


def _cooccurrence(sentences: Sequence[Sequence[_Word | None]]) -> dict[str, Counter[str]]:
    """Words linked when they occur within a few content words of each other in one sentence."""
    graph: dict[str, Counter[str]] = {}
    for sentence in sentences:
        keys = [word.key for word in sentence if word]
        for key in keys:
            graph.setdefault(key, Counter())
        for index, key in enumerate(keys):
            for other in keys[index + 1 : index + _WINDOW]:
                if other != key:
                    graph[key][other] += 1
                    graph[other][key] += 1
    return graph


def _candidates(sentences: Iterable[Sequence[_Word | None]]) -> Iterable[list[_Word]]:
    """Every 1-3 word n-gram inside a run of content words."""
    for sentence in sentences:
        run: list[_Word] = []
        for word in [*sentence, None]:
            if word:
                run.append(word)
                continue
            for size in range(1, _MAX_PHRASE_WORDS + 1):
                for start in range(len(run) - size + 1):
                    yield run[start : start + size]
            run = []


def _enumerate(phrases: Sequence[str], code: str) -> str:
    conjunction = _CONJUNCTIONS.get(code)
    if len(phrases) < 2 or conjunction is None:
        return ", ".join(phrases)
    return f"{', '.join(phrases[:-1])} {conjunction} {phrases[-1]}"


def _capitalise(title: str) -> str:
    """Sentence case: only the first letter is raised, so "iPhone"-style and German nouns survive."""
    return title[:1].upper() + title[1:]
