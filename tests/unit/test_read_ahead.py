import threading
import time

import pytest

from pipeline.ingest.read_ahead import read_ahead


def test_items_arrive_in_order_while_the_next_ones_are_produced_meanwhile():
    produced = []

    def slow_pages():
        for number in range(5):
            produced.append(number)
            yield number

    consumed = []
    for item in read_ahead(slow_pages(), depth=2):
        time.sleep(0.05)  # while the consumer works, the producer has gone ahead
        consumed.append((item, len(produced)))
    assert [item for item, _ in consumed] == [0, 1, 2, 3, 4]
    assert consumed[0][1] >= 2


def test_an_error_while_producing_reaches_the_consumer_after_the_items_before_it():
    def failing():
        yield 1
        raise ConnectionError("the server went away")

    received = []
    with pytest.raises(ConnectionError, match="went away"):
        for item in read_ahead(failing()):
            received.append(item)
    assert received == [1]


def test_a_consumer_that_stops_early_stops_the_producer():
    produced = []

    def endless():
        number = 0
        while True:
            produced.append(number)
            yield number
            number += 1

    items = read_ahead(endless(), depth=2)
    for item in items:
        if item == 3:
            break
    items.close()  # what a for loop's end does to a generator nothing else holds
    assert not any(thread.name == "read-ahead" for thread in threading.enumerate())
    assert len(produced) <= 3 + 2 + 1  # what was consumed, the queue's depth and the one in hand
