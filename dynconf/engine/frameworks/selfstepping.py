"""Per-step outputs of a model whose ``forward`` loops over time itself.

SpikingJelly's CSNN examples (``conv_fashion_mnist``) repeat the input T times inside
``forward``, run a multi-step body on ``[T, B, ...]`` and return the mean over time; others
call a single-step body T times and average. The run needs the per-step outputs, so with
``steps_itself=True`` the model is called once with the batch ``[B, ...]`` while forward hooks
watch its sub-modules, and the per-step outputs are those of the outermost sub-module that
produced class scores for every step: one call returning ``[T, B, K]``, or T calls returning
``[B, K]`` each (stacked in call order). K is that of the model's return value ``[B, K]``.
The model's own T must be the recording's T (checked: a mismatch is a one-line error).
"""

from __future__ import annotations

from dynconf.errors import DynconfError


class StepCapture:
    """Forward hooks on every sub-module of ``model`` that keep outputs shaped like
    per-step scores of a batch of ``batch`` samples (a context manager: hooks go on exit)."""

    def __init__(self, model, batch: int):
        self.batch = batch
        self.calls: dict[str, list] = {}
        self.depth: dict[str, int] = {}
        self.last_call: dict[str, int] = {}
        self._order = 0
        self._handles = [
            module.register_forward_hook(self._hook(name))
            for name, module in model.named_modules()
            if name  # the model itself returns the mean, not the steps
        ]
        self.depth = {name: name.count(".") for name, _ in model.named_modules() if name}

    def _hook(self, name: str):
        def hook(module, inputs, output):
            import torch

            if not isinstance(output, torch.Tensor):
                return
            shaped = (output.ndim == 3 and output.shape[1] == self.batch) or (
                output.ndim == 2 and output.shape[0] == self.batch
            )
            if shaped:
                self.calls.setdefault(name, []).append(output)
                self._order += 1
                self.last_call[name] = self._order

        return hook

    def per_step(self, scores, T: int):
        """``[T, B, K]`` from the outermost module whose calls give every step's scores."""
        import torch

        K = scores.shape[-1]
        found = {}
        for name, outputs in self.calls.items():
            if len(outputs) == 1 and outputs[0].ndim == 3 and outputs[0].shape[2] == K:
                found[name] = outputs[0]
            elif len(outputs) > 1 and all(o.ndim == 2 and o.shape[1] == K for o in outputs):
                found[name] = torch.stack(outputs)
        if not found:
            raise DynconfError(
                "steps_itself=True: no sub-module of the model produced per-step class scores "
                f"[T, B, K] (or [B, K] once per step) with K = {K}; pass the model's per-step "
                "body instead"
            )
        name = min(found, key=lambda n: (self.depth[n], -self.last_call[n]))
        steps = found[name]
        if steps.shape[0] != T:
            raise DynconfError(
                f"steps_itself=True: the model ran {steps.shape[0]} steps, but T = {T} "
                f"(module {name}); record with T = {steps.shape[0]} or set the model's own T"
            )
        return steps

    def check_steps(self, T: int) -> None:
        """Refuse, in one line, a model seen running another number of steps than T."""
        seen = {o.shape[0] for outputs in self.calls.values() for o in outputs if o.ndim == 3}
        if seen and T not in seen:
            steps = min(seen)
            raise DynconfError(
                f"steps_itself=True: the model ran {steps} steps, but T = {T}; record with "
                f"T = {steps} or set the model's own T to {T}"
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.calls.clear()
