"""numpro.parallel: every item comes back once, with its result or its error."""

import pytest

from numpro.parallel import run_parallel


def square_or_fail(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x * x


@pytest.mark.parametrize("workers", [1, 2])
def test_each_item_once_with_result_or_error(workers):
    outcomes = list(run_parallel(square_or_fail, range(7), workers=workers, progress=False))
    assert sorted(o.item for o in outcomes) == list(range(7))
    by_item = {o.item: o for o in outcomes}
    assert all(by_item[i].ok and by_item[i].result == i * i for i in range(7) if i != 3)
    assert not by_item[3].ok and isinstance(by_item[3].error, ValueError) and "three" in str(by_item[3].error)


def test_empty_input():
    assert list(run_parallel(square_or_fail, [], workers=2, progress=False)) == []
