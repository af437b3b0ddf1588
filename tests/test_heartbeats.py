"""A job's flow run still sends Prefect's heartbeats, and its end does not wait on the heartbeat thread
(tasks/engine/heartbeats.py: Prefect's own thread sleeps in whole seconds and is joined at every run's end)."""
from __future__ import annotations

import threading
import types

from prefect import flow_engine

import flows.waive_fines  # noqa: F401 - making a job's flow installs the heartbeats
from tasks.engine import heartbeats


class FakeEngine:
    heartbeat_seconds = 30

    def __init__(self):
        self.beats = []
        self.beaten = threading.Event()
        self.flow_run = types.SimpleNamespace(state=types.SimpleNamespace(is_final=lambda: False))
        self.logger = types.SimpleNamespace(debug=lambda *a, **k: None)

    def _build_heartbeat_event_template(self):
        return "resource", ["related"]

    def _emit_flow_run_heartbeat(self, resource, related):
        self.beats.append((resource, related, threading.current_thread()))
        self.beaten.set()


def test_the_flow_engine_uses_the_job_heartbeats():
    assert flow_engine._send_heartbeats is heartbeats.send_heartbeats


def test_a_heartbeat_is_sent_and_the_thread_is_gone_the_moment_the_run_ends(monkeypatch):
    # Sleeping would never end here: the thread must wait on its stop, not sleep out its interval.
    never = threading.Event()
    monkeypatch.setattr(flow_engine, "time", types.SimpleNamespace(sleep=lambda s: never.wait()))
    engine = FakeEngine()
    try:
        with heartbeats.send_heartbeats(engine):
            assert engine.beaten.wait(10)
        (resource, related, thread), = engine.beats
        assert (resource, related) == ("resource", ["related"])
        assert not thread.is_alive()
    finally:
        never.set()


def test_no_heartbeats_when_prefect_has_them_turned_off():
    engine = FakeEngine()
    engine.heartbeat_seconds = None
    with heartbeats.send_heartbeats(engine):
        pass
    assert engine.beats == []
