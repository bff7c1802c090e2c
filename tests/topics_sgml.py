"""A tiny Reuters-21578-like SGML distribution, written by tests: the real format's quirks
(latin-1 bytes, `&#n;` references, `&lt;`, BRIEF and UNPROC texts, an empty file as left by
the withheld test part) and topic vocabularies a classifier can learn."""
from __future__ import annotations

from pathlib import Path

VOCAB = {
    "earn": "net profit shr qtr dividend revenues earnings per share",
    "grain": "wheat corn tonnes harvest crop export grain bushels",
    "crude": "oil barrel opec crude refinery petroleum prices output",
    "acq": "acquire merger stake takeover shares company buy offer",
    "cocoa": "cocoa beans bahia arrivals bags",
}


def story(newid: int, topics: list[str], split: str = "TRAIN", topics_attr: str = "YES",
          text_type: str | None = None, title: str | None = None, body: str | None = None) -> str:
    words = " ".join(VOCAB[t] for t in topics) or "general news of the day"
    title = title if title is not None else f"{' '.join(topics).upper() or 'NEWS'} REPORT &lt;{newid}&gt;"
    body = body if body is not None else f"{words} caf\xe9 {newid} {words}.\n Reuter\n&#3;"
    kind = f' TYPE="{text_type}"' if text_type else ""
    inner = (f"<TITLE>{title}</TITLE>" if title else "") + (f"<BODY>{body}</BODY>" if body else "")
    if text_type == "UNPROC":
        inner = body
    return (f'<REUTERS TOPICS="{topics_attr}" LEWISSPLIT="{split}" CGISPLIT="TRAINING-SET" '
            f'OLDID="{5000 + newid}" NEWID="{newid}">\n<DATE>26-FEB-1987 15:01:01.79</DATE>\n'
            f'<TOPICS>{"".join(f"<D>{t}</D>" for t in topics)}</TOPICS>\n<PLACES><D>usa</D></PLACES>\n'
            f"<UNKNOWN>&#5;&#5;&#5;C T</UNKNOWN>\n<TEXT{kind}>&#2;\n{inner}</TEXT>\n</REUTERS>\n")


def corpus(n_per_topic: int = 30, test: bool = False) -> list[str]:
    """Stories cycling through single and paired topics, plus a few documents ModApte skips."""
    stories, newid = [], 1
    combos = [["earn"], ["grain"], ["crude"], ["acq"], ["grain", "crude"], ["earn", "acq"]]
    for i in range(n_per_topic * len(combos)):
        split = "TEST" if test and i % 4 == 0 else "TRAIN"
        stories.append(story(newid, combos[i % len(combos)], split))
        newid += 1
    stories.append(story(newid, [], topics_attr="NO"))                   # no topics: not ModApte
    stories.append(story(newid + 1, ["earn"], split="NOT-USED"))          # not in either part
    stories.append(story(newid + 2, ["cocoa"], topics_attr="BYPASS"))     # bypassed
    return stories


def write_distribution(folder: Path, stories: list[str], per_file: int = 50) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    head = '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n'
    chunks = [stories[i:i + per_file] for i in range(0, len(stories), per_file)]
    for n, chunk in enumerate(chunks):
        (folder / f"reut2-{n:03d}.sgm").write_bytes((head + "".join(chunk)).encode("latin-1"))
    (folder / f"reut2-{len(chunks):03d}.sgm").write_bytes(head.encode("latin-1"))  # emptied file
    return folder
