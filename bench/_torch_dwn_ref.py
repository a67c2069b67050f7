"""Reference DWN layers for baselines: torch-dwn's algorithm written in batched torch ops.

Two EFD backward flavours:

- ``"torch_dwn"``: what torch-dwn's kernel does, an O(n·2ⁿ) sum per sample, LUT and slot;
- ``"careful"``: the same gradient from a per-step coefficient table ``C[j, a, l]`` (one small matmul
  per backward), gathered per sample.

Both use torch-dwn's learnable mapping as it is (argmax in every forward, the dense ``(2x−1)ᵀ g`` weight
gradient) and plain autograd, so any ``torch.optim`` optimizer applies. Build a reference model from one
of ours with :func:`reference_model` to start from the same weights.
"""
from __future__ import annotations

import time

import torch

_ARGMAX_SECONDS = [0.0]        # time spent in the mapping argmax (benchmarks read and reset it)


def _popcount(v):
    count = torch.zeros_like(v)
    for bit in range(int(v.max()).bit_length() if v.numel() else 0):
        count += (v >> bit) & 1
    return count


def _kernel(n, beta):
    """``K[a', l·2ⁿ + a] = β^popcount((a⊕a') & ~(1<<l)) · (±1 by bit l of a')``."""
    a = torch.arange(2 ** n)
    xor = a[:, None] ^ a[None, :]
    cols = []
    for l in range(n):
        sign = ((a >> l) & 1).double() * 2 - 1
        cols.append(beta ** _popcount(xor & ~(1 << l)).double() * sign[:, None])
    return torch.cat(cols, dim=1).float()


class _EFD(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mapping, luts, alpha, beta, flavour):
        n = mapping.shape[1]
        bits = (x[:, mapping.long()] > 0).long()                           # [B, N, n]
        addr = (bits << torch.arange(n)).sum(-1)                          # [B, N]
        out = luts.gather(1, addr.t()).t()
        ctx.save_for_backward(x, mapping, luts, addr)
        ctx.alpha, ctx.beta, ctx.flavour = alpha, beta, flavour
        return out

    @staticmethod
    def backward(ctx, g):
        x, mapping, luts, addr = ctx.saved_tensors
        batch, num_luts = addr.shape
        n = mapping.shape[1]
        size = 2 ** n
        grad_luts = torch.zeros_like(luts)
        grad_luts.view(-1).index_add_(0, (addr + torch.arange(num_luts) * size).view(-1), g.reshape(-1))
        grad_x = None
        if ctx.needs_input_grad[0]:
            if ctx.flavour == "torch_dwn":
                a2 = torch.arange(size)
                slot = torch.empty(batch, num_luts, n)
                for l in range(n):
                    mask = ~(1 << l)
                    dist = _popcount((addr.unsqueeze(-1) & mask) ^ (a2 & mask))          # [B, N, 2ⁿ]
                    fd = luts.unsqueeze(0) * ctx.alpha * torch.pow(ctx.beta, dist.float())
                    sign = ((a2 >> l) & 1).float() * 2 - 1
                    slot[:, :, l] = (fd * sign).sum(-1)
            else:
                coef = (luts @ _kernel(n, ctx.beta)).mul_(ctx.alpha)                      # [N, n·2ⁿ]
                coef = coef.view(num_luts, n, size).transpose(1, 2).reshape(num_luts * size, n)
                slot = coef[(addr + torch.arange(num_luts) * size).view(-1)].view(batch, num_luts, n)
            slot = slot * g.unsqueeze(-1)
            grad_x = torch.zeros_like(x)
            grad_x.index_add_(1, mapping.view(-1).long(), slot.view(batch, -1))
        return grad_x, None, grad_luts, None, None, None


class _STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return (x > 0).float()

    @staticmethod
    def backward(ctx, g):
        return g


class _Mapping(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weights, tau):
        start = time.perf_counter()
        hard = weights.argmax(dim=0)
        _ARGMAX_SECONDS[0] += time.perf_counter() - start
        ctx.save_for_backward(x, weights)
        ctx.tau = tau
        return x[:, hard]

    @staticmethod
    def backward(ctx, g):
        x, weights = ctx.saved_tensors
        grad_w = (2 * x - 1).t() @ g
        grad_x = g @ torch.softmax(weights / ctx.tau, dim=0).t() if ctx.needs_input_grad[0] else None
        return grad_x, grad_w, None


class RefLUTLayer(torch.nn.Module):
    def __init__(self, layer, flavour):
        super().__init__()
        self.flavour, self.n = flavour, layer.n
        self.alpha, self.beta = float(layer.alpha), float(layer.beta)
        self.ste, self.clamp_luts = layer.ste, layer.clamp_luts
        self.luts = torch.nn.Parameter(layer.luts.detach().clone())
        if layer.learnable:
            self.weights = torch.nn.Parameter(layer.mapping.weights.detach().clone())
            self.tau = layer.mapping.tau
            self.register_buffer("mapping", torch.arange(layer.output_size * layer.n, dtype=torch.int32)
                                 .view(layer.output_size, layer.n))
        else:
            self.weights = None
            self.register_buffer("mapping", layer.mapping.clone())

    def forward(self, x):
        if self.training and self.clamp_luts:
            with torch.no_grad():
                self.luts.clamp_(-1, 1)
        if self.weights is not None:
            x = _Mapping.apply(x, self.weights, self.tau)
        x = _EFD.apply(x, self.mapping, self.luts, self.alpha, self.beta, self.flavour)
        return _STE.apply(x) if self.ste else x


def reference_model(model: torch.nn.Sequential, flavour: str) -> torch.nn.Sequential:
    """A copy of ``model`` (LUTLayers and a GroupSum) built from the reference layers."""
    from dwn_hw.nn import GroupSum, LUTLayer
    layers = []
    for module in model:
        if isinstance(module, LUTLayer):
            layers.append(RefLUTLayer(module, flavour))
        elif isinstance(module, GroupSum):
            layers.append(module)
        else:
            raise TypeError(f"reference_model cannot copy {type(module).__name__}")
    return torch.nn.Sequential(*layers)
