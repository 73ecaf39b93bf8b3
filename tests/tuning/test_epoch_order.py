"""The trainer's batch order: every example once an epoch, reproducible (a resumed run
trains on the batches it had not trained on), shuffled, and batched by similar length
(padding to a batch's longest example is compute spent for nothing)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from egide.tuning.trainer import LENGTH_WINDOW, epoch_order


@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=600),
    epoch=st.integers(0, 5),
    batch=st.integers(1, 16),
)
def test_each_example_once_the_same_order_each_time(lengths, epoch, batch) -> None:
    order = epoch_order(lengths, epoch, 7, batch)
    assert sorted(order) == list(range(len(lengths)))
    assert order == epoch_order(list(lengths), epoch, 7, batch)


def padded(lengths: list[int], order: list[int], batch: int) -> int:
    return sum(
        batch * max(lengths[i] for i in order[s : s + batch]) for s in range(0, len(order), batch)
    )


def test_batches_hold_examples_of_similar_length() -> None:
    # Short questions mixed with a fifth of long answers, as a training set with rehearsal.
    rng = random.Random(3)
    lengths = [rng.choice((30, 40, 50)) if rng.random() < 0.8 else 200 for _ in range(1200)]
    plain = list(range(len(lengths)))
    random.Random(3).shuffle(plain)
    order = epoch_order(lengths, 0, 1234, 8)
    assert padded(lengths, order, 8) < 0.5 * padded(lengths, plain, 8)
    # Every full batch came from one window sorted by length: it spans one length class
    # at most where the window changes class.
    batches = [order[s : s + 8] for s in range(0, len(order), 8)]
    mixed = [b for b in batches if len({lengths[i] >= 200 for i in b}) > 1]
    assert len(mixed) <= len(lengths) // (8 * LENGTH_WINDOW) + 1


def test_epochs_and_seeds_give_different_orders_and_batches_move() -> None:
    lengths = [10 + i % 7 for i in range(512)]
    first, second = epoch_order(lengths, 0, 1, 8), epoch_order(lengths, 1, 1, 8)
    assert first != second
    assert epoch_order(lengths, 0, 2, 8) != first
    # Batches are shuffled across windows: the first batch does not always come from the
    # first window of the permutation.
    starts = {min(epoch_order(lengths, e, 1, 8)[:8]) for e in range(10)}
    assert len(starts) > 1


def test_the_one_short_batch_goes_last() -> None:
    lengths = [5, 100, 6, 99, 7, 98, 8, 97, 9, 96, 10]  # 11 examples, batches of 4
    order = epoch_order(lengths, 0, 1, 4)
    # The window sorted by length is cut [5..8] [9, 10, 96, 97] [98, 99, 100]: the short
    # batch holds the three longest; placed anywhere else, every later boundary would move.
    assert sorted(lengths[i] for i in order[8:]) == [98, 99, 100]
    assert {lengths[i] for i in order[:8]} == {5, 6, 7, 8, 9, 10, 96, 97}
