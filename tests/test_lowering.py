"""The lowering plan (``neurosim.lowering``) that the dense and Lava targets read."""
import pytest
from brian2 import ms

from neurosim.circuit import Circuit, CircuitError, Population, Projection
from neurosim.lowering import lower, split_product, strip_suffix, summed_order, synapse_code
from neurosim.plasticity import PairSTDP


def rate_circuit():
    c = Circuit("low", namespace={"tau": 10 * ms, "g": 2.0})
    c.add(Population("a", 3, "dr/dt = -r / tau : 1\nf = tanh(h) : 1\nh = 2 * r : 1"))
    c.add(Population("b", 2, "dv/dt = (-v + I) / tau : 1\nI : 1\nu = v * I : 1"))
    c.add(Population("c", 2, "x : 1"))
    c.add(Projection("ab", "a", "b", "w : 1\nI_post = g * w * f_pre * (1 + v_post) : 1 (summed)",
                     learning_rule="w += 0.1 * f_pre * u_post\nw = clip(w, -1, 1)"))
    # reads b.I, written by ab: one level higher
    c.add(Projection("bc", "b", "c", "k : 1\nx_post = k * I_pre : 1 (summed)"))
    return c


def test_summed_factors_levels_and_reads():
    plan = lower(rate_circuit(), update=False)
    ab, bc = plan.summed
    assert (ab.projection, ab.variable, ab.side, ab.base, ab.population, ab.level) == \
        ("ab", "I_post", "post", "I", "b", 0)
    assert (bc.projection, bc.level, bc.population) == ("bc", 1, "c")
    assert plan.levels == 2
    assert ab.reason == ""
    assert ab.factors["syn"] == ("w",) and ab.factors["scalar"] == ("g",)
    assert ab.factors["pre"] == ("f_pre",) and ab.factors["post"] == ("v_post + 1",)
    assert ab.product("post", "scalar") == "g*(v_post + 1)"
    # f_pre reads a.r through the subexpressions f -> h -> r
    assert ab.reads == {("a", "r"), ("b", "v")}
    assert bc.reads == {("b", "I")}


def test_sum_refused_with_its_reason():
    assert split_product("w * a_pre + b_post", ["w"]) == (None, "it is a sum of terms")
    parts, reason = split_product("w * sin(a_pre * b_post)", ["w"])
    assert parts is None and "'sin(a_pre*b_post)'" in reason and "post and pre" in reason
    c = Circuit("sum")
    c.add(Population("p", 2, "x : 1\ny : 1"))
    c.add(Projection("pp", "p", "p", "w : 1\nx_post = w * y_pre + y_post : 1 (summed)"))
    (s,) = lower(c, update=False).summed
    assert s.factors is None and s.reason == "it is a sum of terms"


def test_projection_subexpressions_substituted():
    c = Circuit("sub")
    c.add(Population("p", 2, "x : 1\ny : 1"))
    c.add(Projection("pp", "p", "p", "w : 1\nd = 3 * s : 1\ns = w * w : 1\n"
                     "x_post = d * y_pre : 1 (summed)", learning_rule="w += d"))
    plan = lower(c, update=False)
    assert plan.summed[0].expr == "(3 * (w * w)) * y_pre"
    assert plan.summed[0].factors["syn"] == ("w**2",)
    (stmt,) = plan.projections["pp"].learning
    assert (stmt.var, stmt.op, stmt.expr) == ("w", "+=", "(3 * (w * w))")


def test_subexpression_order_and_stored():
    plan = lower(rate_circuit())
    a = plan.populations["a"]
    assert [n for n, _ in a.subexpressions] == ["h", "f"]  # f reads h: h first
    assert a.stored == ("r",) and a.threshold is None and not a.refractory
    assert "r" in a.update and "tau" in a.update  # Brian2's euler abstract code
    assert plan.populations["c"].update == ""  # no differential equation
    assert lower(rate_circuit(), update=False).populations["a"].update is None
    assert plan.reads("a", "f") == {("a", "r")} and plan.reads("a", "t") == {("", "t")}


def test_learning_statements_and_connectivity():
    ab = lower(rate_circuit(), update=False).projections["ab"]
    assert (ab.kind, ab.parameters, ab.summed) == ("all", ("w",), ("I_post",))
    (inc, clip) = ab.learning
    assert (inc.var, inc.op, inc.expr) == ("w", "+=", "0.1 * f_pre * u_post")
    assert inc.factors["pre"] == ("f_pre",) and inc.factors["post"] == ("u_post",)
    assert inc.factors["syn"] == () and float(inc.factors["scalar"][0]) == 0.1
    assert (clip.var, clip.op) == ("w", "=") and clip.factors["syn"] == ("clip(w, -1, 1)",)


