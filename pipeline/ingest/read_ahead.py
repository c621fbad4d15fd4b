"""Reading ahead: a source's next responses are fetched while the last ones are processed."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
_END = object()
_HAND_OVER_POLL_S = 0.1


def read_ahead(items: Iterable[Item], depth: int = 2) -> Iterator[Item]:
    """``items``, produced by a thread of their own up to ``depth`` items ahead of the consumer.

    A listing's requests stay one at a time and in order, as its cursor needs (dlt's parallelized
    resources would also send every resource's requests at once); what overlaps is waiting for the
    next response and working on the last one. An error while producing is raised to the consumer;
    a consumer that stops early stops the producer before its next item."""
    handed: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def hand_over(item: object, error: BaseException | None = None) -> bool:
        while not stopped.is_set():
            try:
                handed.put((item, error), timeout=_HAND_OVER_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as error:  # handed to the consumer, who raises it
            hand_over(_END, error)
            return
        hand_over(_END)

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item, error = handed.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stopped.set()
        producer.join()
