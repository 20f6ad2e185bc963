"""Published models from Brian2's examples, declared once in neurosim: the conformance suite.

Each model is a pair of functions:

``<model>(scale=1.0, seed=0) -> Circuit``
    the declaration; ``scale`` (0 < scale <= 1) shrinks sizes (and, in the
    protocol, durations) for quick runs, ``scale=1`` is the example's size.
    Everything random at construction (initial values, the synapses of sparse
    projections) is drawn from ``seed``, so a seed means the same network on
    every target (``Circuit.synapses`` draws the connectivity).
``run_<model>(target, scale=1.0) -> dict``
    the protocol: runs a target (any, through the :class:`~neurosim.target.Target`
    interface only) and returns the observables as numpy arrays (spike counts
    per neuron, final states, weights, traces).

``EXAMPLES`` maps each model name to ``(circuit, protocol, source)``, the
source being the Brian2 example it reproduces. The plain Brian2 script of each
model (``tests/conformance/plain_<model>.py``) writes the same model as the
example writes it, with the synapses and initial values neurosim drew.

Where a model departs from the published example (a construct neurosim does
not declare, or a size reduced to keep in-degrees), the departure is stated in
the model's docstring, and the plain script makes the same departure, so the
two are the same model.
"""
from __future__ import annotations

import numpy as np
from brian2 import Hz, TimedArray, cm, metre, ms, mV, nsiemens, pA, pfarad, second

from neurosim.circuit import Circuit, Population, Projection, constant
from neurosim.target import Target

from .spiking import song_abbott_stdp

__all__ = ["EXAMPLES", "if_curve", "cuba", "brunel_hakim", "brunel_2000", "vogels",
           "izhikevich", "jansen_rit", "jeffress", "stdp", "oja",
           "run_if_curve", "run_cuba", "run_brunel_hakim", "run_brunel_2000", "run_vogels",
           "run_izhikevich", "run_jansen_rit", "run_jeffress", "run_stdp", "run_oja"]


def _n(full: int, scale: float, least: int) -> int:
    return max(least, int(round(full * scale)))


def _steps(target: Target, duration) -> int:
    return max(1, int(round(float(duration / target.circuit.dt))))


def _counts(target: Target, population: str, n_steps: int) -> np.ndarray:
    """Spike count per neuron of ``population`` over ``n_steps`` steps."""
    rec = target.run(n_steps, record=[(population, "spikes")])[(population, "spikes")]
    return np.bincount(rec[:, 1], minlength=target.circuit.population(population).n)


