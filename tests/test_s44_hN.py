"""Review of the second wave (session 44, hN): the defects found in its changes, each with the test that fails
without its fix."""

import pytest

from t2i_cli.cli import check_omp_env
from t2i_cli.errors import UsageError


@pytest.mark.parametrize("value", ["9223372036854775808", "18446744073709551617", "4,99999999999999999999",
                                   "1" + "0" * 5000])
def test_an_omp_num_threads_past_what_libgomp_reads_is_refused(monkeypatch, value):
    """libgomp reads each count as a C long: 2**63 and more it warns of in its own words and ignores (torch took
    one thread per core), as it does abc, which is refused; 5,000 digits made int() raise a ValueError."""
    monkeypatch.delenv("T2I_OMP", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(UsageError) as e:
        check_omp_env()
    assert str(e.value).startswith("OMP_NUM_THREADS ") and "more threads than OpenMP reads" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("value", ["9223372036854775807", "0004", " +2 ,1"])
def test_an_omp_num_threads_libgomp_reads_is_still_taken(monkeypatch, value):
    monkeypatch.delenv("T2I_OMP", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    check_omp_env()
