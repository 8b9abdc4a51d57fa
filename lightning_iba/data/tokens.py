"""Token ids that are never removed, and removing tokens from batches: shared by the degradation test
and the baselines that perturb their inputs (occlusion, LIME)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lightning_iba.errors import LightningIBAError, check_choice

Mode = Literal["delete", "mask"]
MODES = ("delete", "mask")
#: The shortest max_length accepted anywhere: below it an input is little more than [CLS] and [SEP].
MIN_MAX_LENGTH = 8


@dataclass(frozen=True)
class SpecialTokens:
    """Token ids the degradation needs: padding, [MASK], and the ids that are never removed."""

    pad_id: int
    mask_id: int | None
    special_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialTokens":
        """Special ids of a HF tokenizer, without [UNK] (which stands for real text)."""
        if tokenizer.pad_token_id is None:
            raise LightningIBAError("the tokenizer has no padding token; degradation needs one")
        unk = tokenizer.unk_token_id
        special = tuple(sorted(i for i in set(tokenizer.all_special_ids) if i != unk))
        return cls(pad_id=int(tokenizer.pad_token_id), mask_id=tokenizer.mask_token_id, special_ids=special)

    def removable(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:  # [batch, tokens] bool
        """Real tokens that are not special: the only ones degradation may remove."""
        special = torch.isin(input_ids, torch.tensor(self.special_ids, dtype=input_ids.dtype, device=input_ids.device))
        return attention_mask.bool() & ~special


def remove_tokens(
    input_ids: Tensor,  # [variants, tokens]
    attention_mask: Tensor,  # [variants, tokens]
    token_type_ids: Tensor | None,  # [variants, tokens]
    remove: Tensor,  # [variants, tokens] bool, True = remove this token
    mode: Mode,
    pad_id: int,
    mask_id: int | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Apply a removal mask to each row: delete (close up, re-pad right) or replace by [MASK].

    Returns (input_ids, attention_mask, token_type_ids), trimmed to the longest row in "delete" mode.
    Token types move with their tokens, so segments stay aligned.
    """
    check_choice("degradation mode", mode, MODES)
    remove = remove & attention_mask.bool()
    if mode == "mask":
        if mask_id is None:
            raise LightningIBAError("mode 'mask' needs a [MASK] token; this tokenizer has none")
        return input_ids.masked_fill(remove, mask_id), attention_mask, token_type_ids
    keep = attention_mask.bool() & ~remove  # [V, T]
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # kept tokens first, in order
    lengths = keep.sum(1)  # [V]
    width = max(int(lengths.max()), 1) if lengths.numel() else 1
    order = order[:, :width]
    new_mask = (torch.arange(width, device=input_ids.device)[None, :] < lengths[:, None]).to(attention_mask.dtype)
    new_ids = input_ids.gather(1, order).masked_fill(new_mask == 0, pad_id)
    new_types = None if token_type_ids is None else token_type_ids.gather(1, order).masked_fill(new_mask == 0, 0)
    return new_ids, new_mask, new_types
