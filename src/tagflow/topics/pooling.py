"""The encoder backbones' classifier: mean of the token states over the attention mask, then one
linear layer (multi-label, BCE).

Why not `AutoModelForSequenceClassification` for encoders: BERT-family heads read the pooler
(tanh over [CLS]), which sentence encoders such as all-MiniLM-L6-v2 never trained; its outputs
are small and alike across documents, and with ~100 rare labels the head stayed below 0.5 for
hundreds of steps (README, topics). Mean pooling is what those encoders were trained for.
Decoder backbones keep their own head (the last non-pad token).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

HEAD_FILE = "head.pt"


def is_encoder(path: str) -> bool:
    """Masked-LM architectures (BERT, XLM-R, ...) are encoders; everything else is read as a
    decoder with its own sequence-classification head."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return AutoConfig.from_pretrained(path).model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def prior_logits(Y: np.ndarray) -> torch.Tensor:
    """Each label's log prior odds: the head starts at the label frequencies, so the first steps
    learn evidence instead of pushing ~100 rare labels' logits down from 0 (probability 0.5)."""
    n = len(Y)
    p = np.clip(np.asarray(Y, np.float64).mean(0), 0.5 / n, 1 - 0.5 / n)
    return torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)


class MeanPoolClassifier(torch.nn.Module):
    def __init__(self, encoder, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, num_labels)
        self.config = encoder.config

    def forward(self, input_ids, attention_mask, labels=None, **kwargs):
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        logits = self.classifier(self.dropout(pooled.to(self.classifier.weight.dtype)))
        loss = None
        if labels is not None:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return SimpleNamespace(loss=loss, logits=logits)

    def save_head(self, folder) -> None:
        torch.save(self.classifier.state_dict(), f"{folder}/{HEAD_FILE}")

    def load_head(self, folder) -> None:
        self.classifier.load_state_dict(torch.load(f"{folder}/{HEAD_FILE}", map_location="cpu",
                                                   weights_only=True))
