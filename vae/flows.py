"""Normalizing flows for q(z|x): a diagonal Gaussian pushed through K invertible maps.

If z_0 ~ q_0(z|x) and z_K = f_K ∘ … ∘ f_1(z_0), the change of variables gives the density of z_K:

    log q_K(z_K|x) = log q_0(z_0|x) − Σ_k log |det ∂f_k/∂z_{k−1}|

so a flow posterior needs, at each step, the map and its exact log-determinant; scoring a point
that the flow did not produce also needs the inverse. Three kinds of step, each amortised: its
parameters come from a ``context`` h, the encoder's last hidden layer for that input.

* :class:`PlanarFlow` and :class:`RadialFlow` (Rezende and Mohamed, 2015): cheap, a bend along
  one direction or around one point per step.
* :class:`IAFStep`, inverse autoregressive flow (Kingma et al., 2016): an autoregressive affine
  map computed by a masked network (MADE, Germain et al., 2015), with a triangular Jacobian.

Every step maps codes [..., L] with a context [..., H] that broadcasts against them (a sample
axis in ``z`` needs one in the context too), and returns its log-determinant [...] in nats.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Transform, constraints

from vae.validation import check_nonnegative_int

FLOWS = ("planar", "radial", "iaf")
MAX_FLOW_LENGTH = 1000  # a bound on the steps a config may ask for, so that a corrupt file cannot build millions


class PlanarFlow(nn.Module):
    """f(z) = z + û tanh(wᵀz + b): a bend of the space along the direction w (Rezende and Mohamed, eq. 10).

        log |det ∂f/∂z| = log |1 + ûᵀψ(z)|,  ψ(z) = tanh'(wᵀz + b) w                  (eq. 11–12)

    f is invertible when wᵀû ≥ −1, which the re-parameterisation of u guarantees (their appendix A.1):

        û = u + (m(wᵀu) − wᵀu) w / ‖w‖²,  m(a) = −1 + softplus(a),  so that  wᵀû = m(wᵀu) > −1

    Then 1 + ûᵀψ(z) = 1 + tanh' · wᵀû = tanh² + tanh' · softplus(wᵀu) > 0, computed in this last
    form, a sum of two terms ≥ 0, which stays positive in floating point even where softplus(wᵀu)
    is lost next to 1. u, w [..., L] and b [...] are a linear map of the context.
    """

    def __init__(self, latent_dim: int, context_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.to_parameters = nn.Linear(context_dim, 2 * latent_dim + 1)

    def amortised(self, context: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(û, w, b, softplus(wᵀu))`` per context: [..., L], [..., L], [...], [...]; the last is 1 + wᵀû."""
        u, w, b = self.to_parameters(context).split([self.latent_dim, self.latent_dim, 1], -1)
        wu = (w * u).sum(-1, keepdim=True)
        lift = nn.functional.softplus(wu)
        u_hat = u + (lift - 1 - wu) * w / w.pow(2).sum(-1, keepdim=True)
        return u_hat, w, b.squeeze(-1), lift.squeeze(-1)

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """``f(z)`` [..., L] and log |det ∂f/∂z| [...]."""
        u_hat, w, b, lift = self.amortised(context)
        bend = torch.tanh((w * z).sum(-1) + b)
        log_det = torch.log(bend.pow(2) + (1 - bend.pow(2)) * lift)  # log(1 + ûᵀψ(z))
        return z + u_hat * bend.unsqueeze(-1), log_det

    def inverse(self, y: Tensor, context: Tensor) -> Tensor:
        """The z with f(z) = y, found by bisection on one monotone scalar equation per point.

        With α = wᵀz, y = z + û tanh(α + b) gives α + wᵀû tanh(α + b) = wᵀy, whose left side
        increases with α (its slope is 1 + wᵀû tanh' > 0); as |tanh| ≤ 1 the root lies within
        |wᵀû| of wᵀy. Sixty halvings bring the bracket to rounding; then z = y − û tanh(α + b).
        """
        u_hat, w, b, lift = self.amortised(context)
        target, wu = (w * y).sum(-1), lift - 1
        lo, hi = target - wu.abs(), target + wu.abs()
        for _ in range(60):
            mid = (lo + hi) / 2
            below = mid + wu * torch.tanh(mid + b) < target
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        alpha = (lo + hi) / 2
        return y - u_hat * torch.tanh(alpha + b).unsqueeze(-1)


