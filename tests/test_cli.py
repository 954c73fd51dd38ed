"""The theorem registry and `pgexact verify`."""

import json
import re

import numpy as np
import pytest

from pgexact.cli import main, run_verify
from pgexact.theorems import Theorem, all_theorems, get, register
from pgexact.theorems.registry import Outcome, identity, inequality, relative_error, statistical

JSON_KEYS = {
    "id",
    "statement",
    "source",
    "reference",
    "kind",
    "instances",
    "max_residual",
    "tolerance",
    "tolerance_reason",
    "tightest_ratio",
    "discrimination",
    "loose_reason",
    "control_power",
    "passed",
    "seconds",
    "cpu_seconds",
}


def test_every_registered_theorem_passes(capsys):
    assert main(["verify", "--instances", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "theorem" in out and "max residual" in out and "reference" in out and "0 failed" in out


def test_registry_entries_are_complete():
    theorems = all_theorems()
    assert len({t.id for t in theorems}) == len(theorems)
    for t in theorems:
        assert t.statement and t.source and t.tolerance_reason
        assert 0 < t.tolerance <= 1
        assert t.reference.strip() and t.controls, t.id
        assert ".txt" not in t.source and "seeds" not in t.source, t.id  # course notes cited by title, not file


def test_verify_json_carries_every_field(capsys):
    assert main(["verify", "--instances", "2", "--only", "pdl.*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} == {"pdl.discounted", "pdl.finite_horizon"}
    for r in rows:
        assert JSON_KEYS <= set(r)
        assert r["passed"] and r["instances"] == 2 and r["control_power"] is None
        assert r["reference"] and r["tolerance_reason"] and r["seconds"] >= 0


def test_verify_controls_report_power(capsys):
    assert main(["verify", "--instances", "3", "--only", "updates.trpo_lower_bound_tv", "--controls", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["tightest_ratio"] is not None and 0.5 < row["tightest_ratio"] <= 1.0
    assert set(row["control_power"]) == {c.name for c in get("updates.trpo_lower_bound_tv").controls}
    assert all(p == 1.0 for p in row["control_power"].values())
    assert main(["verify", "--instances", "2", "--only", "kl.hessian_is_fisher", "--controls"]) == 0
    out = capsys.readouterr().out
    assert "control power" in out and "second moment of grad z" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["verify", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["verify", "--instances", "0"], "--instances must be a positive integer, got 0"),
        (["verify", "--instances", "-3"], "--instances must be a positive integer"),
        (["verify", "--instances", "10000000"], "at most 100000 are accepted"),
        (["verify", "--only", "no.such.theorem"], "valid ids: .*pg.q_form"),
    ],
)
def test_verify_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err


@pytest.mark.parametrize("argv", [["verify", "--seed", "abc"], ["verify", "--bogus"], ["verify", "--instances", "1.5"]])
def test_verify_unparsable_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_get_unknown_theorem_lists_valid_ids():
    with pytest.raises(KeyError, match="valid ids"):
        get("no.such.theorem")


def test_verify_reports_failure_with_exit_status_1(capsys):
    """A theorem whose residual exceeds its tolerance (or is NaN) makes verify exit 1."""
    bad = Theorem(
        id="zz_test.always_false",
        statement="1 = 2",
        source="test",
        reference="test",
        instance=lambda rng: rng.random(),
        residual=lambda x: float("nan"),
        tolerance=1e-9,
        tolerance_reason="test",
    )
    from pgexact.theorems import registry

    register(bad)
    try:
        assert main(["verify", "--instances", "2", "--only", "zz_test.*"]) == 1
        assert "FAIL" in capsys.readouterr().out
        assert main(["verify", "--instances", "2", "--only", "zz_test.*", "--json"]) == 1
        (row,) = json.loads(capsys.readouterr().out)  # strict JSON: the infinite residual is a string
        assert row["max_residual"] == "inf" and not row["passed"]
        # no negative control: --controls reports it as weak and exits 1 as well
        assert main(["verify", "--instances", "1", "--only", "zz_test.*", "--controls"]) == 1
        assert "no negative control" in capsys.readouterr().out
    finally:
        del registry._REGISTRY[bad.id]


def test_constructors_evaluate_controls_on_the_same_instance():
    from pgexact.theorems import registry

    calls = []

    def expected(x):
        calls.append(x)
        return x

    thm = identity(
        id="zz_test.identity",
        statement="x = x",
        source="test",
        reference="test",
        instance=lambda rng: float(rng.random()),
        computed=lambda x: x,
        expected=expected,
        tolerance=1e-12,
        tolerance_reason="test",
        mutants={"doubled": lambda x: 2 * x + 1, "raises": lambda x: 1 / 0},
    )
    ineq = inequality(
        id="zz_test.inequality",
        statement="x <= 1",
        source="test",
        reference="test",
        instance=lambda rng: np.array([0.5, 0.25]),
        lhs=lambda x: x,
        rhs=lambda x: 1.0,
        tolerance=1e-12,
        tolerance_reason="test",
        mutants={"bound 1/4": (None, lambda x: 0.25)},
    )
    try:
        out, ctl = thm.run(0.5, True)
        assert out.residual == 0.0 and ctl[0] > 1 and np.isnan(ctl[1])  # a raising control is NaN, never "rejected"
        assert len(calls) == 1  # the reference is computed once for the residual and every control
        out, ctl = ineq.run(np.array([0.5, 0.25]), True)
        assert out == Outcome(0.0, 0.5) and ctl[0] == pytest.approx(0.25)
    finally:
        del registry._REGISTRY["zz_test.identity"], registry._REGISTRY["zz_test.inequality"]


def test_statistical_statistic_is_calibrated_and_infinite_on_impossible_events():
    from pgexact.theorems.registry import bernoulli_statistic

    # an observed event of probability 0 is impossible: statistic inf
    assert bernoulli_statistic([1], [10], [0.0]) == float("inf")
    # exact agreement: 0
    assert bernoulli_statistic([5, 50], [10, 100], [0.5, 0.5]) == 0.0
    # Chernoff threshold: n KL = log(2m/alpha) exactly at statistic 1
    from scipy.special import rel_entr

    n, p, k = 1000, 0.5, 600
    llr = n * (rel_entr(k / n, p) + rel_entr(1 - k / n, 1 - p))
    assert bernoulli_statistic([k], [n], [p], 1e-6) == pytest.approx(llr / np.log(2 / 1e-6))


def test_statistical_constructor_rejects_a_wrong_sampler():
    """A fair coin passes (false alarm <= 1e-6 per instance, 20 instances, fixed seed); a coin of bias 0.8 is
    rejected at 100x the critical value (n KL(0.8 || 0.5) = 1927 against log(2/1e-6) = 14.5)."""
    from pgexact.theorems import registry

    thm = statistical(
        id="zz_test.coin",
        statement="Pr(heads) = 1/2",
        source="test",
        reference="test",
        instance=lambda rng: int(rng.integers(2**31)),
        observed=lambda seed: (np.random.default_rng(seed).binomial(10_000, 0.5), 10_000),
        expected=lambda seed: 0.5,
        mutants={"bias 0.8": lambda seed: (np.random.default_rng(seed).binomial(10_000, 0.8), 10_000)},
    )
    try:
        rng = np.random.default_rng(0)
        results = [thm.run(thm.instance(rng), True) for _ in range(20)]
        assert max(o.residual for o, _ in results) <= thm.tolerance
        assert min(c[0] for _, c in results) >= 100 * thm.tolerance
    finally:
        del registry._REGISTRY["zz_test.coin"]


def test_relative_error_on_tuples_and_shapes():
    assert relative_error((np.ones(2), 3.0), (np.ones(2), 3.0)) == 0.0
    assert relative_error((np.ones(2),), (np.ones(2), 1.0)) == float("inf")
    assert relative_error(np.ones(3), np.ones(2)) == float("inf")
    assert relative_error(float("nan"), 1.0) == float("inf")


def test_verify_is_reproducible_and_independent_of_selection(capsys):
    main(["verify", "--instances", "2", "--only", "pg.central_difference", "--json"])
    first = json.loads(capsys.readouterr().out)[0]["max_residual"]
    main(["verify", "--instances", "2", "--only", "pg.central_difference", "--json"])
    assert json.loads(capsys.readouterr().out)[0]["max_residual"] == first
    rows = run_verify(2, 0, "pg.*", progress=False)
    assert next(r for r in rows if r["id"] == "pg.central_difference")["max_residual"] == first


@pytest.mark.parametrize(
    "change, exc, name",
    [
        ({"id": ""}, ValueError, "id"),
        ({"id": 3}, TypeError, "id"),
        ({"reference": None}, TypeError, "reference"),
        ({"computed": "x"}, TypeError, "computed"),
        ({"tolerance": 0.0}, ValueError, "tolerance"),
        ({"tolerance": float("nan")}, ValueError, "tolerance"),
        ({"tolerance": True}, TypeError, "tolerance"),
        ({"floor": -1.0}, ValueError, "floor"),
        ({"mutants": {}}, ValueError, "mutants"),
        ({"mutants": None}, TypeError, "mutants"),
        ({"mutants": {"wrong": 1}}, TypeError, "mutants['wrong']"),
    ],
)
def test_identity_rejects_bad_arguments_naming_them(change, exc, name):
    args = dict(
        id="zz_test.bad", statement="x = x", source="test", reference="test",
        instance=lambda rng: 0.0, computed=lambda x: x, expected=lambda x: x,
        tolerance=1e-12, tolerance_reason="test", mutants={"doubled": lambda x: 2 * x},
    )
    args.update(change)
    with pytest.raises(exc, match=re.escape(name)):
        identity(**args)
    assert "zz_test.bad" not in {t.id for t in all_theorems()}


def test_inequality_statistical_register_and_get_reject_bad_arguments():
    common = dict(id="zz_test.bad", statement="x <= 1", source="test", reference="test", instance=lambda rng: 0.0)
    with pytest.raises(ValueError, match=re.escape("mutants['both'] is (None, None)")):
        inequality(**common, lhs=lambda x: x, rhs=lambda x: 1.0, tolerance=1e-12, tolerance_reason="test",
                   mutants={"both": (None, None)})
    with pytest.raises(TypeError, match="mutants"):
        inequality(**common, lhs=lambda x: x, rhs=lambda x: 1.0, tolerance=1e-12, tolerance_reason="test",
                   mutants={"not a pair": lambda x: x})
    with pytest.raises(ValueError, match="false_alarm"):
        statistical(**common, observed=lambda x: (0, 1), expected=lambda x: 0.5,
                    mutants={"m": lambda x: (1, 1)}, false_alarm=1.0)
    with pytest.raises(TypeError, match="theorem must be a Theorem"):
        register(None)
    with pytest.raises(TypeError, match="theorem_id"):
        get(["pg.q_form"])
    with pytest.raises(ValueError, match="theorem_id 'no.such' is not a registered theorem"):
        get("no.such")
    assert "zz_test.bad" not in {t.id for t in all_theorems()}


def test_bernoulli_statistic_rejects_bad_counts_naming_the_cell():
    from pgexact.theorems.registry import bernoulli_statistic

    with pytest.raises(ValueError, match=re.escape("trials[1] = 2, expected at least counts[1] = 3")):
        bernoulli_statistic([1, 3], [2, 2], 0.5)
    with pytest.raises(ValueError, match=re.escape("p[0] = 1.5")):
        bernoulli_statistic([1], [2], [1.5])
    with pytest.raises(TypeError, match="counts"):
        bernoulli_statistic("x", [2], [0.5])
    with pytest.raises(ValueError, match="false_alarm"):
        bernoulli_statistic([1], [2], [0.5], false_alarm=0.0)


def test_verify_runs_theorems_with_one_blas_thread():
    """The instances are tiny: spinning BLAS threads would only add CPU time (the default run's budget)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from pgexact.theorems import registry

    seen = []

    def instance(rng):
        seen.extend(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas")
        return 0.0

    identity(
        id="zz_test.blas_threads", statement="0 = 0", source="test", reference="test", instance=instance,
        computed=lambda x: x, expected=lambda x: x, tolerance=1e-12, tolerance_reason="test",
        mutants={"plus one": lambda x: x + 1.0},
    )
    try:
        with threadpoolctl.threadpool_limits(2, user_api="blas"):  # a caller's setting, e.g. the default
            (row,) = run_verify(1, 0, "zz_test.blas_threads", progress=False)
    finally:
        del registry._REGISTRY["zz_test.blas_threads"]
    assert row["passed"] and seen and set(seen) == {1}
