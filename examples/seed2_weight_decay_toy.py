"""Seed notebook 2, "Weight decay (L2 regularization) with and without", ported to decaylab.

The seed drew its start point with ``random.random()``; here it is fixed at (1, 1) so the numbers
can be checked against the DESIGN.md oracle, the closed form ``w_i(t) = w_i(0) * (1 - lr*(c_i + lam))**t``.
Run: ``python examples/seed2_weight_decay_toy.py``.
"""

import torch

from decaylab import SGD, DiagonalQuadratic

init_val1, init_val2 = 1.0, 1.0
# float64, so the printed digits are the closed form's (float32 drifts in the 7th digit)
model = DiagonalQuadratic((init_val1, init_val2)).double()  # loss = w1**2/20 + w2**2
model_wd = DiagonalQuadratic((init_val1, init_val2)).double()

op = SGD(model.parameters(), lr=0.01)
op_wd = SGD(model_wd.parameters(), lr=0.01, weight_decay=0.01)


def train(steps: int, report_every: int = 100) -> None:
    for epoch in range(steps):
        loss = model.forward_loss()
        loss_wd = model_wd.forward_loss()
        if epoch % report_every == 0:
            print(f"epoch: {epoch}, loss:{loss.item():.7g}, loss_wd:{loss_wd.item():.7g}")
        loss.backward()
        loss_wd.backward()
        op.step()
        op_wd.step()
        model.zero_grad()
        model_wd.zero_grad()


if __name__ == "__main__":
    with torch.no_grad():
        print("per-step factors  plain:", [round(1 - 0.01 * float(c), 4) for c in model.curvatures])
        print("per-step factors  wd   :", [round(1 - 0.01 * (float(c) + 0.01), 4) for c in model.curvatures])
    train(100)
    print(f"after 100 steps  sgd    w1:{float(model.w_1.detach()):.7f}, w2:{float(model.w_2.detach()):.7f}")
    print(f"after 100 steps  sgd_wd w1:{float(model_wd.w_1.detach()):.7f}, w2:{float(model_wd.w_2.detach()):.7f}")
    train(900)
    print(f"after 1000 steps sgd    w1:{float(model.w_1.detach()):.7f}")
    print(f"after 1000 steps sgd_wd w1:{float(model_wd.w_1.detach()):.7f}")