def _spikes(target: Target, population: str, n_steps: int, bin_steps: int) -> dict:
    """Spike count per neuron and population activity (spikes per bin of
    ``bin_steps`` steps) of ``population`` over ``n_steps`` steps."""
    rec = target.run(n_steps, record=[(population, "spikes")])[(population, "spikes")]
    n = target.circuit.population(population).n
    return {"counts": np.bincount(rec[:, 1], minlength=n),
            "activity": np.bincount(rec[:, 0] // bin_steps,
                                    minlength=-(-n_steps // bin_steps))}


def _rng(seed: int, what: int) -> np.random.Generator:
    """Initial values of model ``what`` (an arbitrary model number) for ``seed``."""
    return np.random.default_rng([int(seed), what])


# --- IF curve (examples/IF_curve_LIF.py) ---------------------------------------------

def if_curve(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``IF_curve_LIF.py``: ``n`` unconnected LIF neurons, input v0 from 0
    to 20 mV, refractory 5 ms, exact integration. Deterministic."""
    n = _n(1000, scale, 20)
    c = Circuit("if_curve", namespace={"tau": 10 * ms}, dt=0.1 * ms,
                description="Brian2 example IF_curve_LIF")
    c.add(Population("group", n, """dv/dt = (v0 - v) / tau : volt (unless refractory)
                                    v0 : volt""",
                     threshold="v > 10*mV", reset="v = 0*mV", refractory=5 * ms,
                     method="exact",
                     values={"v": 0 * mV, "v0": 20 * mV * np.arange(n) / (n - 1)}))
    return c


def run_if_curve(target: Target, scale: float = 1.0) -> dict:
    """Spike counts and final v after the example's 1 s (``scale`` of it), run in
    four calls of uneven length (40, 15, 15, 30 %): a target must carry the
    refractory state across ``run`` boundaries (the plain script runs once)."""
    n = _steps(target, max(0.1, scale) * second)
    parts = [int(0.4 * n), int(0.15 * n), int(0.15 * n)]
    counts = sum(_counts(target, "group", k) for k in parts + [n - sum(parts)])
    return {"counts": counts, "v": target.get("group", "v")}


# --- CUBA (examples/CUBA.py) -----------------------------------------------------------

def cuba(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``CUBA.py`` (Brette et al. 2007, benchmark 2): 4000 LIF neurons,
    80 % excitatory; sparse random connectivity (``p = 0.02``: 320,000 synapses at
    full size), refractory 5 ms, exact integration; initial v uniform in
    [Vr, Vt] (drawn from ``seed``). Reduced sizes keep the in-degree (80
    excitatory, 20 inhibitory inputs per neuron): ``p = 0.02 * 4000 / N``."""
    n = _n(4000, scale, 200)
    n_exc = int(0.8 * n)
    p = min(1.0, 0.02 * 4000 / n)
    Vt, Vr = -50 * mV, -60 * mV
    c = Circuit("cuba", dt=0.1 * ms, description="Brian2 example CUBA",
                namespace={"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": Vt,
                           "Vr": Vr, "El": -49 * mV, "we": (60 * 0.27 / 10) * mV,
                           "wi": (-20 * 4.5 / 10) * mV})
    v0 = Vr + _rng(seed, 2).uniform(size=n) * (Vt - Vr)
    c.add(Population("P", n, """dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
                                dge/dt = -ge/taue : volt
                                dgi/dt = -gi/taui : volt""",
                     threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact",
                     values={"v": v0, "ge": 0 * mV, "gi": 0 * mV}))
    c.add(Projection("Ce", "P", "P", on_pre="ge += we",
                     connect={"condition": f"i<{n_exc}", "p": p}))
    c.add(Projection("Ci", "P", "P", on_pre="gi += wi",
                     connect={"condition": f"i>={n_exc}", "p": p}))
    return c


def run_cuba(target: Target, scale: float = 1.0) -> dict:
    out = _spikes(target, "P", _steps(target, max(0.1, scale) * second), 10)
    return dict(out, v=target.get("P", "v"))


# --- Brunel & Hakim 1999 (examples/frompapers/Brunel_Hakim_1999.py) ------------------

def brunel_hakim(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``Brunel_Hakim_1999.py``: 5000 inhibitory LIF neurons with white
    noise (``xi``), sparse recurrent inhibition (``p = C/N = 0.2``) with a 2 ms
    delay, refractory 2 ms, Euler-Maruyama. Reduced sizes keep ``p`` and the
    mean recurrent inhibition ``J*C`` (``J = 0.1 mV * 1000 / C``)."""
    n = _n(5000, scale, 200)
    C = max(1, int(round(1000 * n / 5000)))
    c = Circuit("brunel_hakim", dt=0.1 * ms, description="Brian2 example Brunel_Hakim_1999",
                namespace={"Vr": 10 * mV, "theta": 20 * mV, "tau": 20 * ms,
                           "J": 0.1 * mV * 1000 / C, "muext": 25 * mV, "sigmaext": 1 * mV})
    c.add(Population("group", n, "dV/dt = (-V+muext + sigmaext * sqrt(tau) * xi)/tau : volt",
                     threshold="V>theta", reset="V=Vr", refractory=2 * ms, method="euler",
                     values={"V": 10 * mV}))
    c.add(Projection("conn", "group", "group", on_pre="V += -J", delay=2 * ms,
                     connect={"p": C / n}))
    return c


def run_brunel_hakim(target: Target, scale: float = 1.0) -> dict:
    return _spikes(target, "group", _steps(target, 100 * ms), 10)


# --- Brunel 2000 (examples/frompapers/Brunel_2000.py) ----------------------------------

def brunel_2000(scale: float = 1.0, seed: int = 0, g: float = 5.0,
                nu_ext_over_nu_thr: float = 2.0) -> Circuit:
    """Brian2's ``Brunel_2000.py`` (panel C by default: g = 5, nu_ext = 2 nu_thr):
    10,000 excitatory and 2,500 inhibitory LIF neurons, sparse connectivity
    (``p = epsilon = 0.1``) with a 1.5 ms delay, refractory 2 ms, exact integration.

    Departure: the example drives every neuron with a ``PoissonInput`` of
    ``C_ext = C_E`` sources (a binomial count per step, not an object neurosim
    declares); here the drive is a population of ``N_E`` Poisson neurons at
    ``nu_ext`` (written as Brian2's ``PoissonGroup`` is: ``rand() < rates*dt``)
    connected with ``p = epsilon``, so each neuron has ``C_E`` external sources on
    average, as in Brunel's paper. Reduced sizes keep ``epsilon`` and ``J*C_E``.

    Addition: a deterministic probe before the drive (see :func:`run_brunel_2000`):
    v starts uniform in [V_r, theta + 1 mV] (drawn from ``seed``; the example
    starts at 0), so the network's own cascade of spikes, delays and
    refractoriness runs for 30 ms without random input."""
    n_exc = _n(10000, scale, 160)
    n_inh = round(0.25 * n_exc)
    epsilon = 0.1
    C_E = epsilon * n_exc
    J = 0.1 * mV * 1000 / C_E
    tau, theta = 20 * ms, 20 * mV
    nu_thr = theta / (J * C_E * tau)
    c = Circuit("brunel_2000", dt=0.1 * ms, description="Brian2 example Brunel_2000",
                namespace={"tau": tau, "theta": theta, "V_r": 10 * mV, "J": J, "g": g})
    c.add(Population("external", n_exc, "rates : Hz", threshold="rand() < rates*dt",
                     values={"rates": nu_ext_over_nu_thr * nu_thr}))
    v0 = _rng(seed, 4).uniform(float(10 * mV), float(theta + 1 * mV), size=n_exc + n_inh)
    c.add(Population("neurons", n_exc + n_inh, "dv/dt = -v/tau : volt (unless refractory)",
                     threshold="v > theta", reset="v = V_r", refractory=2 * ms,
                     method="exact", values={"v": v0}))
    c.add(Projection("exc_synapses", "neurons", "neurons", on_pre="v += J", delay=1.5 * ms,
                     connect={"condition": f"i < {n_exc}", "p": epsilon}))
    c.add(Projection("inhib_synapses", "neurons", "neurons", on_pre="v += -g*J",
                     delay=1.5 * ms, connect={"condition": f"i >= {n_exc}", "p": epsilon}))
    c.add(Projection("external_synapses", "external", "neurons", on_pre="v += J",
                     connect={"p": epsilon}))
    return c


def run_brunel_2000(target: Target, scale: float = 1.0) -> dict:
    """``probe``: spikes per step during 30 ms without external drive (a
    deterministic cascade: every target must reproduce it spike for spike);
    then the example's driven network (counts and activity)."""
    rates = target.get("external", "rates")
    target.set("external", "rates", np.zeros_like(rates))
    probe = _spikes(target, "neurons", _steps(target, 30 * ms), 1)["activity"]
    target.set("external", "rates", rates)
    out = _spikes(target, "neurons", _steps(target, max(0.5, scale) * 200 * ms), 10)
    return dict(out, probe=probe)


# --- Vogels et al. 2011 (examples/frompapers/Vogels_et_al_2011.py) -----------------------

def vogels(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``Vogels_et_al_2011.py``: 8000 excitatory and 2000 inhibitory
    conductance-based LIF neurons, sparse connectivity (``p = 0.02``), refractory
    5 ms, Euler; inhibitory-to-excitatory synapses learn by the symmetric
    inhibitory STDP rule (``on_pre`` and ``on_post``). The learning rate ``eta``
    is a namespace entry, 0 during the first second and 1e-2 afterwards, as in
    the example. The example leaves v at 0 (above threshold), so every neuron
    fires in the first step; kept. Reduced sizes keep the in-degree
    (``p = 0.02 * 10000 / N``)."""
    ne = _n(8000, scale, 160)
    ni = ne // 4
    eps = min(1.0, 0.02 * 8000 / ne)
    tau_stdp = 20 * ms
    c = Circuit("vogels", dt=0.1 * ms, description="Brian2 example Vogels_et_al_2011",
                namespace={"tau_ampa": 5 * ms, "tau_gaba": 10 * ms, "tau_stdp": tau_stdp,
                           "gl": 10.0 * nsiemens, "el": -60 * mV, "er": -80 * mV,
                           "vt": -50. * mV, "memc": 200.0 * pfarad, "bgcurrent": 200 * pA,
                           "alpha": 3 * Hz * tau_stdp * 2, "gmax": 100, "eta": 0})
    c.add(Population("neurons", ne + ni, """
        dv/dt=(-gl*(v-el)-(g_ampa*v+g_gaba*(v-er))+bgcurrent)/memc : volt (unless refractory)
        dg_ampa/dt = -g_ampa/tau_ampa : siemens
        dg_gaba/dt = -g_gaba/tau_gaba : siemens""",
        threshold="v > vt", reset="v=el", refractory=5 * ms, method="euler"))
    c.add(Projection("con_e", "neurons", "neurons", on_pre="g_ampa += 0.3*nS",
                     connect={"condition": f"i < {ne}", "p": eps}))
    c.add(Projection("con_ii", "neurons", "neurons", on_pre="g_gaba += 3*nS",
                     connect={"condition": f"i >= {ne} and j >= {ne}", "p": eps}))
    c.add(Projection("con_ie", "neurons", "neurons", """
        w : 1
        dApre/dt=-Apre/tau_stdp : 1 (event-driven)
        dApost/dt=-Apost/tau_stdp : 1 (event-driven)""",
        on_pre="""Apre += 1.
                  w = clip(w+(Apost-alpha)*eta, 0, gmax)
                  g_gaba += w*nS""",
        on_post="""Apost += 1.
                   w = clip(w+Apre*eta, 0, gmax)""",
        connect={"condition": f"i >= {ne} and j < {ne}", "p": eps},
        init={"w": constant(1e-10)}))
    return c


def run_vogels(target: Target, scale: float = 1.0) -> dict:
    """Two phases as in the example: ``eta = 0``, then ``eta = 1e-2`` (set in the
    circuit's namespace between the runs)."""
    ne = 4 * target.circuit.population("neurons").n // 5
    target.circuit.namespace["eta"] = 0
    before = _counts(target, "neurons", _steps(target, max(0.1, scale) * second))
    target.circuit.namespace["eta"] = 1e-2
    after = _counts(target, "neurons", _steps(target, max(0.2, scale) * 9 * second))
    return {"counts_before": before[:ne], "counts_after": after[:ne],
            "w": target.get_weights()["con_ie"]["w"]}


# --- Izhikevich 2003 (examples/frompapers/Izhikevich_2003.py) ---------------------------

def izhikevich(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``Izhikevich_2003.py`` (Fig. 3 of Izhikevich 2003): 800 excitatory
    and 200 inhibitory Izhikevich neurons, all-to-all, a spike raising ``I`` by
    ``w`` for one 1 ms step (the example's two pathways ``up`` at delay 0 and
    ``down`` at 1 ms; here two projections with the same weights), 1 ms Euler
    steps; neuron parameters and weights drawn from ``seed``.

    Departure: the example draws ``I_noise = 5*randn()`` (excitatory) and
    ``2*randn()`` (inhibitory) every 1 ms with ``run_regularly``, which neurosim
    does not declare; here the noise is the term ``sigma*sqrt(ms)*xi`` of the
    equation, which at dt = 1 ms adds ``sigma * randn()`` to v per step -- the
    same draws, in the same order. Reduced sizes scale the weights by
    ``1000 / N`` to keep the summed input."""
    ne = _n(800, scale, 80)
    ni = ne // 4
    n = ne + ni
    rng = _rng(seed, 6)
    re, ri = rng.uniform(size=ne), rng.uniform(size=ni)
    gain = 1000 / n
    # W[post, pre]: excitatory columns 0.5 U, inhibitory -U (the example's weights.T)
    W = gain * np.hstack([0.5 * rng.uniform(size=(n, ne)), -rng.uniform(size=(n, ni))])
    a = np.r_[np.full(ne, 0.02), 0.02 + 0.08 * ri]
    b = np.r_[np.full(ne, 0.2), 0.25 - 0.05 * ri]
    v0 = -65.0
    c = Circuit("izhikevich", dt=1 * ms, namespace={},
                description="Brian2 example Izhikevich_2003")
    c.add(Population("N", n, """dv/dt = (0.04*v**2 + 5*v + 140 - u + I)/ms + sigma*xi/sqrt(ms) : 1
                                du/dt = (a*(b*v - u))/ms  : 1
                                I : 1
                                sigma : 1
                                a : 1
                                b : 1
                                c : 1
                                d : 1""",
                     threshold="v>=30", reset="v=c; u+=d", method="euler",
                     values={"v": v0, "u": b * v0, "a": a, "b": b,
                             "c": np.r_[-65 + 15 * re ** 2, np.full(ni, -65.0)],
                             "d": np.r_[8 - 6 * re ** 2, np.full(ni, 2.0)],
                             "sigma": np.r_[np.full(ne, 5.0), np.full(ni, 2.0)]}))
    c.add(Projection("S_up", "N", "N", "w : 1", on_pre="I += w", init={"w": W}))
    c.add(Projection("S_down", "N", "N", "w : 1", on_pre="I -= w", delay=1 * ms,
                     init={"w": W}))
    return c


def run_izhikevich(target: Target, scale: float = 1.0) -> dict:
    return _spikes(target, "N", _steps(target, max(0.2, scale) * second), 1)


# --- Jansen & Rit 1995 (examples/frompapers/Jansen_Rit_1995_single_column.py) ----------

JR_C1 = (68, 128, 135, 270, 675, 1350)


def jansen_rit(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``Jansen_Rit_1995_single_column.py``: six Jansen-Rit columns
    (a rate model: equations (6) of the paper) with connectivity constants C1 of
    Fig. 3, driven by uniform noise held for 2 ms (a ``TimedArray``; the example
    draws it from numpy's global generator, here from ``seed``), Euler, dt 0.1 ms."""
    noise = _rng(seed, 7).uniform(size=int(np.ceil(5 * second / (2 * ms))) + 1)
    c = Circuit("jansen_rit", dt=0.1 * ms, description="Brian2 example Jansen_Rit_1995",
                namespace={"te": 10. * ms, "ti": 20. * ms, "e0": 5., "v0": 6., "r0": 0.56,
                           "A": 3.25, "B": 22., "nstim": TimedArray(noise, 2 * ms)})
    c.add(Population("columns", 6, """
        dy0/dt = y3                             /second : 1
        dy3/dt = (A        * Sp -2*y3 -y0/te*second)/te : 1
        dy1/dt = y4                             /second : 1
        dy4/dt = (A*(p+ C2 * Se)-2*y4 -y1/te*second)/te : 1
        dy2/dt = y5                             /second : 1
        dy5/dt = (B   * C4 * Si -2*y5 -y2/ti*second)/ti : 1
        p  = P0+nstim(t)*dlP                   : 1
        Sp = e0/(1+exp(r0*(v0 - (y1-y2)    ))) : 1
        Se = e0/(1+exp(r0*(v0 -  C1*y0     ))) : 1
        Si = e0/(1+exp(r0*(v0 -  C3*y0     ))) : 1
        C1            : 1
        C2 = 0.8 *C1  : 1
        C3 = 0.25*C1  : 1
        C4 = 0.25*C1  : 1
        P0            : 1
        dlP           : 1""", method="euler",
        values={"C1": np.array(JR_C1, dtype=float), "P0": 120., "dlP": 320. - 120.}))
    return c


def run_jansen_rit(target: Target, scale: float = 1.0) -> dict:
    """The EEG-like output ``y1 - y2`` of every column every 1 ms, and the final state."""
    n = _steps(target, max(0.1, scale) * 5 * second)
    trace = target.run(n, record=[("columns", "y1"), ("columns", "y2")])
    out = {"eeg": (trace[("columns", "y1")] - trace[("columns", "y2")])[::10]}
    for var in ("y0", "y1", "y2", "y3", "y4", "y5"):
        out[var] = target.get("columns", var)
    return out


# --- Jeffress model (examples/synapses/jeffress.py) --------------------------------------

def jeffress(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``synapses/jeffress.py``: a white-noise sound source circling the
    head; two ears (noisy, refractory 2.5 ms) project onto 30 coincidence
    detectors through per-synapse delays (the delay lines of the Jeffress
    model), dt 0.02 ms. The sound (``10*randn(50000)`` in the example) is drawn
    from ``seed``."""
    dt = 0.02 * ms
    num_neurons = 30
    max_delay = (20 * cm) / (300 * metre / second)
    sound = 10 * _rng(seed, 8).standard_normal(50000)
    c = Circuit("jeffress", dt=dt, description="Brian2 example jeffress",
                namespace={"sound": TimedArray(sound, dt=dt), "angular_speed": 2 * np.pi / second,
                           "tau_ear": 1 * ms, "sigma_ear": .1, "tau": 1 * ms, "sigma": .1})
    c.add(Population("ears", 2, """
        dx/dt = (sound(t-delay)-x)/tau_ear+sigma_ear*(2./tau_ear)**.5*xi : 1 (unless refractory)
        delay = distance*sin(theta) : second
        distance : second # distance to the centre of the head in time units
        dtheta/dt = angular_speed : radian""",
        threshold="x>1", reset="x = 0", refractory=2.5 * ms, method="euler",
        values={"distance": [-.5 * float(max_delay), .5 * float(max_delay)]}))
    c.add(Population("neurons", num_neurons, "dv/dt = -v / tau + sigma * (2 / tau)**.5 * xi : 1",
                     threshold="v>1", reset="v = 0", method="euler"))
    # all-to-all, synapse k = i * num_neurons + j (Circuit.synapses' order)
    j = np.arange(num_neurons)
    delays = np.r_[j / (num_neurons - 1), (num_neurons - j - 1) / (num_neurons - 1)]
    c.add(Projection("synapses", "ears", "neurons", on_pre="v += .5",
                     delay=delays * 1.1 * max_delay))
    return c


def run_jeffress(target: Target, scale: float = 1.0) -> dict:
    n = _steps(target, max(0.1, scale) * second)
    rec = target.run(n, record=[("ears", "spikes"), ("neurons", "spikes")])
    return {"ears": np.bincount(rec[("ears", "spikes")][:, 1], minlength=2),
            "counts": np.bincount(rec[("neurons", "spikes")][:, 1], minlength=30)}


# --- Song-Abbott STDP (examples/synapses/STDP.py) ----------------------------------------

def stdp(scale: float = 1.0, seed: int = 0) -> Circuit:
    """Brian2's ``synapses/STDP.py``: the library's ``song_abbott_stdp`` circuit
    (1000 Poisson inputs at 15 Hz onto one LIF neuron through pair-STDP synapses).
    ``scale`` shortens the run only: with fewer inputs the neuron never fires, so
    nothing is learned."""
    return song_abbott_stdp()


def run_stdp(target: Target, scale: float = 1.0) -> dict:
    """The final weights ``w`` and what learning changed, ``dw = w - w(0)``."""
    w0 = target.get_weights()["synapses"]["w"][0]
    target.run(_steps(target, max(0.001, scale) * 100 * second))
    w = target.get_weights()["synapses"]["w"][0]
    return {"w": w, "dw": w - w0}


# --- Oja's rule on a rate neuron (not a Brian2 example; named in issue 10) ---------------

def oja(scale: float = 1.0, seed: int = 0, n_inputs: int = 5) -> Circuit:
    """One leaky rate neuron reading ``n_inputs`` inputs through weights that learn
    by Oja's rule once per trial (``learning_rule``), from w = 0.2: the weights
    converge to the principal component of the inputs. Runs with
    :func:`run_oja`: each trial sets the inputs to a sample drawn from ``seed``
    (a correlated Gaussian; the target's seed), runs 20 steps of 1 ms and
    applies the rule."""
    c = Circuit("oja", dt=1 * ms, namespace={"tau": 5 * ms, "lr": 0.05},
                description="Oja's rule, one rate neuron")
    c.add(Population("inputs", n_inputs, "r : 1"))
    c.add(Population("out", 1, """dr/dt = (-r + I) / tau : 1
                                  I : 1"""))
    c.add(Projection("w_in", "inputs", "out", """w : 1
                                                 I_post = w * r_pre : 1 (summed)""",
                     init={"w": constant(0.2)},
                     learning_rule="w += lr * r_post * (r_pre - w * r_post)"))
    return c


def oja_samples(n_inputs: int, n_trials: int, seed: int) -> np.ndarray:
    """Inputs per trial: ``x = z * u + 0.3 noise``, u a fixed direction of decreasing
    components (the principal component Oja's rule finds)."""
    rng = _rng(seed, 9)
    u = np.linspace(1.0, 0.1, n_inputs)
    u /= np.linalg.norm(u)
    return rng.standard_normal((n_trials, 1)) * u + 0.3 * rng.standard_normal((n_trials, n_inputs))


def run_oja(target: Target, scale: float = 1.0) -> dict:
    out = []
    n_inputs = target.circuit.population("inputs").n
    for x in oja_samples(n_inputs, _n(200, scale, 20), target.seed):
        target.set("inputs", "r", x)
        target.set("out", "r", [0.0])
        target.run(20)
        out.append(target.get("out", "r")[0])
        target.learn()
    return {"w": target.get_weights()["w_in"]["w"][0], "out": np.array(out)}


EXAMPLES = {
    "if_curve": (if_curve, run_if_curve, "examples/IF_curve_LIF.py"),
    "cuba": (cuba, run_cuba, "examples/CUBA.py"),
    "brunel_hakim": (brunel_hakim, run_brunel_hakim, "examples/frompapers/Brunel_Hakim_1999.py"),
    "brunel_2000": (brunel_2000, run_brunel_2000, "examples/frompapers/Brunel_2000.py"),
    "vogels": (vogels, run_vogels, "examples/frompapers/Vogels_et_al_2011.py"),
    "izhikevich": (izhikevich, run_izhikevich, "examples/frompapers/Izhikevich_2003.py"),
    "jansen_rit": (jansen_rit, run_jansen_rit,
                   "examples/frompapers/Jansen_Rit_1995_single_column.py"),
    "jeffress": (jeffress, run_jeffress, "examples/synapses/jeffress.py"),
    "stdp": (stdp, run_stdp, "examples/synapses/STDP.py"),
    "oja": (oja, run_oja, "(not a Brian2 example) Oja's rule, issue 10"),
}