def spiking(refractory=3 * ms):
    c = Circuit("spk", namespace={"tau": 10 * ms})
    c.add(Population("p", 2, "dv/dt = -v / tau : 1 (unless refractory)\ndu/dt = -u / tau : 1",
                     threshold="v > 1", reset="v = 0", refractory=refractory))
    c.add(Projection("pq", "p", "p", "w : 1", on_pre="v += 2 * w", plasticity=PairSTDP()))
    return c


def test_refractory_threshold_and_unless_refractory():
    p = lower(spiking()).populations["p"]
    assert p.refractory and p.stored == ("v", "u", "not_refractory", "lastspike")
    assert p.threshold == "(v > 1) and (not_refractory > 0.5)"
    assert p.unless_refractory == {"v"} and p.reset == "v = 0"
    assert "not_refractory" in p.update  # Brian2's own refractoriness update
    q = lower(spiking(None)).populations["p"]
    assert q.threshold == "v > 1" and q.stored == ("v", "u") and not q.unless_refractory
    assert "not_refractory" not in q.update


def test_on_pre_names_the_target_population_implicitly():
    proj = lower(spiking(), update=False).projections["pq"]
    (stmt,) = proj.on_pre  # the projection's own code; the rule's is not in it
    assert (stmt.var, stmt.op, stmt.expr, stmt.line) == ("v_post", "+=", "2 * w", "v += 2 * w")
    assert stmt.factors["syn"] == ("w",) and stmt.factors["scalar"] == ("2",)
    assert isinstance(proj.plasticity, PairSTDP)


def test_strip_suffix():
    assert strip_suffix("tanh(a_pre) * a_prefix + b_post", "_pre") == \
        "tanh(a) * a_prefix + b_post"


def test_state_updater_error_is_named():
    c = Circuit("bad")
    c.add(Population("p", 2, "dv/dt = -v / (10*ms) : 1", method="exact"))
    object.__setattr__(c.populations["p"], "method", "nonsense")  # past the declaration's check
    with pytest.raises(CircuitError, match="Population 'p': Brian2 cannot build a state "
                       "updater with method='nonsense'"):
        lower(c)


def test_lava_maps_rules_by_class_along_the_mro():
    from dataclasses import dataclass

    from neurosim.hardware_targets.lava.plasticity import _RULES, _rule_mapping
    from neurosim.plasticity import PlasticityRule, ThreeFactorSTDP

    @dataclass(frozen=True)  # rules are frozen values, so are their subclasses
    class SlowerPair(PairSTDP):  # a subclass maps as its registered base
        pass
    assert _rule_mapping(SlowerPair()) is _RULES[PairSTDP]
    assert _rule_mapping(ThreeFactorSTDP()) is _RULES[ThreeFactorSTDP]
    assert _rule_mapping(PlasticityRule()) is None  # no mapping: Lava refuses it


def test_summed_order_is_the_plans_and_lives_in_the_lowering():
    import neurosim.circuit
    c = rate_circuit()
    assert summed_order(c) == [("ab", "I_post", 0), ("bc", "x_post", 1)]
    assert summed_order(c) == [(s.projection, s.variable, s.level)
                               for s in lower(c, update=False).summed]
    assert not hasattr(neurosim.circuit, "summed_order")  # one dependency walk, here
    # a loop through a population subexpression is found by the same walk
    loop = Circuit("loop")
    loop.add(Population("a", 2, "x : 1\ny = 2 * x : 1"))
    loop.add(Projection("aa", "a", "a", "x_post = y_pre : 1 (summed)", connect="one_to_one"))
    with pytest.raises(CircuitError, match=r"algebraic loop \(aa.x_post -> aa.x_post\)"):
        lower(loop, update=False)


def test_synapse_code_merges_the_rule_after_the_projections_own_code():
    c = Circuit("stdp")
    c.add(Population("a", 2, "v : 1"))
    proj = c.add(Projection("s", "a", "a", "w : 1", on_pre="v_post += w",
                            plasticity=PairSTDP(wmax=1.0)))
    code = synapse_code(proj)
    assert code.on_pre.splitlines()[:2] == ["v_post += w", "apre += s_Apre"]
    assert code.on_post.splitlines()[0] == "apost += s_Apost"
    assert {"w", "apre", "apost"} <= set(code.equations.names)
    assert code.namespace["s_wmax"] == 1.0 and c.namespace["s_wmax"] == 1.0
    assert proj.model == "w : 1" and proj.on_pre == "v_post += w"  # as declared
