"""Bulk work gives way to urgent calls (advisor.usecases.priority): it waits while one is in flight, never for
itself, and stops waiting when something it holds is wanted."""

from __future__ import annotations

import threading

from advisor.usecases.priority import Priority


def test_bulk_work_waits_until_the_urgent_call_is_over() -> None:
    priority, order, waiting = Priority(max_wait_s=30), [], threading.Event()

    def bulk() -> None:
        priority.give_way(unless=lambda: bool(waiting.set()))  # evaluated once before waiting, under the lock
        order.append("bulk")

    with priority.urgent():
        worker = threading.Thread(target=bulk)
        worker.start()
        assert waiting.wait(30)
        order.append("urgent")
    worker.join(30)
    assert order == ["urgent", "bulk"]


def test_no_waiting_without_an_urgent_call_nor_inside_one() -> None:
    priority = Priority(max_wait_s=30)
    priority.give_way()
    with priority.urgent(), priority.urgent():
        priority.give_way()  # its own call: it would wait for itself
    priority.give_way()


def test_bulk_work_holding_what_an_urgent_call_wants_is_woken() -> None:
    priority, wanted, waiting = Priority(max_wait_s=30), threading.Event(), threading.Event()

    def bulk() -> None:
        priority.give_way(unless=lambda: wanted.is_set() or bool(waiting.set()))

    with priority.urgent():
        worker = threading.Thread(target=bulk)
        worker.start()
        assert waiting.wait(30)
        wanted.set()
        priority.wake()
        worker.join(30)
        assert not worker.is_alive()  # done while the urgent call is still in flight


def test_work_in_pieces_covers_every_item_once_in_order() -> None:
    pieces: list[list[int]] = []
    Priority().in_pieces(list(range(5000)), lambda piece: pieces.append(list(piece)), first=3, most=700)
    assert [i for piece in pieces for i in piece] == list(range(5000))
    assert pieces[0] == [0, 1, 2] and max(map(len, pieces)) <= 700
