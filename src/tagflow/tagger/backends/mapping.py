"""Nearest-label mapping for free generation: a generated label that matches no thesaurus label
exactly ("Cultural heritages", "Heritage, cultural", "Musées") is mapped to the thesaurus label
closest by character trigrams, if the cosine reaches `min_similarity`; else it stays unknown.

Trigram TF-IDF rather than an encoder: it is cheap to build for every label in every language
(about a second), deterministic, and aims at the model's typical misses, which are spelling and
inflection variants of real labels; a sentence encoder would also map paraphrases, and with them
labels the model invented."""
from __future__ import annotations

from ...thesaurus.index import normalize


class NearestLabel:
    def __init__(self, thesaurus, min_similarity: float):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.min_similarity = min_similarity
        pairs = sorted({(normalize(label), uri) for uri in thesaurus.label
                        for label in thesaurus.all_labels(uri) if normalize(label)})
        self.uris = [uri for _, uri in pairs]
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform([label for label, _ in pairs])

    def __call__(self, label: str) -> str | None:
        """URI of the closest thesaurus label, or None when nothing is close enough."""
        key = normalize(label)
        if not key:
            return None
        similarities = (self.matrix @ self.vectorizer.transform([key]).T).toarray().ravel()
        best = int(similarities.argmax())
        return self.uris[best] if similarities[best] >= self.min_similarity else None
