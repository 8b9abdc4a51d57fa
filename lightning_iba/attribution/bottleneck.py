"""The information bottleneck (SPEC section 1): learned per-element noise on one layer's output.

One module serves a whole batch of instances: each instance has its own `alpha` (so their
optimisations stay independent) and each forward pass sees K noisy copies of every instance that
share that instance's `alpha`.

Layout of the forward input: X is [batch * K, tokens, hidden] with the K copies of instance i in
the contiguous rows i*K .. i*K + K - 1 (what `x.repeat_interleave(K, 0)` produces, and what the
per-instance path feeds through the model when batch = 1).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

INITIAL_ALPHA = 5.0  # sigmoid(5) ~ 0.993: almost no noise at the start
LOG_VAR_CLAMP = 10.0  # the published code clamps the sampling log-variance to [-10, 10]


def _per_copy(stat: Tensor) -> Tensor:
    """Reshape a statistic for broadcasting against [batch, K, tokens, hidden]."""
    # [batch, tokens, hidden] -> [batch, 1, tokens, hidden]; [hidden] or [tokens, hidden] broadcast as is
    return stat.unsqueeze(1) if stat.dim() == 3 else stat


class InformationBottleneck(nn.Module):
    """Replaces X by Z = std * (lambda * x + (1 - lambda) * eps) + mean with x = (X - mean) / std.

    `alpha` [batch, tokens, hidden] is the only parameter; lambda = sigmoid(alpha). `mean` and `std`
    broadcast to [batch, tokens, hidden] ([hidden] for the dataset estimator, [batch, tokens,
    hidden] for the reference one). After each forward pass `kl` holds the per-element information
    [batch, tokens, hidden] (the mean over the K copies; copies share x so they are equal).
    Padding positions pass through unchanged and carry no information.
    """

    def __init__(
        self,
        mean: Tensor,  # broadcastable to [batch, tokens, hidden]
        std: Tensor,  # same shape as mean, > 0
        real_mask: Tensor,  # [batch, tokens], 1 = real token
        hidden_size: int | None = None,
        initial_alpha: float = INITIAL_ALPHA,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        batch, tokens = real_mask.shape
        hidden = hidden_size if hidden_size is not None else mean.shape[-1]
        device = real_mask.device
        self.alpha = nn.Parameter(torch.full((batch, tokens, hidden), initial_alpha, dtype=dtype, device=device))
        self.register_buffer("mean", mean.to(device, dtype))
        self.register_buffer("std", std.to(device, dtype))
        self.register_buffer("real_mask", real_mask.to(device, dtype))  # [batch, tokens]
        self.kl: Tensor | None = None  # [batch, tokens, hidden], set by forward

    @property
    def batch_size(self) -> int:
        return self.alpha.shape[0]

    def forward(
        self,
        x: Tensor,  # [batch * K, tokens, hidden], copies of instance i contiguous
        eps: Tensor | None = None,  # [batch * K, tokens, hidden], standard normal noise
        generator: torch.Generator | None = None,
    ) -> Tensor:  # [batch * K, tokens, hidden]
        """Noisy replacement of x; also stores this pass's `kl`."""
        batch = self.batch_size
        if x.shape[0] % batch or x.shape[1:] != self.alpha.shape[1:]:
            raise ValueError(f"bottleneck input {tuple(x.shape)} does not fit alpha {tuple(self.alpha.shape)}")
        copies = x.shape[0] // batch
        original_dtype = x.dtype
        x4 = x.reshape(batch, copies, *x.shape[1:]).to(self.alpha.dtype)  # [batch, K, tokens, hidden]
        mean, std = _per_copy(self.mean), _per_copy(self.std)
        lamb = torch.sigmoid(self.alpha).unsqueeze(1)  # [batch, 1, tokens, hidden]

        x_norm = (x4 - mean) / std
        signal = lamb * x_norm  # mean of z given x
        log_var = self._log_var().unsqueeze(1)  # [batch, 1, tokens, hidden]
        self._store_kl(signal.pow(2).mean(1))  # KL averaged over the copies (they share x)
        real = self.real_mask[:, None, :, None].bool()  # [batch, 1, tokens, 1]

        if eps is None:
            eps = torch.randn(x4.shape, generator=generator, device=x4.device, dtype=x4.dtype)
        eps = eps.reshape(x4.shape).to(x4.dtype)
        noise_std = (log_var.clamp(-LOG_VAR_CLAMP, LOG_VAR_CLAMP) / 2).exp()
        z = (signal + noise_std * eps) * std + mean  # [batch, K, tokens, hidden]
        z = torch.where(real, z, x4)  # padding passes through
        return z.reshape(x.shape).to(original_dtype)

    @torch.no_grad()
    def measure(self, x: Tensor) -> Tensor:  # [batch, tokens, hidden]
        """Only the KL for x [batch, tokens, hidden] (one copy, no sampling, no graph); stored as `kl`.

        The KL does not depend on the noise, so this equals what a forward pass would store.
        """
        x_norm = (x.to(self.alpha.dtype) - self.mean) / self.std
        self._store_kl((torch.sigmoid(self.alpha) * x_norm).pow(2))
        return self._last_kl()

    def _log_var(self) -> Tensor:  # [batch, tokens, hidden]
        # log((1 - lambda)^2), written stably with 1 - sigmoid(a) = sigmoid(-a)
        return 2 * nn.functional.logsigmoid(-self.alpha)

    def _store_kl(self, signal_sq: Tensor) -> None:
        """kl = -1/2 (1 + log var - signal^2 - var) per element, 0 at padding."""
        log_var = self._log_var()
        kl = -0.5 * (1 + log_var - signal_sq - log_var.exp())  # [batch, tokens, hidden]
        self.kl = torch.where(self.real_mask[:, :, None].bool(), kl, 0.0)

    def information_loss(self) -> Tensor:  # [batch]
        """Mean KL over each instance's real tokens x hidden dims (the beta term of the loss)."""
        kl = self._last_kl()
        denominator = self.real_mask.sum(1) * kl.shape[-1]
        return kl.sum((1, 2)) / denominator

    def token_information(self) -> Tensor:  # [batch, tokens]
        """Per-token attribution: sum of KL over hidden dims, 0 at padding."""
        return self._last_kl().sum(-1)  # already 0 at padding

    def _last_kl(self) -> Tensor:
        if self.kl is None:
            raise RuntimeError("the bottleneck has not run a forward pass yet")
        return self.kl
