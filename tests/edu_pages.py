"""Tiny annotation sets for edu tests: educational pages (explanations, scored high) and
non-educational ones (adverts, chatter, scored low), in the mirror's CSV layout."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

TOPICS = ["photosynthesis", "the water cycle", "fractions", "volcanoes", "the French revolution",
          "electric circuits", "the human heart", "prime numbers", "plate tectonics", "the solar system",
          "ancient Rome", "chemical bonds", "gravity", "cell division", "the printing press", "rainbows"]
PRODUCTS = ["sneakers", "a phone case", "garden chairs", "car insurance", "a pizza deal", "hotel rooms",
            "hair gel", "a casino bonus", "cheap flights", "a sofa", "concert tickets", "a gaming mouse",
            "dog food", "sunglasses", "a loan", "perfume"]


def educational(n: int) -> str:
    topic = TOPICS[n % len(TOPICS)]
    return (f"Lesson {n}: {topic}. In this lesson students learn how {topic} works, step by step. "
            f"First we define the key ideas, then we work through an example, and finally we practise "
            f"with exercises and worked solutions so that the concept of {topic} becomes clear.")


def advert(n: int) -> str:
    product = PRODUCTS[n % len(PRODUCTS)]
    return (f"BUY NOW!!! Offer {n}: {product} at 70% off, today only. Free shipping, click the link, "
            f"sign up for our newsletter and win {product}! Limited stock, best price guaranteed, "
            f"follow us and share with your friends for a discount code.")


def pages(n: int, offset: int = 0) -> tuple[list[str], list[float]]:
    """n pages, alternating educational (scores 3-5) and adverts (scores 0-1)."""
    texts, scores = [], []
    for i in range(offset, offset + n):
        if i % 2 == 0:
            texts.append(educational(i))
            scores.append(3 + i % 3)
        else:
            texts.append(advert(i))
            scores.append(i % 2 * (i // 2 % 2))
    return texts, scores


def write_mirror(root: Path, n: int = 40) -> Path:
    (root / "fineweb-edu-llama33").mkdir(parents=True, exist_ok=True)
    (root / "fineweb-c-danish").mkdir(parents=True, exist_ok=True)
    texts, scores = pages(n)
    pd.DataFrame({"text": texts, "score": scores, "reasoning": "r", "decision": "KEEP", "error": None}).to_csv(
        root / "fineweb-edu-llama33/annotations.csv", index=False)
    texts, scores = pages(n, offset=1000)
    pd.DataFrame({"text": [t + " (da)" for t in texts], "int_score": [min(s, 4) for s in scores]}).to_csv(
        root / "fineweb-c-danish/danish_gemini_labelled.csv", index=False)
    texts, scores = pages(n, offset=2000)
    pd.DataFrame({"text": [t + " (menneske)" for t in texts], "int_score": [min(s, 3) for s in scores],
                  "educational_value_labels": "['None']", "problematic_content_label_present": False,
                  "problematic_content_label_agreement": 1.0}).to_csv(
        root / "fineweb-c-danish/fineweb-c_danish.csv", index=False)
    return root
