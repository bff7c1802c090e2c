"""Educational-value classifiers (the FineWeb-Edu recipe): annotations in one schema, embeddings of
a frozen sentence encoder computed once, small regression heads chosen on validation, evaluation
as the references report it, and a registered model that answers `score` and `int_score`."""
