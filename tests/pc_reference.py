"""An independent, direct numpy integration of the relaxed predictive coding
equations (MODELS.md section 1, eqs 1-4, 7, 8), written from the paper and
sharing no code with neurosim. Layer 0 is the bottom; ``theta[l]`` (l >= 1) maps
µ_l to the prediction of layer l-1 and has shape (n_{l-1}, n_l)."""
import numpy as np

F = {
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
}


def errors(mu, theta, psi, f, df, no_fprime):
    eps, gated = {}, {}
    for l in range(len(mu) - 1):
        pred = theta[l + 1] @ mu[l + 1]
        own = psi[l] @ mu[l] if l in psi else mu[l]
        eps[l] = own - f(pred)                                          # (1) / (7)
        gated[l] = eps[l] * (1.0 if no_fprime else df(pred))
    return eps, gated


def train_trial(x, y, theta, theta_fb, psi, activation, steps, rate, lr,
                no_fprime=False, learn_fb=False, psi_decay=0.0):
    """Returns the µ and ε trajectories (state at the start of each step) and
    updates theta, theta_fb, psi in place."""
    f, df = F[activation]
    top = len(theta)
    mu = {top: np.array(x, float)}
    for l in range(top - 1, -1, -1):          # start at the top-down prediction
        mu[l] = f(theta[l + 1] @ mu[l + 1])
    mu[0] = np.array(y, float)                # clamp the label at the bottom
    traj_mu, traj_eps = [], []
    for _ in range(steps):
        eps, gated = errors(mu, theta, psi, f, df, no_fprime)
        traj_mu.append({l: m.copy() for l, m in mu.items()})
        traj_eps.append({l: e.copy() for l, e in eps.items()})
        new = dict(mu)
        for l in range(1, top):               # hidden layers are free
            back = theta_fb[l] if theta_fb else theta[l].T
            new[l] = mu[l] + rate * (-eps[l] + back @ gated[l - 1])    # (2)
        mu = new
    eps, gated = errors(mu, theta, psi, f, df, no_fprime)
    for l in range(1, top + 1):
        theta[l] += lr * np.outer(gated[l - 1], mu[l])                  # (3)
        if learn_fb:
            theta_fb[l] += lr * np.outer(mu[l], gated[l - 1])           # (4)
    for l in psi:
        psi[l] -= lr * (np.outer(eps[l], mu[l])                         # (8), energy-descending
                        + psi_decay * (psi[l] - np.eye(len(psi[l]))))   # decay to the identity
    return traj_mu, traj_eps, mu


def predict(x, theta, activation):
    f, _ = F[activation]
    mu = np.array(x, float)
    for l in range(len(theta), 0, -1):
        mu = f(theta[l] @ mu)
    return mu