class RadialFlow(nn.Module):
    """f(z) = z + β h(α, r) (z − z_ref), r = |z − z_ref|, h = 1 / (α + r): a pull towards (or push from) z_ref.

        log |det ∂f/∂z| = (L − 1) log(1 + βh) + log(1 + βh + βh′(r) r),  h′ = −1 / (α + r)²   (eq. 14)

    It is invertible when β ≥ −α (Rezende and Mohamed, appendix A.2): α = softplus(α̂) > 0 and
    β = −α + softplus(β̂). z_ref [..., L], α̂ and β̂ [...] are a linear map of the context.
    """

    def __init__(self, latent_dim: int, context_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.to_parameters = nn.Linear(context_dim, latent_dim + 2)

    def amortised(self, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_ref, α, β)`` for each context: [..., L], [...], [...]."""
        z_ref, alpha, beta = self.to_parameters(context).split([self.latent_dim, 1, 1], -1)
        alpha = nn.functional.softplus(alpha.squeeze(-1))
        return z_ref, alpha, nn.functional.softplus(beta.squeeze(-1)) - alpha

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """``f(z)`` [..., L] and log |det ∂f/∂z| [...]."""
        z_ref, alpha, beta = self.amortised(context)
        r = torch.linalg.vector_norm(z - z_ref, dim=-1)
        h, dh = 1 / (alpha + r), -1 / (alpha + r).pow(2)
        log_det = (self.latent_dim - 1) * torch.log1p(beta * h) + torch.log1p(beta * h + beta * dh * r)
        return z + (beta * h).unsqueeze(-1) * (z - z_ref), log_det

    def inverse(self, y: Tensor, context: Tensor) -> Tensor:
        """The z with f(z) = y: the radius r = |z − z_ref| solves one monotone scalar equation, in closed form.

        |y − z_ref| = ρ = r (1 + β / (α + r)) gives r² + (α + β − ρ) r − αρ = 0, whose root r ≥ 0 is
        written in whichever of its two forms avoids cancellation; then z = z_ref + (y − z_ref) / (1 + βh(r)).
        """
        z_ref, alpha, beta = self.amortised(context)
        rho = torch.linalg.vector_norm(y - z_ref, dim=-1)
        p = alpha + beta - rho
        root = torch.sqrt(p.pow(2) + 4 * alpha * rho)
        r = torch.where(p > 0, 2 * alpha * rho / (p + root), (root - p) / 2)
        return z_ref + (y - z_ref) / (1 + beta / (alpha + r)).unsqueeze(-1)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 ``mask`` [out, in] (Germain et al., 2015)."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        # Not saved with the model (persistent=False): it is rebuilt from the sizes.
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class IAFStep(nn.Module):
    """One step of inverse autoregressive flow, in the numerically stable form of Kingma et al. (2016):

        [m, s] = MADE(z, h),  σ = sigmoid(s),  f(z) = σ ⊙ z + (1 − σ) ⊙ m,  log |det ∂f/∂z| = Σ_i log σ_i

    MADE's masks let m_i and s_i see z_1 … z_{i−1} and the context h only, so ∂f/∂z is triangular
    with σ on its diagonal. The output's order is then reversed (a permutation: |det| = 1), so that
    the next step conditions the other way round. s starts near 2, σ near 0.88: each step starts
    close to the identity, as the paper advises.
    """

    def __init__(self, latent_dim: int, context_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        degree = torch.arange(1, latent_dim + 1)  # input i may feed outputs i + 1, …, L
        hidden_degree = torch.arange(hidden_dim) % max(latent_dim - 1, 1) + 1
        self.hidden = MaskedLinear(hidden_degree[:, None] >= degree[None, :])
        self.from_context = nn.Linear(context_dim, hidden_dim)
        self.out = MaskedLinear(degree.repeat(2)[:, None] > hidden_degree[None, :])
        with torch.no_grad():
            self.out.bias[latent_dim:] = 2.0

    def made(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """``m`` and ``s`` [..., L]: entry i depends on z_1 … z_{i−1} and the context only."""
        hidden = nn.functional.elu(self.hidden(z) + self.from_context(context))
        m, s = self.out(hidden).chunk(2, -1)
        return m, s

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """``f(z)`` [..., L], reversed, and log |det ∂f/∂z| [...]."""
        m, s = self.made(z, context)
        sigma = torch.sigmoid(s)
        return (sigma * z + (1 - sigma) * m).flip(-1), nn.functional.logsigmoid(s).sum(-1)

    def inverse(self, y: Tensor, context: Tensor) -> Tensor:
        """The z with f(z) = y, exactly, in L passes: pass i fixes z_i from the z_1 … z_{i−1} already fixed."""
        y, z = y.flip(-1), y.flip(-1)
        for _ in range(self.latent_dim):
            m, s = self.made(z, context)
            sigma = torch.sigmoid(s)
            z = (y - (1 - sigma) * m) / sigma
        return z


class StepTransform(Transform):
    """One step with its context fixed, as a torch ``Transform`` on [..., L], so that a
    ``TransformedDistribution`` can sample through it and score any point (by its exact inverse)."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, step: nn.Module, context: Tensor, cache_size: int = 1) -> None:
        super().__init__(cache_size=cache_size)
        self.step, self.context = step, context

    def _call(self, z: Tensor) -> Tensor:
        return self.step(z, self.context)[0]

    def _inverse(self, y: Tensor) -> Tensor:
        return self.step.inverse(y, self.context)

    def log_abs_det_jacobian(self, z: Tensor, y: Tensor) -> Tensor:
        return self.step(z, self.context)[1]


class Flow(nn.Module):
    """f = f_K ∘ … ∘ f_1, K = len(steps) (none: the identity), all steps seeing the same context.

    Like a torch ``Transform`` with ``cache_size=1`` it remembers its last output, so that
    :meth:`inverse` of a point it has just produced reads z_0 and the log-determinant back (with
    their gradients) instead of solving for them; any other point is inverted step by step.
    """

    def __init__(self, steps: list[nn.Module]) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.last: tuple[Tensor, Tensor, Tensor] | None = None  # (z_0, z_K, log-determinant)

    def forward(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """z_K = f(z_0) [..., L] and Σ_k log |det ∂f_k/∂z_{k−1}| [...], for z_0 = ``z``."""
        z0, log_det = z, torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for step in self.steps:
            z, step_log_det = step(z, context)
            log_det = log_det + step_log_det
        self.last = (z0, z, log_det)
        return z, log_det

    def inverse(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """z_0 = f⁻¹(z) [..., L] and the log-determinant of f at z_0 [...]."""
        if self.last is not None and z is self.last[1]:
            return self.last[0], self.last[2]
        for step in reversed(self.steps):
            z = step.inverse(z, context)
        return z, self(z, context)[1]

    def transforms(self, context: Tensor) -> list[Transform]:
        """The steps with ``context`` fixed, as torch transforms, first step first."""
        return [StepTransform(step, context) for step in self.steps]

    def __getstate__(self) -> dict:
        """Copies and pickles leave the last output behind: its tensors may belong to an autograd graph."""
        return {**super().__getstate__(), "last": None}


def make_flow(name: str, length: int, latent_dim: int, context_dim: int) -> Flow:
    """The flow that ``FlowVAE(..., flow=name, flow_length=length)`` holds, its settings checked."""
    if name not in FLOWS:
        raise ValueError(f"flow must be one of {FLOWS}, got {name!r}")
    if check_nonnegative_int("flow_length", length) > MAX_FLOW_LENGTH:
        raise ValueError(f"flow_length must be at most {MAX_FLOW_LENGTH} steps, got {length}")
    if name == "planar":
        return Flow([PlanarFlow(latent_dim, context_dim) for _ in range(length)])
    if name == "radial":
        return Flow([RadialFlow(latent_dim, context_dim) for _ in range(length)])
    return Flow([IAFStep(latent_dim, context_dim, context_dim) for _ in range(length)])
