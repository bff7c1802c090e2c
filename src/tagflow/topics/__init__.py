"""The `topics` family: multi-label topic classification of news (Reuters-21578, ModApte),
from the original SGML to a gated, registered classifier (TF-IDF + linear SVM floor, and a
transformer backbone with a classification head adapted by LoRA)."""
