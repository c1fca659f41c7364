"""live.session.ledger: what a reconnect replays and what it restores as history, so nothing is answered twice."""

from __future__ import annotations

from live.session.ledger import UNCONSUMED_ITEMS, Item, Ledger


def _texts(items: list[Item]) -> list[object]:
    return [item.data if item.kind != "history" else "history" for item in items]


def test_unconsumed_input_is_replayed_in_order():
    ledger = Ledger()
    for word in ("a", "b", "c"):
        ledger.sent(Item("text", word))
    ledger.resumption_update(consumed_index=1, new_handle=False)
    replay = ledger.take_replay()
    assert _texts(replay.items) == ["b", "c"]
    assert not ledger.pending and ledger.take_replay().items == []


def test_an_answered_turn_is_restored_as_history_not_replayed():
    ledger = Ledger()
    ledger.sent(Item("text", "Hello"))
    ledger.heard("Hello")
    ledger.replying("Hi there")
    ledger.turn_answered()
    ledger.sent(Item("text", "And then?"))
    replay = ledger.take_replay()
    assert _texts(replay.items) == ["history", "And then?"]
    history = replay.items[0].data
    assert [(c.role, c.parts[0].text) for c in history] == [("user", "Hello"), ("model", "Hi there")]


def test_a_new_handle_covers_what_was_answered():
    ledger = Ledger()
    ledger.sent(Item("text", "Hello"))
    ledger.replying("Hi")
    ledger.turn_answered()
    assert ledger.pending
    ledger.resumption_update(consumed_index=None, new_handle=True)
    assert not ledger.pending and ledger.take_replay().items == []


def test_a_reply_covers_only_the_input_sent_before_it_began():
    ledger = Ledger()
    ledger.sent(Item("text", "first"))
    ledger.replying("answer")  # begins: covers "first"
    ledger.sent(Item("text", "second"))  # typed during the reply
    ledger.turn_answered()
    assert _texts(ledger.take_replay().items) == ["history", "second"]


def test_a_failed_send_is_replayed_whatever_gemini_reports_consumed():
    ledger = Ledger()
    ledger.sent(Item("text", "a"))
    ledger.send_failed(Item("text", "b"))
    ledger.resumption_update(consumed_index=10, new_handle=False)
    assert _texts(ledger.take_replay().items) == ["b"]


def test_history_batches_count_but_are_never_replayed():
    ledger = Ledger()
    ledger.context_sent()
    ledger.context_sent()
    ledger.sent(Item("text", "a"))
    ledger.resumption_update(consumed_index=2, new_handle=False)  # the two batches
    assert _texts(ledger.take_replay().items) == ["a"]


def test_transcribed_audio_in_the_replay_is_flagged():
    ledger = Ledger()
    ledger.sent(Item("audio", b"\0\0"))
    ledger.heard("hello", transcribed=True)
    assert ledger.take_replay().repeats_transcription
    ledger.sent(Item("text", "typed"))
    ledger.heard("typed")
    assert not ledger.take_replay().repeats_transcription


def test_a_new_connection_counts_from_zero():
    ledger = Ledger()
    ledger.sent(Item("text", "a"))
    ledger.connection_opened()
    assert ledger.sent_index == 0 and not ledger.unconsumed


def test_the_replay_is_bounded():
    ledger = Ledger()
    for i in range(UNCONSUMED_ITEMS + 50):
        ledger.sent(Item("audio", bytes(2), str(i)))
    assert len(ledger.take_replay().items) == UNCONSUMED_ITEMS
