"""The haystack: varied filler prose, written for Herd, made from a seed.

Each sentence is put together from small word banks and sentence shapes, so a long text
does not repeat itself in a way a model could learn to skip, and two seeds give two
different texts. The filler holds no digits, so the only number in a prompt is the needle's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

_PEOPLE = (
    "the ferry keeper", "an old cartographer", "the village baker", "a travelling tinker",
    "the lighthouse warden", "a young botanist", "the choir mistress", "a retired sailor",
    "the orchard foreman", "a quiet librarian", "the blacksmith's daughter", "a wandering poet",
    "the mill owner", "a shepherd from the hills", "the harbour clerk", "an apprentice weaver",
    "the schoolteacher", "a beekeeper", "the night watchman", "a glassblower",
)  # fmt: skip
_PLACES = (
    "by the river bend", "at the edge of the marsh", "in the covered market",
    "under the old stone bridge", "behind the chapel", "on the windy ridge",
    "in the walled garden", "near the salt flats", "along the canal towpath",
    "at the crossroads inn", "inside the drafty granary", "beside the frozen pond",
    "in the shade of the chestnut grove", "on the harbour wall", "at the top of the bell tower",
)  # fmt: skip
_DEEDS = (
    "mended a torn fishing net", "counted the geese flying south", "painted the shutters blue",
    "argued about the price of wool", "sang an old song about the sea",
    "planted a row of leeks", "read aloud from a water-stained almanac",
    "sorted letters that had never been sent", "carved a spoon from pear wood",
    "watched the clouds gather over the valley", "polished a brass compass",
    "baked bread that smelled of rosemary", "repaired the creaking gate",
    "drew a map of the paths through the forest", "tuned a borrowed fiddle",
    "traded apples for a bundle of candles", "swept the leaves from the steps",
    "wrote a long letter to a cousin abroad", "fed the stray cats behind the inn",
    "gathered mushrooms after the rain",
)  # fmt: skip
_WEATHER = (
    "The morning was grey and still", "A warm wind came up from the south",
    "Rain drummed on the slate roofs", "The frost had not yet lifted",
    "Fog rolled in from the water", "The afternoon light turned golden",
    "Snow fell softly for an hour", "The air smelled of cut hay",
    "Thunder grumbled somewhere far away", "The evening was clear and cold",
)  # fmt: skip
_THINGS = (
    "a chipped teapot", "a bundle of dried lavender", "a lantern with a cracked pane",
    "a basket of plums", "a wooden whistle", "a coil of tarred rope", "a faded quilt",
    "a jar of honey", "a pair of worn boots", "a book of pressed ferns", "a tin of buttons",
    "a sack of chestnuts", "a little brass bell", "a kite with a torn tail",
)  # fmt: skip
_FEELINGS = (
    "nobody seemed to mind", "everyone agreed it had been a good day",
    "the children laughed about it for weeks", "it was soon forgotten",
    "the whole street talked of nothing else", "it felt like the start of something",
    "the dogs barked until supper", "the old folk said it had happened before",
)  # fmt: skip
_SHAPES = (
    "{weather}, and {person} {deed} {place}.",
    "{Person} {deed} {place} while {person2} looked on.",
    "Later, {person} found {thing} {place}, and {feeling}.",
    "{weather}. {Person} {deed}, then {deed2}.",
    "Some say {person} once {deed} {place}; others remember it differently.",
    "{Person} kept {thing} {place} for years, though {feeling}.",
    "When {person} {deed}, {feeling}.",
    "{Person} and {person2} {deed} together {place}.",
    "Nobody knew why {person} carried {thing}, but {feeling}.",
    "{weather}, so {person} stayed {place} and {deed}.",
)  # fmt: skip


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def sentences(seed: int) -> Iterator[str]:
    """An endless stream of filler sentences; the same seed gives the same stream."""
    rng = random.Random(seed)
    last = ""
    while True:
        person, person2 = rng.sample(_PEOPLE, 2)
        deed, deed2 = rng.sample(_DEEDS, 2)
        sentence = rng.choice(_SHAPES).format(
            weather=rng.choice(_WEATHER),
            person=person,
            Person=_cap(person),
            person2=person2,
            deed=deed,
            deed2=deed2,
            place=rng.choice(_PLACES),
            thing=rng.choice(_THINGS),
            feeling=rng.choice(_FEELINGS),
        )
        if sentence != last:  # never the same sentence twice in a row
            yield sentence
            last = sentence


def filler(seed: int, count: int) -> list[str]:
    """The first ``count`` sentences of the stream for ``seed``."""
    stream = sentences(seed)
    return [next(stream) for _ in range(count)]
